"""Label selector complements: checked against a brute-force model over sample label sets."""

from __future__ import annotations

import itertools

import pytest
from imtegrity_operator.egress.selectors import (
    ALL,
    SelectorError,
    Term,
    TooManyTermsError,
    ValueSet,
    complement,
    parse_selector,
    subtract,
)

# Every combination of these labels (missing, or one of the values) is a sample pod.
SAMPLE_LABELS = {
    "app": ["web", "db", "proxy"],
    "tier": ["front", "back"],
    "team": ["a"],
}


def sample_pods() -> list[dict[str, str]]:
    keys = list(SAMPLE_LABELS)
    choices = [[None, *SAMPLE_LABELS[key]] for key in keys]
    pods = []
    for values in itertools.product(*choices):
        pods.append({key: value for key, value in zip(keys, values, strict=True) if value})
    return pods


def selects(selector: dict, labels: dict[str, str]) -> bool:
    """The Kubernetes semantics of a label selector, written out directly."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.get("matchExpressions") or []:
        key, operator = requirement["key"], requirement["operator"]
        values = requirement.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def union_selects(terms: list[Term], labels: dict[str, str]) -> bool:
    return any(selects(term.label_selector(), labels) for term in terms)


SELECTORS = [
    {},
    {"matchLabels": {"app": "web"}},
    {"matchLabels": {"app": "web", "tier": "front"}},
    {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db"]}]},
    {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]},
    {"matchExpressions": [{"key": "team", "operator": "Exists"}]},
    {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]},
    {
        "matchExpressions": [
            {"key": "app", "operator": "Exists"},
            {"key": "app", "operator": "NotIn", "values": ["proxy"]},
        ]
    },
    {
        "matchLabels": {"tier": "back"},
        "matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]}],
    },
]


@pytest.mark.parametrize("selector", SELECTORS, ids=range(len(SELECTORS)))
def test_parse_round_trip(selector):
    term = parse_selector(selector)

    for pod in sample_pods():
        assert selects(term.label_selector(), pod) == selects(selector, pod), pod


@pytest.mark.parametrize("selector", SELECTORS, ids=range(len(SELECTORS)))
def test_complement_selects_the_rest(selector):
    terms = complement(parse_selector(selector))

    for pod in sample_pods():
        assert union_selects(terms, pod) == (not selects(selector, pod)), pod


@pytest.mark.parametrize(
    "others",
    [
        [SELECTORS[1]],
        [SELECTORS[1], SELECTORS[5]],
        [SELECTORS[2], SELECTORS[3], SELECTORS[8]],
        [SELECTORS[4], SELECTORS[6], SELECTORS[7]],
        [SELECTORS[0]],
    ],
    ids=["one", "two", "three", "negations", "select-all"],
)
def test_subtract_matches_model(others):
    terms = subtract([ALL], [parse_selector(s) for s in others], limit=64)

    for pod in sample_pods():
        expected = not any(selects(selector, pod) for selector in others)
        assert union_selects(terms, pod) == expected, pod


def test_select_all_leaves_nothing():
    assert subtract([ALL], [parse_selector({})], limit=64) == []


def test_no_other_policy_selects_all():
    terms = subtract([ALL], [], limit=64)

    assert [term.label_selector() for term in terms] == [{}]


def test_subsumed_terms_dropped():
    # Outside "app in (web, db)" and outside "app=web" is just outside the first.
    terms = subtract([ALL], [parse_selector(SELECTORS[3]), parse_selector(SELECTORS[1])], 64)

    assert [term.label_selector() for term in terms] == [
        {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db", "web"]}]}
    ]


def test_too_many_terms_raises():
    # Each selector with three requirements triples the number of terms.
    selectors = [{"matchLabels": {f"k{i}a": "x", f"k{i}b": "x", f"k{i}c": "x"}} for i in range(4)]

    with pytest.raises(TooManyTermsError):
        subtract([ALL], [parse_selector(s) for s in selectors], limit=64)


def test_unknown_operator_raises():
    selector = {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}

    with pytest.raises(SelectorError, match="Gt"):
        parse_selector(selector)


def test_value_set_subset_cases():
    in_ab = ValueSet(absent=False, finite=True, values=frozenset("ab"))
    not_in_c = ValueSet(absent=True, finite=False, values=frozenset("c"))
    exists = ValueSet(absent=False, finite=False, values=frozenset())

    assert in_ab.is_subset(not_in_c)
    assert not not_in_c.is_subset(in_ab)
    assert in_ab.is_subset(exists)
    assert not exists.is_subset(not_in_c)
    assert not not_in_c.is_subset(exists)

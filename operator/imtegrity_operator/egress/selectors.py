"""Label selectors as sets of label values, with complement and intersection.

A NetworkPolicy cannot select "the pods that no other egress policy selects",
and a CiliumClusterwideNetworkPolicy cannot select "every pod except the
proxy's". Both are complements of label selectors. A Kubernetes label selector
is a conjunction of requirements, so its complement is a disjunction, which
one selector cannot express. This module computes such sets in disjunctive
normal form: a list of ``Term`` objects, each a conjunction that becomes one
label selector (so one policy object), and whose union is the wanted set.

Each requirement is represented by the set of values it admits for its key:
whether a missing label is admitted, plus a finite set of values or all
values except a finite set. ``In``, ``NotIn``, ``Exists`` and
``DoesNotExist`` (the operators of a label selector) each map to one such set,
and these sets are closed under intersection and complement.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALL",
    "SelectorError",
    "Term",
    "TooManyTermsError",
    "ValueSet",
    "complement",
    "intersect_all",
    "parse_selector",
    "subtract",
]


class SelectorError(ValueError):
    """A label selector with an operator that label selectors do not have."""


class TooManyTermsError(ValueError):
    """A complement that needs more selectors than the caller allows."""


@dataclass(frozen=True)
class ValueSet:
    """The values of one label key that a selector admits.

    ``absent`` admits objects without the label. With ``finite`` the admitted
    values are exactly ``values``, otherwise every value except ``values``.
    """

    absent: bool
    finite: bool
    values: frozenset[str]

    @property
    def is_empty(self) -> bool:
        return not self.absent and self.finite and not self.values

    @property
    def is_any(self) -> bool:
        return self.absent and not self.finite and not self.values

    def complement(self) -> ValueSet:
        return ValueSet(not self.absent, not self.finite, self.values)

    def intersect(self, other: ValueSet) -> ValueSet:
        absent = self.absent and other.absent
        if self.finite and other.finite:
            return ValueSet(absent, True, self.values & other.values)
        if self.finite:
            return ValueSet(absent, True, self.values - other.values)
        if other.finite:
            return ValueSet(absent, True, other.values - self.values)
        return ValueSet(absent, False, self.values | other.values)

    def is_subset(self, other: ValueSet) -> bool:
        if self.absent and not other.absent:
            return False
        if self.finite and other.finite:
            return self.values <= other.values
        if self.finite:
            return not (self.values & other.values)
        if other.finite:
            return False  # a co-finite set is infinite
        return other.values <= self.values

    def requirements(self, key: str) -> list[dict[str, Any]]:
        """Return the ``matchExpressions`` entries that admit exactly this set."""
        values = sorted(self.values)
        if self.is_any:
            return []
        if not self.absent and self.finite:
            return [{"key": key, "operator": "In", "values": values}]
        if self.absent and not self.finite:
            return [{"key": key, "operator": "NotIn", "values": values}]
        if self.absent and self.finite and not values:
            return [{"key": key, "operator": "DoesNotExist"}]
        if not self.absent and not self.finite:
            exists: list[dict[str, Any]] = [{"key": key, "operator": "Exists"}]
            if values:
                exists.append({"key": key, "operator": "NotIn", "values": values})
            return exists
        # "Missing or one of these values": never the result of intersecting
        # the sets that the four operators produce, which is all this module does.
        raise SelectorError(f"no label selector admits key {key!r} missing or in {values}")


ANY_VALUE = ValueSet(absent=True, finite=False, values=frozenset())


@dataclass(frozen=True)
class Term:
    """A conjunction of per-key value sets: what one label selector selects.

    ``constraints`` holds (key, set) pairs sorted by key; keys it does not
    name admit any value.
    """

    constraints: tuple[tuple[str, ValueSet], ...] = ()

    @classmethod
    def of(cls, constraints: Mapping[str, ValueSet]) -> Term:
        kept = {key: values for key, values in constraints.items() if not values.is_any}
        return cls(tuple(sorted(kept.items())))

    def get(self, key: str) -> ValueSet:
        return dict(self.constraints).get(key, ANY_VALUE)

    @property
    def is_empty(self) -> bool:
        return any(values.is_empty for _, values in self.constraints)

    def intersect(self, other: Term) -> Term:
        merged = dict(self.constraints)
        for key, values in other.constraints:
            merged[key] = merged[key].intersect(values) if key in merged else values
        return Term.of(merged)

    def is_subset(self, other: Term) -> bool:
        return all(self.get(key).is_subset(values) for key, values in other.constraints)

    def label_selector(self) -> dict[str, Any]:
        """Return the Kubernetes label selector for this term; ``{}`` selects everything."""
        expressions = [
            requirement
            for key, values in self.constraints
            for requirement in values.requirements(key)
        ]
        return {"matchExpressions": expressions} if expressions else {}


ALL = Term()


def _requirement_set(requirement: Mapping[str, Any]) -> tuple[str, ValueSet]:
    key = requirement.get("key")
    operator = requirement.get("operator")
    values = frozenset(str(value) for value in requirement.get("values") or [])
    if not isinstance(key, str):
        raise SelectorError(f"label selector requirement without a key: {dict(requirement)}")
    if operator == "In":
        return key, ValueSet(absent=False, finite=True, values=values)
    if operator == "NotIn":
        return key, ValueSet(absent=True, finite=False, values=values)
    if operator == "Exists":
        return key, ValueSet(absent=False, finite=False, values=frozenset())
    if operator == "DoesNotExist":
        return key, ValueSet(absent=True, finite=True, values=frozenset())
    raise SelectorError(
        f"unsupported label selector operator {operator!r} for key {key!r}: "
        "expected In, NotIn, Exists or DoesNotExist"
    )


def parse_selector(selector: Mapping[str, Any] | None) -> Term:
    """Turn a Kubernetes label selector into a ``Term``; raise ``SelectorError``.

    A missing or empty selector selects everything, as in a NetworkPolicy's
    ``podSelector``.
    """
    constraints: dict[str, ValueSet] = {}
    pairs = [
        (key, ValueSet(absent=False, finite=True, values=frozenset([str(value)])))
        for key, value in ((selector or {}).get("matchLabels") or {}).items()
    ]
    pairs += [_requirement_set(r) for r in (selector or {}).get("matchExpressions") or []]
    for key, values in pairs:
        constraints[key] = constraints[key].intersect(values) if key in constraints else values
    return Term.of(constraints)


def _expressible(values: ValueSet) -> list[ValueSet]:
    """Split a set that no single requirement admits ("missing or in V") into two."""
    if values.absent and values.finite and values.values:
        return [
            ValueSet(absent=True, finite=True, values=frozenset()),
            ValueSet(absent=False, finite=True, values=values.values),
        ]
    return [values]


def complement(term: Term) -> list[Term]:
    """Return the complement of ``term`` as a union of terms (empty for ``ALL``)."""
    terms = [
        Term.of({key: part})
        for key, values in term.constraints
        for part in _expressible(values.complement())
    ]
    return [t for t in terms if not t.is_empty]


def _without_subsumed(terms: list[Term]) -> list[Term]:
    """Drop each term that another kept term contains, keeping the first of equal ones."""
    kept: list[Term] = []
    for index, term in enumerate(terms):
        redundant = any(
            term.is_subset(other) and (not other.is_subset(term) or other_index < index)
            for other_index, other in enumerate(terms)
            if other_index != index
        )
        if not redundant:
            kept.append(term)
    return kept


def intersect_all(unions: Iterable[list[Term]], limit: int) -> list[Term]:
    """Intersect several unions of terms; return the result as one union.

    Raises ``TooManyTermsError`` when the simplified result would need more
    than ``limit`` terms.
    """
    result = [ALL]
    for union in unions:
        product = [a.intersect(b) for a, b in itertools.product(result, union)]
        result = _without_subsumed(list(dict.fromkeys(t for t in product if not t.is_empty)))
        if len(result) > limit:
            raise TooManyTermsError(
                f"the complement needs {len(result)} label selectors, more than {limit}"
            )
    return result


def subtract(base: list[Term], removed: Iterable[Term], limit: int) -> list[Term]:
    """Return ``base`` minus every term in ``removed``, as a union of terms."""
    return intersect_all([base, *(complement(term) for term in removed)], limit)

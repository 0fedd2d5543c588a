"""CIDR arithmetic and the search for NetworkPolicies that leave the blocked CIDRs open."""

from __future__ import annotations

import pytest
from imtegrity_operator.egress import cidrs
from imtegrity_operator.egress.analysis import (
    blocked_openings,
    describe_ports,
    find_bypass,
    is_egress_policy,
)

BLOCKED = cidrs.normalize(["64.12.0.0/16", "152.163.0.0/16", "205.188.0.0/16"])


def policy(egress: list | None, types: list[str] | None = ("Egress",), name="p") -> dict:
    spec: dict = {"podSelector": {}}
    if types is not None:
        spec["policyTypes"] = list(types)
    if egress is not None:
        spec["egress"] = egress
    return {"metadata": {"name": name, "namespace": "team"}, "spec": spec}


def reached(policy_body: dict) -> list[str]:
    return [str(n) for opening in blocked_openings(policy_body, BLOCKED) for n in opening.networks]


# CIDR helpers.


def test_normalize_drops_host_bits_and_merges():
    assert cidrs.texts(cidrs.normalize(["64.12.1.1/16", "64.12.0.0/17", "2001:db8::1/32"])) == [
        "64.12.0.0/16",
        "2001:db8::/32",
    ]


def test_intersect_nested_and_disjoint():
    assert cidrs.texts(cidrs.intersect([cidrs.parse_network("64.0.0.0/8")], BLOCKED)) == [
        "64.12.0.0/16"
    ]
    assert cidrs.intersect([cidrs.parse_network("10.0.0.0/8")], BLOCKED) == []


def test_subtract_punches_hole():
    left = cidrs.subtract(
        [cidrs.parse_network("64.12.0.0/16")], [cidrs.parse_network("64.12.0.0/17")]
    )

    assert cidrs.texts(left) == ["64.12.128.0/17"]


def test_subtract_whole():
    assert cidrs.subtract(BLOCKED, [cidrs.parse_network("0.0.0.0/0")]) == []


# Which policies restrict egress.


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (policy([], types=["Egress"]), True),
        (policy(None, types=["Ingress"]), False),
        (policy([{"to": []}], types=None), True),
        (policy(None, types=None), False),
    ],
    ids=["egress-type", "ingress-only", "defaulted-with-rules", "defaulted-without"],
)
def test_is_egress_policy(body, expected):
    assert is_egress_policy(body) is expected


# Openings.


def test_default_deny_has_no_opening():
    assert blocked_openings(policy([]), BLOCKED) == []


def test_empty_to_opens_everything():
    assert reached(policy([{"ports": [{"protocol": "TCP", "port": 443}]}])) == cidrs.texts(BLOCKED)


def test_ip_block_with_blocked_except_is_closed():
    rule = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": cidrs.texts(BLOCKED)}}]}

    assert reached(policy([rule])) == []


def test_ip_block_partly_excepted():
    rule = {"to": [{"ipBlock": {"cidr": "64.12.0.0/16", "except": ["64.12.0.0/17"]}}]}

    assert reached(policy([rule])) == ["64.12.128.0/17"]


def test_single_address_in_blocked():
    rule = {"to": [{"ipBlock": {"cidr": "205.188.13.12/32"}}]}

    assert reached(policy([rule])) == ["205.188.13.12/32"]


def test_selectors_stay_in_cluster():
    rule = {"to": [{"namespaceSelector": {}}, {"podSelector": {"matchLabels": {"a": "b"}}}]}

    assert reached(policy([rule])) == []


def test_ingress_only_policy_ignored():
    assert blocked_openings(policy([{}], types=["Ingress"]), BLOCKED) == []


def test_bypass_names_policy_and_ports():
    rule = {"to": [{"ipBlock": {"cidr": "64.12.24.0/24"}}], "ports": [{"port": 5190}]}

    bypass = find_bypass(policy([rule], name="leaky"), BLOCKED)

    assert bypass is not None
    assert bypass.describe() == "NetworkPolicy team/leaky allows 64.12.24.0/24 on TCP 5190"


def test_closed_policy_is_no_bypass():
    assert find_bypass(policy([{"to": [{"namespaceSelector": {}}]}]), BLOCKED) is None


def test_describe_ports_forms():
    ports = [
        {"protocol": "UDP", "port": 53},
        {"port": 8000, "endPort": 8080},
        {"protocol": "SCTP"},
    ]

    assert describe_ports(ports) == "UDP 53, TCP 8000-8080, every SCTP port"
    assert describe_ports([]) == "every port"

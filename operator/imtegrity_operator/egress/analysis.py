"""Which NetworkPolicies restrict egress, and which of them still allow a blocked CIDR.

NetworkPolicies only add allowed connections: a pod that some egress policy
selects may reach exactly the union of those policies' egress rules. The
operator never adds a policy to such a pod, because that would widen it.
Instead it checks the rules. A rule whose ``to`` is empty or missing allows
every address, an ``ipBlock`` allows its CIDR minus ``except``, and namespace
and pod selectors reach pods inside the cluster only. Whatever part of a
blocked CIDR remains reachable, on whichever ports, is a bypass to report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imtegrity_operator.egress import cidrs
from imtegrity_operator.egress.cidrs import Network


def is_egress_policy(policy: Mapping[str, Any]) -> bool:
    """Return whether a NetworkPolicy isolates the egress of the pods it selects.

    Without ``policyTypes`` the API server's default applies: Egress when the
    policy has egress rules.
    """
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if types:
        return "Egress" in types
    return bool(spec.get("egress"))


def describe_ports(ports: Sequence[Mapping[str, Any]] | None) -> str:
    """Describe a rule's ports as ``TCP 5190, UDP 53``; no ports means every port."""
    if not ports:
        return "every port"
    parts = []
    for port in ports:
        protocol = port.get("protocol", "TCP")
        number = port.get("port")
        if number is None:
            parts.append(f"every {protocol} port")
        elif port.get("endPort"):
            parts.append(f"{protocol} {number}-{port['endPort']}")
        else:
            parts.append(f"{protocol} {number}")
    return ", ".join(parts)


@dataclass(frozen=True)
class Opening:
    """Blocked addresses that one egress rule of a policy allows, on ``ports``."""

    networks: tuple[Network, ...]
    ports: str


@dataclass(frozen=True)
class Bypass:
    """An existing NetworkPolicy that lets the pods it selects reach blocked CIDRs."""

    namespace: str
    name: str
    openings: tuple[Opening, ...]

    def describe(self) -> str:
        reached = "; ".join(
            f"{_first(cidrs.texts(opening.networks))} on {opening.ports}"
            for opening in self.openings
        )
        return f"NetworkPolicy {self.namespace}/{self.name} allows {reached}"


def _first(texts: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(texts[:limit])
    return shown + (f" and {len(texts) - limit} more blocks" if len(texts) > limit else "")


def _peer_reach(peer: Mapping[str, Any], blocked: Sequence[Network]) -> list[Network]:
    block = peer.get("ipBlock")
    if block is None:
        return []  # namespaceSelector and podSelector peers are pods inside the cluster
    try:
        allowed = [cidrs.parse_network(block["cidr"])]
        holes = [cidrs.parse_network(text) for text in block.get("except") or []]
    except (KeyError, ValueError):
        return []  # the API server rejects such a policy, so it cannot exist
    return cidrs.subtract(cidrs.intersect(allowed, blocked), holes)


def blocked_openings(policy: Mapping[str, Any], blocked: Sequence[Network]) -> list[Opening]:
    """Return the parts of ``blocked`` that a NetworkPolicy's egress rules allow."""
    if not is_egress_policy(policy):
        return []
    openings = []
    for rule in (policy.get("spec") or {}).get("egress") or []:
        peers = rule.get("to") or []
        if peers:
            reached = cidrs.normalize(n for peer in peers for n in _peer_reach(peer, blocked))
        else:
            reached = list(blocked)  # no "to": every destination
        if reached:
            openings.append(Opening(tuple(reached), describe_ports(rule.get("ports"))))
    return openings


def find_bypass(policy: Mapping[str, Any], blocked: Sequence[Network]) -> Bypass | None:
    openings = blocked_openings(policy, blocked)
    if not openings:
        return None
    metadata = policy["metadata"]
    return Bypass(metadata.get("namespace", ""), metadata["name"], tuple(openings))

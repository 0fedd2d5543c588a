"""The egress plan: from every proxy and the cluster's state to the objects to write.

Every IMtegrityProxy with ``egress.denyOtherPods`` takes part. Their settings
are merged so that no proxy's denial is weakened by another's: the blocked
CIDRs are the union of theirs, the exempt namespaces the intersection, and
the oldest resource's ``enforcement`` decides the kind. Each proxy still gets
its own allowance for its upstream and its own NetworkPolicy.

This module does no I/O: ``sync`` fetches the inputs and writes the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imtegrity_operator.egress import cidrs, clusterwide, detect, networkpolicy, objects
from imtegrity_operator.egress.analysis import Bypass, find_bypass, is_egress_policy
from imtegrity_operator.egress.cidrs import Network
from imtegrity_operator.egress.clusterwide import ClusterPlan, ProxyAllow
from imtegrity_operator.egress.destinations import proxy_destinations
from imtegrity_operator.egress.detect import ClusterFacts, Enforcement
from imtegrity_operator.egress.inventory import ProxyEntry
from imtegrity_operator.egress.objects import Resource
from imtegrity_operator.egress.selectors import (
    ALL,
    SelectorError,
    TooManyTermsError,
    parse_selector,
    subtract,
)

# Most coverage policies in one namespace; more other policies than this
# needs leave the namespace uncovered (reported), not flooded with objects.
MAX_COVERAGE_POLICIES = 64

RENDERERS = {
    detect.CLUSTER_NETWORK_POLICY: clusterwide.render_cluster_network_policies,
    detect.ADMIN_NETWORK_POLICY: clusterwide.render_admin_network_policies,
    detect.CILIUM: clusterwide.render_cilium_policies,
    detect.CALICO: clusterwide.render_calico_policies,
}


@dataclass(frozen=True)
class ClusterState:
    """The cluster objects an egress plan reads."""

    namespaces: Sequence[Mapping[str, Any]]
    network_policies: Sequence[Mapping[str, Any]]
    host_network_pods: Sequence[Mapping[str, Any]]
    facts: ClusterFacts
    # IP versions of the cluster's Service CIDRs. Dual-stack clusters serve
    # both; both is also the answer when the ServiceCIDR API is not served.
    ip_families: frozenset[int] = networkpolicy.BOTH_FAMILIES


@dataclass
class EgressPlan:
    """Objects to write and what the report needs about them."""

    participants: list[ProxyEntry]
    enforcement: Enforcement | None = None
    blocked: list[Network] = field(default_factory=list)
    exempt: list[str] = field(default_factory=list)
    desired: list[tuple[Resource, dict[str, Any]]] = field(default_factory=list)
    covered_namespaces: list[str] = field(default_factory=list)
    bypasses: list[Bypass] = field(default_factory=list)
    host_network_pods: list[str] = field(default_factory=list)
    # Namespace name -> why the operator could not cover it.
    uncovered: dict[str, str] = field(default_factory=dict)


def merged_blocked(participants: Sequence[ProxyEntry]) -> list[Network]:
    return cidrs.normalize(c for p in participants for c in p.egress.blocked_cidrs)


def merged_exempt(participants: Sequence[ProxyEntry]) -> list[str]:
    exempt = set(participants[0].egress.exempt_namespaces)
    for participant in participants[1:]:
        exempt &= set(participant.egress.exempt_namespaces)
    return sorted(exempt)


def proxy_allow(entry: ProxyEntry, blocked: Sequence[Network]) -> ProxyAllow:
    """Group the blocked addresses a proxy needs by port."""
    by_port: dict[int, list[Network]] = {}
    for destination in proxy_destinations(entry.upstream, blocked):
        by_port.setdefault(destination.port, []).extend(destination.allowed_blocked)
    ports = tuple(
        (port, tuple(cidrs.normalize(networks)))
        for port, networks in sorted(by_port.items())
        if networks
    )
    return ProxyAllow(entry.owner, ports)


def _active_namespaces(state: ClusterState, exempt: Sequence[str]) -> list[str]:
    names = []
    for namespace in state.namespaces:
        name = namespace["metadata"]["name"]
        terminating = (namespace.get("status") or {}).get("phase") == "Terminating"
        if name not in exempt and not terminating:
            names.append(name)
    return sorted(names)


def _is_operator_policy(policy: Mapping[str, Any]) -> bool:
    policy_labels = (policy.get("metadata") or {}).get("labels") or {}
    return policy_labels.get(objects.COMPONENT_LABEL) == objects.COMPONENT


def _plan_namespace(
    plan: EgressPlan,
    state: ClusterState,
    namespace: str,
    others: Sequence[Mapping[str, Any]],
    own: Sequence[Mapping[str, Any]],
) -> None:
    """Add the coverage policies of one namespace, or record why it cannot be covered.

    ``others`` are the users' egress policies there and ``own`` the proxy
    policies the operator writes there; both restrict the pods they select.
    """
    try:
        selected = [parse_selector(p["spec"].get("podSelector")) for p in [*others, *own]]
        terms = subtract([ALL], selected, MAX_COVERAGE_POLICIES)
    except SelectorError as error:
        plan.uncovered[namespace] = str(error)
        return
    except TooManyTermsError:
        plan.uncovered[namespace] = (
            f"the pods outside its {len(others)} egress NetworkPolicies need more than "
            f"{MAX_COVERAGE_POLICIES} label selectors"
        )
        return
    plan.desired += [
        (objects.NETWORK_POLICY, policy)
        for policy in networkpolicy.render_coverage(
            namespace, terms, plan.blocked, state.ip_families
        )
    ]
    plan.covered_namespaces.append(namespace)


def _plan_network_policies(
    plan: EgressPlan, state: ClusterState, proxy_policies: Sequence[Mapping[str, Any]]
) -> None:
    by_namespace: dict[str, list[Mapping[str, Any]]] = {}
    for policy in state.network_policies:
        if is_egress_policy(policy) and not _is_operator_policy(policy):
            by_namespace.setdefault(policy["metadata"]["namespace"], []).append(policy)
    for namespace in _active_namespaces(state, plan.exempt):
        others = by_namespace.get(namespace, [])
        own = [p for p in proxy_policies if p["metadata"]["namespace"] == namespace]
        _plan_namespace(plan, state, namespace, others, own)
        for policy in others:
            bypass = find_bypass(policy, plan.blocked)
            if bypass is not None:
                plan.bypasses.append(bypass)


def _plan_cluster_wide(plan: EgressPlan, state: ClusterState, kind: str) -> None:
    cluster_plan = ClusterPlan(
        blocked=tuple(plan.blocked),
        exempt_namespaces=tuple(plan.exempt),
        proxies=tuple(proxy_allow(entry, plan.blocked) for entry in plan.participants),
    )
    resources = {resource.kind: resource for resource in detect.RESOURCES[kind]}
    try:
        rendered = RENDERERS[kind](cluster_plan)
    except TooManyTermsError as error:
        for namespace in _active_namespaces(state, plan.exempt):
            plan.uncovered[namespace] = str(error)
        return
    plan.desired += [(resources[obj["kind"]], obj) for obj in rendered]
    plan.covered_namespaces = _active_namespaces(state, plan.exempt)


def plan_egress(entries: Sequence[ProxyEntry], state: ClusterState) -> EgressPlan:
    """Return the objects for every taking part proxy and the facts for the report."""
    participants = [entry for entry in entries if entry.egress.deny_other_pods]
    plan = EgressPlan(participants=participants)
    if not participants:
        return plan  # nothing to enforce: every object the operator wrote goes
    plan.blocked = merged_blocked(participants)
    plan.exempt = merged_exempt(participants)
    plan.enforcement = detect.choose_enforcement(participants[0].egress.enforcement, state.facts)
    proxy_policies = [
        networkpolicy.render_proxy_policy(
            entry.owner, proxy_destinations(entry.upstream, plan.blocked), state.ip_families
        )
        for entry in participants
    ]
    # The proxies' own policies come first: coverage in their namespaces
    # assumes that they exist.
    plan.desired += [(objects.NETWORK_POLICY, policy) for policy in proxy_policies]
    if plan.enforcement.kind == detect.NETWORK_POLICY:
        _plan_network_policies(plan, state, proxy_policies)
    else:
        _plan_cluster_wide(plan, state, plan.enforcement.kind)
    plan.host_network_pods = sorted(
        f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        for pod in state.host_network_pods
        if pod["metadata"]["namespace"] not in plan.exempt
    )
    return plan

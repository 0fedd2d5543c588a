"""NetworkPolicies: per-namespace coverage (the fallback) and each proxy's own egress policy.

Coverage. In each covered namespace the operator selects exactly the pods
that no other egress NetworkPolicy selects, and allows them every destination
except the blocked CIDRs. Those pods could reach everything before, so the
policy only takes the blocked CIDRs away. A pod that another policy selects
keeps that policy's allow list unchanged (adding a policy would widen it),
and ``analysis`` reports that policy if it leaves a blocked CIDR open.

The selection is the complement of the other policies' pod selectors,
computed by ``selectors`` as a union of label selectors, one policy each. It
follows every label change at once, because the CNI evaluates the selectors;
only a new, changed or deleted egress policy needs a new computation. Until
that happens (one reconcile pass, started by the NetworkPolicy watch), pods
that a new policy selects are also still selected by the coverage policy, so
their egress is the union of both.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from imtegrity_operator.egress import cidrs, objects
from imtegrity_operator.egress.cidrs import Network
from imtegrity_operator.egress.destinations import DNS_PORT, Destination
from imtegrity_operator.egress.selectors import Term
from imtegrity_operator.render.meta import Owner, owner_reference, selector_labels

# Labels of CoreDNS's pods in kubeadm, k3s, EKS, AKS and GKE (the kube-dns name stayed).
KUBE_DNS_POD_LABELS = {"k8s-app": "kube-dns"}
KUBE_DNS_NAMESPACE = "kube-system"

ALL_NAMESPACES: dict[str, Any] = {"namespaceSelector": {}}
# IP versions of a cluster that serves both families; see ``plan.ClusterState``.
BOTH_FAMILIES = frozenset({4, 6})


def _ip_block(everything: Network, blocked: Sequence[Network]) -> list[dict[str, Any]]:
    """Return an ipBlock peer for ``everything`` except ``blocked``, or none if nothing is left."""
    holes = [n for n in blocked if n.version == everything.version]
    if any(hole.prefixlen == 0 for hole in holes):
        return []  # the whole address family is blocked
    block: dict[str, Any] = {"cidr": str(everything)}
    if holes:
        block["except"] = cidrs.texts(holes)
    return [{"ipBlock": block}]


def everything_except(
    blocked: Sequence[Network], families: Collection[int] = BOTH_FAMILIES
) -> list[dict[str, Any]]:
    """Return ``to`` peers for every pod and every address outside ``blocked``.

    ``families`` are the IP versions the cluster uses: an ipBlock of another
    family could match nothing. The namespace selector keeps pod-to-pod
    traffic allowed in CNIs that do not apply ipBlocks to pod addresses.
    """
    peers = [
        peer
        for everything in (cidrs.IPV4_ALL, cidrs.IPV6_ALL)
        if everything.version in families
        for peer in _ip_block(everything, blocked)
    ]
    return [*peers, ALL_NAMESPACES]


def coverage_name(term: Term) -> str:
    """Name a coverage policy after its selector, so an unchanged selector keeps its object."""
    return f"imtegrity-egress-{objects.short_hash(repr(term.label_selector()))}"


def render_coverage(
    namespace: str,
    terms: Sequence[Term],
    blocked: Sequence[Network],
    families: Collection[int] = BOTH_FAMILIES,
) -> list[dict[str, Any]]:
    """Return one coverage NetworkPolicy per selector term in ``namespace``."""
    rule = {"to": everything_except(blocked, families)}
    return [
        {
            "apiVersion": objects.NETWORK_POLICY.api_version,
            "kind": objects.NETWORK_POLICY.kind,
            "metadata": objects.metadata(
                coverage_name(term), objects.ROLE_COVERAGE, namespace=namespace
            ),
            "spec": {
                "podSelector": term.label_selector(),
                "policyTypes": ["Egress"],
                "egress": [rule],
            },
        }
        for term in terms
    ]


def _destination_rule(destination: Destination, families: Collection[int]) -> dict[str, Any]:
    peers: list[dict[str, Any]] = [
        {"ipBlock": {"cidr": str(network)}}
        for network in destination.networks
        if network.version in families
    ]
    if destination.in_cluster:
        peers.append(ALL_NAMESPACES)
    return {"to": peers, "ports": [{"protocol": "TCP", "port": destination.port}]}


def _dns_rules(families: Collection[int]) -> list[dict[str, Any]]:
    ports = [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}]
    kube_dns = {
        "namespaceSelector": {"matchLabels": {objects.NAMESPACE_NAME_LABEL: KUBE_DNS_NAMESPACE}},
        "podSelector": {"matchLabels": dict(KUBE_DNS_POD_LABELS)},
    }
    # Any address too: a NodeLocal DNSCache listens on a link-local address,
    # and a proxy that resolves through the node (dnsPolicy Default) asks the
    # node's resolvers, wherever they are.
    anywhere = [
        {"ipBlock": {"cidr": str(everything)}}
        for everything in (cidrs.IPV4_ALL, cidrs.IPV6_ALL)
        if everything.version in families
    ]
    return [{"to": [kube_dns, *anywhere], "ports": ports}]


def proxy_policy_name(owner: Owner) -> str:
    return f"{owner.name}-egress"


def render_proxy_policy(
    owner: Owner,
    destinations: Sequence[Destination],
    families: Collection[int] = BOTH_FAMILIES,
) -> dict[str, Any]:
    """Return the proxy pods' NetworkPolicy: their upstream or SOCKS ports, and DNS.

    Its owner reference lets the garbage collector delete it with the resource.
    """
    metadata = objects.metadata(
        proxy_policy_name(owner),
        objects.ROLE_PROXY,
        namespace=owner.namespace,
        proxy=f"{owner.namespace}/{owner.name}",
    )
    metadata["ownerReferences"] = [owner_reference(owner)]
    rules = [_destination_rule(destination, families) for destination in destinations]
    return {
        "apiVersion": objects.NETWORK_POLICY.api_version,
        "kind": objects.NETWORK_POLICY.kind,
        "metadata": metadata,
        "spec": {
            "podSelector": {"matchLabels": selector_labels(owner)},
            "policyTypes": ["Egress"],
            "egress": [*rules, *_dns_rules(families)],
        },
    }


def is_operator_object(policy: Mapping[str, Any], role: str) -> bool:
    policy_labels = (policy.get("metadata") or {}).get("labels") or {}
    return bool(
        policy_labels.get(objects.COMPONENT_LABEL) == objects.COMPONENT
        and policy_labels.get(objects.ROLE_LABEL) == role
    )

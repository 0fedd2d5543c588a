"""Cluster-wide policies: AdminNetworkPolicy, ClusterNetworkPolicy, Cilium and Calico.

Each renderer returns the objects for one enforcement kind. They share the
same plan: deny the blocked CIDRs on every port to every pod outside the
exempt namespaces, and let each proxy's pods reach the part of the blocked
CIDRs that their upstream needs, on their upstream ports.

- AdminNetworkPolicy (policy.networking.k8s.io/v1alpha1) and
  ClusterNetworkPolicy (v1alpha2, Admin tier): one policy per proxy that
  allows (ANP ``Allow``, CNP ``Accept``) at a higher precedence (lower
  ``priority``) than the single deny policy.
- CiliumClusterwideNetworkPolicy (cilium.io/v2): Cilium applies deny rules
  before any allow rule, whatever the policy, so no allow can exempt the
  proxy. The deny policies instead select every pod except the proxies',
  one policy per label selector of that complement. ``enableDefaultDeny``
  is off in both directions, so the selected pods keep all other traffic.
- Calico GlobalNetworkPolicy (crd.projectcalico.org/v1) in a tier of its own,
  ordered before the default tier: an Allow policy per proxy, then the deny
  policy, whose last rule passes everything else to the next tier. The tier's
  ``defaultAction`` is also Pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imtegrity_operator.egress import cidrs, objects, selectors
from imtegrity_operator.egress.cidrs import Network
from imtegrity_operator.egress.selectors import Term, ValueSet
from imtegrity_operator.render.meta import Owner, selector_labels

# AdminNetworkPolicy and ClusterNetworkPolicy priorities: lower values take
# precedence. Two policies with the same priority that match one connection
# make the result undefined, so no other policy in the cluster may use these
# two values. Both are below 100 because some implementations (OVN-Kubernetes)
# accept only 0 to 99.
ALLOW_PRIORITY = 40
DENY_PRIORITY = 41
# Largest lists the network-policy-api schemas allow: CIDRs per peer and peers per rule.
MAX_NETWORKS_PER_PEER = 25
DENY_NAME = "imtegrity-deny-blocked-cidrs"
ALLOW_PREFIX = "imtegrity-allow-proxy"

CILIUM_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
# Most label selectors one complement may need before the operator gives up.
MAX_SELECTOR_TERMS = 64

CALICO_TIER_NAME = "imtegrity"
# Calico evaluates tiers by ascending order. 100 comes before the tier of
# Kubernetes admin network policies (order 1000) and the default tier.
CALICO_TIER_ORDER = 100
CALICO_ALLOW_ORDER = 100
CALICO_DENY_ORDER = 200
CALICO_NAMESPACE_LABEL = "projectcalico.org/namespace"


@dataclass(frozen=True)
class ProxyAllow:
    """The blocked addresses one proxy's pods may reach, per TCP port."""

    owner: Owner
    ports: tuple[tuple[int, tuple[Network, ...]], ...]


@dataclass(frozen=True)
class ClusterPlan:
    """The inputs of every cluster-wide renderer."""

    blocked: tuple[Network, ...]
    exempt_namespaces: tuple[str, ...]
    proxies: tuple[ProxyAllow, ...]


def _chunks(networks: Sequence[Network]) -> list[list[str]]:
    texts = cidrs.texts(networks)
    return [
        texts[start : start + MAX_NETWORKS_PER_PEER]
        for start in range(0, len(texts), MAX_NETWORKS_PER_PEER)
    ]


def _namespace_subject(exempt: Sequence[str]) -> dict[str, Any]:
    if not exempt:
        return {"namespaces": {}}
    expression = {
        "key": objects.NAMESPACE_NAME_LABEL,
        "operator": "NotIn",
        "values": sorted(exempt),
    }
    return {"namespaces": {"matchExpressions": [expression]}}


def _proxy_subject(owner: Owner) -> dict[str, Any]:
    return {
        "pods": {
            "namespaceSelector": {"matchLabels": {objects.NAMESPACE_NAME_LABEL: owner.namespace}},
            "podSelector": {"matchLabels": selector_labels(owner)},
        }
    }


def _proxy_label(owner: Owner) -> str:
    return f"{owner.namespace}/{owner.name}"


# AdminNetworkPolicy, policy.networking.k8s.io/v1alpha1.


def render_admin_network_policies(plan: ClusterPlan) -> list[dict[str, Any]]:
    resource = objects.ADMIN_NETWORK_POLICY
    deny = {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": objects.metadata(DENY_NAME, objects.ROLE_DENY),
        "spec": {
            "priority": DENY_PRIORITY,
            "subject": _namespace_subject(plan.exempt_namespaces),
            "egress": [
                {
                    "name": "deny-blocked-cidrs",
                    "action": "Deny",
                    "to": [{"networks": chunk} for chunk in _chunks(plan.blocked)],
                }
            ],
        },
    }
    allows = []
    for proxy in plan.proxies:
        rules = [
            {
                "name": f"upstream-tcp-{port}",
                "action": "Allow",
                "to": [{"networks": chunk} for chunk in _chunks(networks)],
                "ports": [{"portNumber": {"protocol": "TCP", "port": port}}],
            }
            for port, networks in proxy.ports
        ]
        name = objects.proxy_object_name(ALLOW_PREFIX, proxy.owner.namespace, proxy.owner.name)
        allows.append(
            {
                "apiVersion": resource.api_version,
                "kind": resource.kind,
                "metadata": objects.metadata(
                    name, objects.ROLE_ALLOW, proxy=_proxy_label(proxy.owner)
                ),
                "spec": {
                    "priority": ALLOW_PRIORITY,
                    "subject": _proxy_subject(proxy.owner),
                    "egress": rules,
                },
            }
        )
    return [*allows, deny]


# ClusterNetworkPolicy, policy.networking.k8s.io/v1alpha2, Admin tier.


def render_cluster_network_policies(plan: ClusterPlan) -> list[dict[str, Any]]:
    resource = objects.CLUSTER_NETWORK_POLICY
    deny = {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": objects.metadata(DENY_NAME, objects.ROLE_DENY),
        "spec": {
            "tier": "Admin",
            "priority": DENY_PRIORITY,
            "subject": _namespace_subject(plan.exempt_namespaces),
            "egress": [
                {
                    "name": "deny-blocked-cidrs",
                    "action": "Deny",
                    "to": [{"networks": chunk} for chunk in _chunks(plan.blocked)],
                }
            ],
        },
    }
    allows = []
    for proxy in plan.proxies:
        rules = [
            {
                "name": f"upstream-tcp-{port}",
                "action": "Accept",
                "to": [{"networks": chunk} for chunk in _chunks(networks)],
                "protocols": [{"tcp": {"destinationPort": {"number": port}}}],
            }
            for port, networks in proxy.ports
        ]
        name = objects.proxy_object_name(ALLOW_PREFIX, proxy.owner.namespace, proxy.owner.name)
        allows.append(
            {
                "apiVersion": resource.api_version,
                "kind": resource.kind,
                "metadata": objects.metadata(
                    name, objects.ROLE_ALLOW, proxy=_proxy_label(proxy.owner)
                ),
                "spec": {
                    "tier": "Admin",
                    "priority": ALLOW_PRIORITY,
                    "subject": _proxy_subject(proxy.owner),
                    "egress": rules,
                },
            }
        )
    return [*allows, deny]


# CiliumClusterwideNetworkPolicy, cilium.io/v2.


def _in(values: Sequence[str]) -> ValueSet:
    return ValueSet(absent=False, finite=True, values=frozenset(values))


def cilium_deny_terms(plan: ClusterPlan) -> list[Term]:
    """Return label selectors for every pod outside the exempt namespaces except the proxies'.

    Raises ``selectors.TooManyTermsError`` past ``MAX_SELECTOR_TERMS``.
    """
    covered = Term.of({CILIUM_NAMESPACE_LABEL: _in(plan.exempt_namespaces).complement()})
    proxies = [
        Term.of(
            {
                CILIUM_NAMESPACE_LABEL: _in([proxy.owner.namespace]),
                **{key: _in([value]) for key, value in selector_labels(proxy.owner).items()},
            }
        )
        for proxy in plan.proxies
    ]
    return selectors.subtract([covered], proxies, MAX_SELECTOR_TERMS)


def render_cilium_policies(plan: ClusterPlan) -> list[dict[str, Any]]:
    """Return one deny policy per selector term; raise ``TooManyTermsError`` like the terms."""
    resource = objects.CILIUM_POLICY
    deny_rule = {"toCIDRSet": [{"cidr": cidr} for cidr in cidrs.texts(plan.blocked)]}
    policies = []
    for term in cilium_deny_terms(plan):
        selector = term.label_selector()
        name = f"{DENY_NAME}-{objects.short_hash(repr(selector))}"
        policies.append(
            {
                "apiVersion": resource.api_version,
                "kind": resource.kind,
                "metadata": objects.metadata(name, objects.ROLE_DENY),
                "spec": {
                    "description": (
                        "IMtegrity: deny the blocked CIDRs on every port to every pod "
                        "except the IMtegrity proxies'"
                    ),
                    "endpointSelector": selector,
                    "enableDefaultDeny": {"egress": False, "ingress": False},
                    "egressDeny": [deny_rule],
                },
            }
        )
    return policies


# Calico GlobalNetworkPolicy and Tier, crd.projectcalico.org/v1.


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(f"'{value}'" for value in sorted(values))


def calico_deny_selector(exempt: Sequence[str]) -> str:
    # has(): a host endpoint has no namespace label and "not in" would match it.
    selector = f"has({CALICO_NAMESPACE_LABEL})"
    if exempt:
        selector += f" && {CALICO_NAMESPACE_LABEL} not in {{{_quoted(exempt)}}}"
    return selector


def calico_proxy_selector(owner: Owner) -> str:
    labels = {CALICO_NAMESPACE_LABEL: owner.namespace, **selector_labels(owner)}
    return " && ".join(f"{key} == '{value}'" for key, value in sorted(labels.items()))


def render_calico_policies(plan: ClusterPlan) -> list[dict[str, Any]]:
    """Return the tier first, then its policies; Calico names a tier's policies TIER.NAME."""
    tier = {
        "apiVersion": objects.CALICO_TIER.api_version,
        "kind": objects.CALICO_TIER.kind,
        "metadata": objects.metadata(CALICO_TIER_NAME, objects.ROLE_TIER),
        "spec": {"order": CALICO_TIER_ORDER, "defaultAction": "Pass"},
    }
    resource = objects.CALICO_POLICY
    policies = []
    for proxy in plan.proxies:
        rules = [
            {
                "action": "Allow",
                "protocol": "TCP",
                "destination": {"nets": cidrs.texts(networks), "ports": [port]},
            }
            for port, networks in proxy.ports
        ]
        name = objects.proxy_object_name(
            f"{CALICO_TIER_NAME}.allow-proxy", proxy.owner.namespace, proxy.owner.name
        )
        policies.append(
            {
                "apiVersion": resource.api_version,
                "kind": resource.kind,
                "metadata": objects.metadata(
                    name, objects.ROLE_ALLOW, proxy=_proxy_label(proxy.owner)
                ),
                "spec": {
                    "tier": CALICO_TIER_NAME,
                    "order": CALICO_ALLOW_ORDER,
                    "selector": calico_proxy_selector(proxy.owner),
                    "types": ["Egress"],
                    "egress": rules,
                },
            }
        )
    deny = {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": objects.metadata(f"{CALICO_TIER_NAME}.deny-blocked-cidrs", objects.ROLE_DENY),
        "spec": {
            "tier": CALICO_TIER_NAME,
            "order": CALICO_DENY_ORDER,
            "selector": calico_deny_selector(plan.exempt_namespaces),
            "types": ["Egress"],
            "egress": [
                {"action": "Deny", "destination": {"nets": cidrs.texts(plan.blocked)}},
                {"action": "Pass"},
            ],
        },
    }
    return [tier, *policies, deny]


__all__ = [
    "ALLOW_PRIORITY",
    "DENY_PRIORITY",
    "ClusterPlan",
    "ProxyAllow",
    "render_admin_network_policies",
    "render_calico_policies",
    "render_cilium_policies",
    "render_cluster_network_policies",
]

"""Which egress policy kinds the cluster serves, which it enforces, and which one to use.

"Served" comes from API discovery: the group version lists the resource.
"Enforced" is inferred from the DaemonSet of a network plugin that implements
the kind. Serving alone proves nothing: the network-policy-api CRDs can be
installed without any implementation, and then the API server stores the
policies while no node applies them.

NOTE: the DaemonSet shows which plugin runs, not its version. An old Calico
or Antrea that predates AdminNetworkPolicy support still counts as enforcing it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from imtegrity_operator.egress import objects
from imtegrity_operator.egress.objects import Resource

AUTO = "auto"
NETWORK_POLICY = "networkpolicy"
CLUSTER_NETWORK_POLICY = "clusternetworkpolicy"
ADMIN_NETWORK_POLICY = "adminnetworkpolicy"
CILIUM = "cilium"
CALICO = "calico"

# The resources each enforcement kind writes.
RESOURCES: dict[str, tuple[Resource, ...]] = {
    NETWORK_POLICY: (objects.NETWORK_POLICY,),
    CLUSTER_NETWORK_POLICY: (objects.CLUSTER_NETWORK_POLICY,),
    ADMIN_NETWORK_POLICY: (objects.ADMIN_NETWORK_POLICY,),
    CILIUM: (objects.CILIUM_POLICY,),
    CALICO: (objects.CALICO_TIER, objects.CALICO_POLICY),
}

# The order "auto" tries: the policies that no namespace owner can override first.
AUTO_ORDER = (CLUSTER_NETWORK_POLICY, ADMIN_NETWORK_POLICY, CILIUM, CALICO)

DaemonSetRef = tuple[str, str]  # (namespace, name)

CILIUM_AGENTS: tuple[DaemonSetRef, ...] = (("kube-system", "cilium"),)
CALICO_AGENTS: tuple[DaemonSetRef, ...] = (
    ("kube-system", "calico-node"),  # manifest installs
    ("calico-system", "calico-node"),  # the Tigera operator's installs
)
# Plugins that implement the network-policy-api kinds (AdminNetworkPolicy,
# ClusterNetworkPolicy): kube-network-policies, OVN-Kubernetes, Antrea,
# Calico, and GKE Dataplane V2 (anetd).
NETWORK_POLICY_API_AGENTS: tuple[DaemonSetRef, ...] = (
    ("kube-system", "kube-network-policies"),
    ("ovn-kubernetes", "ovnkube-node"),
    ("openshift-ovn-kubernetes", "ovnkube-node"),
    ("kube-system", "antrea-agent"),
    ("kube-system", "anetd"),
    *CALICO_AGENTS,
)
# Plugins that enforce Kubernetes NetworkPolicy.
NETWORK_POLICY_AGENTS: tuple[DaemonSetRef, ...] = (
    *CILIUM_AGENTS,
    *NETWORK_POLICY_API_AGENTS,
    ("kube-system", "canal"),
    ("kube-system", "kube-router"),
    ("kube-system", "weave-net"),
    ("kube-system", "azure-npm"),
    ("kube-system", "kube-ovn-cni"),
)

AGENTS: dict[str, tuple[DaemonSetRef, ...]] = {
    NETWORK_POLICY: NETWORK_POLICY_AGENTS,
    CLUSTER_NETWORK_POLICY: NETWORK_POLICY_API_AGENTS,
    ADMIN_NETWORK_POLICY: NETWORK_POLICY_API_AGENTS,
    CILIUM: CILIUM_AGENTS,
    CALICO: CALICO_AGENTS,
}

# Namespaces whose DaemonSets the detection reads.
AGENT_NAMESPACES = tuple(sorted({namespace for namespace, _ in NETWORK_POLICY_AGENTS}))

KIND_NAMES = {
    NETWORK_POLICY: "NetworkPolicy",
    CLUSTER_NETWORK_POLICY: "ClusterNetworkPolicy",
    ADMIN_NETWORK_POLICY: "AdminNetworkPolicy",
    CILIUM: "CiliumClusterwideNetworkPolicy",
    CALICO: "Calico GlobalNetworkPolicy",
}


@dataclass(frozen=True)
class ClusterFacts:
    """Results of API discovery and of the DaemonSet listing."""

    served: frozenset[Resource]
    daemonsets: frozenset[DaemonSetRef]

    def serves(self, kind: str) -> bool:
        return all(resource in self.served for resource in RESOURCES[kind])

    def agent(self, kind: str) -> DaemonSetRef | None:
        """Return the first DaemonSet found that enforces ``kind``."""
        return next((ref for ref in AGENTS[kind] if ref in self.daemonsets), None)


@dataclass(frozen=True)
class Enforcement:
    """The policy kind the operator writes.

    ``agent`` is the DaemonSet that enforces it (None: unconfirmed), and
    ``problem`` gives the reason a requested kind could not be used.
    """

    kind: str
    agent: DaemonSetRef | None
    problem: str = ""

    @property
    def resources(self) -> tuple[Resource, ...]:
        return RESOURCES[self.kind]

    def describe(self) -> str:
        text = KIND_NAMES[self.kind]
        if self.agent is not None:
            text += f" (enforced by DaemonSet {self.agent[0]}/{self.agent[1]})"
        return text


def choose_enforcement(requested: str, facts: ClusterFacts) -> Enforcement:
    """Pick the kind to write for the ``enforcement`` setting.

    ``auto`` takes the first kind of ``AUTO_ORDER`` that is both served and
    enforced, else NetworkPolicy. A requested kind that is not served falls
    back to NetworkPolicy, so pods are never left without a policy, and the
    result's ``problem`` gives the reason.
    """
    if requested == AUTO:
        for kind in AUTO_ORDER:
            agent = facts.agent(kind)
            if facts.serves(kind) and agent is not None:
                return Enforcement(kind, agent)
        return Enforcement(NETWORK_POLICY, facts.agent(NETWORK_POLICY))
    # The network-policy-api project renamed AdminNetworkPolicy to
    # ClusterNetworkPolicy; an older install serves only the former.
    only_admin = not facts.serves(CLUSTER_NETWORK_POLICY) and facts.serves(ADMIN_NETWORK_POLICY)
    if requested == CLUSTER_NETWORK_POLICY and only_admin:
        return Enforcement(ADMIN_NETWORK_POLICY, facts.agent(ADMIN_NETWORK_POLICY))
    if not facts.serves(requested):
        missing = ", ".join(
            f"{r.plural}.{r.group}/{r.api_version.rpartition('/')[2]}"
            for r in RESOURCES[requested]
            if r not in facts.served
        )
        return Enforcement(
            NETWORK_POLICY,
            facts.agent(NETWORK_POLICY),
            problem=f"spec.egress.enforcement {requested} needs {missing}, which the "
            "API server does not serve; NetworkPolicies are used instead",
        )
    return Enforcement(requested, facts.agent(requested))


def served_resources(
    discovered: dict[str, Collection[str]], candidates: Collection[Resource]
) -> frozenset[Resource]:
    """Return the candidates whose group version lists their plural.

    ``discovered`` maps an API group version to the resource names it serves.
    """
    return frozenset(
        resource
        for resource in candidates
        if resource.plural in discovered.get(resource.api_version, ())
    )

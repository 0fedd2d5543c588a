"""The API resources of the egress policies, and the names and labels of the operator's objects."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imtegrity_operator.render.meta import MANAGED_BY, MANAGED_BY_LABEL

COMPONENT_LABEL = "imtegrity.io/component"
COMPONENT = "egress"
ROLE_LABEL = "imtegrity.io/egress-role"
PROXY_ANNOTATION = "imtegrity.io/proxy"

# Roles: what each object does, as its ROLE_LABEL value.
ROLE_COVERAGE = "coverage"  # per-namespace NetworkPolicy for pods that no other policy selects
ROLE_PROXY = "proxy"  # the proxy pods' own NetworkPolicy
ROLE_DENY = "deny"  # a cluster-wide deny of the blocked CIDRs
ROLE_ALLOW = "allow"  # a cluster-wide allow for one proxy's pods
ROLE_TIER = "tier"  # the Calico tier that contains the two above

# Label every namespace has (Kubernetes 1.21 and later), set to its name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY},{COMPONENT_LABEL}={COMPONENT}"


@dataclass(frozen=True)
class Resource:
    """One API resource: how to reach its objects over REST."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def collection_path(self, namespace: str | None = None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace is not None:
            return f"{prefix}/namespaces/{namespace}/{self.plural}"
        return f"{prefix}/{self.plural}"

    def object_path(self, name: str, namespace: str | None = None) -> str:
        return f"{self.collection_path(namespace)}/{name}"

    def path_of(self, obj: Mapping[str, Any]) -> str:
        metadata = obj["metadata"]
        return self.object_path(metadata["name"], metadata.get("namespace"))

    def describe(self, obj: Mapping[str, Any]) -> str:
        metadata = obj["metadata"]
        if self.namespaced:
            return f"{self.kind} {metadata.get('namespace')}/{metadata['name']}"
        return f"{self.kind} {metadata['name']}"


NETWORK_POLICY = Resource("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True)
ADMIN_NETWORK_POLICY = Resource(
    "policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy", "adminnetworkpolicies", False
)
CLUSTER_NETWORK_POLICY = Resource(
    "policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy", "clusternetworkpolicies", False
)
CILIUM_POLICY = Resource(
    "cilium.io/v2", "CiliumClusterwideNetworkPolicy", "ciliumclusterwidenetworkpolicies", False
)
CALICO_TIER = Resource("crd.projectcalico.org/v1", "Tier", "tiers", False)
CALICO_POLICY = Resource(
    "crd.projectcalico.org/v1", "GlobalNetworkPolicy", "globalnetworkpolicies", False
)

# Every resource the operator may write; stale objects of each are pruned.
ALL_RESOURCES = (
    NETWORK_POLICY,
    ADMIN_NETWORK_POLICY,
    CLUSTER_NETWORK_POLICY,
    CILIUM_POLICY,
    CALICO_POLICY,
    CALICO_TIER,
)


def short_hash(*parts: str, length: int = 8) -> str:
    """Return a stable hex digest of ``parts``, for names that must not collide."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return digest[:length]


def labels(role: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, COMPONENT_LABEL: COMPONENT, ROLE_LABEL: role}


def metadata(
    name: str,
    role: str,
    *,
    namespace: str | None = None,
    proxy: str | None = None,
) -> dict[str, Any]:
    """Return the metadata of one egress object; ``proxy`` is ``namespace/name`` of its proxy."""
    meta: dict[str, Any] = {"name": name, "labels": labels(role)}
    if namespace is not None:
        meta["namespace"] = namespace
    if proxy is not None:
        meta["annotations"] = {PROXY_ANNOTATION: proxy}
    return meta


def proxy_object_name(prefix: str, namespace: str, name: str) -> str:
    """Name a cluster-scoped object for one proxy; the hash keeps ``a-b/c`` and ``a/b-c`` apart."""
    return f"{prefix}-{namespace}-{name}-{short_hash(namespace, name, length=6)}"


def matches(live: Any, desired: Any) -> bool:
    """Return whether ``live`` has every field of ``desired`` with the same value.

    Lists must have the same length and match item by item; fields that the
    API server or other managers added to ``live`` do not count.
    """
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            key in live and matches(live[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(matches(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)

"""One egress pass against the API server: read the cluster, write the plan, prune the rest.

Writes come first and deletions last, so a policy is replaced by its
successor without a moment in which neither exists. Where a write failed,
nothing in the same namespace (or, for a cluster-scoped object, anywhere) is
pruned: an old policy that still blocks is kept rather than dropped.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imtegrity_operator.egress import detect, objects
from imtegrity_operator.egress.detect import ClusterFacts
from imtegrity_operator.egress.inventory import ProxyEntry
from imtegrity_operator.egress.networkpolicy import BOTH_FAMILIES
from imtegrity_operator.egress.objects import Resource
from imtegrity_operator.egress.plan import ClusterState, EgressPlan, plan_egress
from imtegrity_operator.kube import KubeApiError, KubeClient

logger = logging.getLogger("imtegrity.operator.egress")

CLUSTER_SCOPE = ""  # the failed-scope key of cluster-scoped objects


@dataclass
class EgressResult:
    """A finished pass: its plan and every write or delete that failed."""

    plan: EgressPlan
    errors: list[str] = field(default_factory=list)


def fetch_facts(client: KubeClient) -> ClusterFacts:
    """Read which policy resources are served and which network plugins run."""
    discovered: dict[str, set[str]] = {}
    for api_version in sorted({r.api_version for r in objects.ALL_RESOURCES}):
        found = client.get_at(f"/apis/{api_version}", f"discover {api_version}")
        if found is not None:
            discovered[api_version] = {item["name"] for item in found.get("resources") or []}
    daemonsets = set()
    for namespace in sorted({*detect.AGENT_NAMESPACES, "kube-system"}):
        path = f"/apis/apps/v1/namespaces/{namespace}/daemonsets"
        for item in client.list_at(path, f"list DaemonSets in {namespace}"):
            daemonsets.add((namespace, item["metadata"]["name"]))
    served = detect.served_resources(discovered, objects.ALL_RESOURCES)
    return ClusterFacts(served=served, daemonsets=frozenset(daemonsets))


def _host_network_pods(client: KubeClient) -> list[dict[str, Any]]:
    return client.list_at(
        "/api/v1/pods", "list host-network pods", field_selector="spec.hostNetwork=true"
    )


def _ip_families(client: KubeClient) -> frozenset[int]:
    """Return the IP versions of the ServiceCIDR objects; both when the API is not served.

    NOTE: a cluster with dual-stack pods but single-stack Services is seen
    as single-stack, so its IPv6 pod egress would lose the coverage allowance.
    """
    try:
        items = client.list_at("/apis/networking.k8s.io/v1/servicecidrs", "list ServiceCIDRs")
    except KubeApiError as error:
        if error.status == 404:
            return BOTH_FAMILIES
        raise
    families = {
        ipaddress.ip_network(cidr, strict=False).version
        for item in items
        for cidr in (item.get("spec") or {}).get("cidrs") or []
    }
    return frozenset(families) or BOTH_FAMILIES


def fetch_state(client: KubeClient, facts: ClusterFacts) -> ClusterState:
    return ClusterState(
        namespaces=client.list_at("/api/v1/namespaces", "list namespaces"),
        network_policies=client.list_at(
            objects.NETWORK_POLICY.collection_path(), "list NetworkPolicies"
        ),
        host_network_pods=_host_network_pods(client),
        facts=facts,
        ip_families=_ip_families(client),
    )


def _key(resource: Resource, obj: Mapping[str, Any]) -> tuple[str, str, str]:
    metadata = obj["metadata"]
    return (resource.plural, metadata.get("namespace") or "", metadata["name"])


def _scope(resource: Resource, obj: Mapping[str, Any]) -> str:
    return obj["metadata"].get("namespace", "") if resource.namespaced else CLUSTER_SCOPE


def _live_objects(
    client: KubeClient, served: frozenset[Resource], state: ClusterState
) -> dict[tuple[str, str, str], tuple[Resource, dict[str, Any]]]:
    """Return the operator's egress objects that exist now, by (plural, namespace, name)."""
    live: dict[tuple[str, str, str], tuple[Resource, dict[str, Any]]] = {}
    for resource in objects.ALL_RESOURCES:
        if resource not in served and resource is not objects.NETWORK_POLICY:
            continue
        if resource is objects.NETWORK_POLICY:
            items = [dict(p) for p in state.network_policies]
        else:
            items = client.list_at(
                resource.collection_path(),
                f"list {resource.kind} objects",
                label_selector=objects.SELECTOR,
            )
        for item in items:
            item_labels = (item.get("metadata") or {}).get("labels") or {}
            if item_labels.get(objects.COMPONENT_LABEL) == objects.COMPONENT:
                live[_key(resource, item)] = (resource, item)
    return live


def _write(
    client: KubeClient,
    desired: Sequence[tuple[Resource, dict[str, Any]]],
    live: Mapping[tuple[str, str, str], tuple[Resource, dict[str, Any]]],
    served: frozenset[Resource],
    result: EgressResult,
    failed_scopes: set[str],
) -> None:
    for resource, obj in desired:
        description = resource.describe(obj)
        if resource not in served and resource is not objects.NETWORK_POLICY:
            result.errors.append(f"{description}: {resource.kind} is not served")
            failed_scopes.add(_scope(resource, obj))
            continue
        current = live.get(_key(resource, obj))
        if current is not None and objects.matches(current[1], obj):
            continue  # already as desired; skip a no-op apply
        try:
            client.apply_at(resource.path_of(obj), obj, f"apply {description}")
        except KubeApiError as error:
            logger.warning("egress: %s", error)
            result.errors.append(str(error))
            failed_scopes.add(_scope(resource, obj))
        else:
            verb = "created" if current is None else "updated"
            logger.info("egress: %s %s", verb, description)


def _prune(
    client: KubeClient,
    desired: Sequence[tuple[Resource, dict[str, Any]]],
    live: Mapping[tuple[str, str, str], tuple[Resource, dict[str, Any]]],
    result: EgressResult,
    failed_scopes: set[str],
) -> None:
    if CLUSTER_SCOPE in failed_scopes:
        return  # a cluster-wide write failed: keep every older policy
    wanted = {_key(resource, obj) for resource, obj in desired}
    order = {resource.plural: index for index, resource in enumerate(objects.ALL_RESOURCES)}
    stale = sorted((key for key in live if key not in wanted), key=lambda k: order[k[0]])
    for key in stale:
        resource, obj = live[key]
        if _scope(resource, obj) in failed_scopes:
            continue
        description = resource.describe(obj)
        try:
            client.delete_at(resource.path_of(obj), f"delete {description}")
        except KubeApiError as error:
            logger.warning("egress: %s", error)
            result.errors.append(str(error))
        else:
            logger.info("egress: deleted %s", description)


def run_egress_pass(
    client: KubeClient, entries: Sequence[ProxyEntry], facts: ClusterFacts
) -> EgressResult:
    """Plan and write the egress objects; raise ``KubeApiError`` when a read fails."""
    state = fetch_state(client, facts)
    plan = plan_egress(entries, state)
    result = EgressResult(plan=plan)
    live = _live_objects(client, facts.served, state)
    failed_scopes: set[str] = set()
    _write(client, plan.desired, live, facts.served, result, failed_scopes)
    _prune(client, plan.desired, live, result, failed_scopes)
    return result

"""One DNS pass against the API server: read CoreDNS's configuration, write the plan.

Corefile edits are merge patches that carry the ConfigMap's resourceVersion,
so a concurrent edit by someone else makes the API server answer 409
Conflict instead of losing either change; the pass then reads the ConfigMap
again and retries. The ``coredns-custom`` key is written with server-side
apply, so the operator owns that one key and no other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imtegrity_operator.dns import plan as dns_plan
from imtegrity_operator.dns.corefile import CorefileError
from imtegrity_operator.dns.plan import (
    COREDNS_NAMESPACE,
    COREFILE_CONFIG_MAP,
    COREFILE_KEY,
    CUSTOM_CONFIG_MAP,
    CUSTOM_KEY,
    MODE_CUSTOM,
    DnsPlan,
    DnsState,
)
from imtegrity_operator.egress.detect import ClusterFacts
from imtegrity_operator.egress.inventory import ProxyEntry
from imtegrity_operator.kube import KubeApiError, KubeClient

logger = logging.getLogger("imtegrity.operator.dns")

# Attempts at a Corefile edit that keeps losing the race to other writers.
MAX_CONFLICT_RETRIES = 5
# Set on a coredns-custom ConfigMap that the operator created, so that it
# deletes the ConfigMap again once its own key is gone and nothing else is left.
CREATED_ANNOTATION = "imtegrity.io/created-by-operator"

CONFIG_MAP_PATH = f"/api/v1/namespaces/{COREDNS_NAMESPACE}/configmaps"
COREFILE_PATH = f"{CONFIG_MAP_PATH}/{COREFILE_CONFIG_MAP}"
CUSTOM_PATH = f"{CONFIG_MAP_PATH}/{CUSTOM_CONFIG_MAP}"
DEPLOYMENT_PATH = f"/apis/apps/v1/namespaces/{COREDNS_NAMESPACE}/deployments/coredns"


@dataclass
class DnsResult:
    plan: DnsPlan
    errors: list[str] = field(default_factory=list)


def service_addresses(service: Mapping[str, Any] | None) -> list[str]:
    """Return a Service's ClusterIPs; a headless or unallocated Service has none."""
    if service is None:
        return []
    spec = service.get("spec") or {}
    addresses = spec.get("clusterIPs") or [spec.get("clusterIP")]
    return [a for a in addresses if a and a != "None"]


def fetch_state(
    client: KubeClient, entries: Sequence[ProxyEntry], facts: ClusterFacts
) -> DnsState:
    service_ips = {}
    for entry in entries:
        if entry.dns.override:
            owner = entry.owner
            path = f"/api/v1/namespaces/{owner.namespace}/services/{owner.name}"
            service = client.get_at(path, f"get Service {owner.namespace}/{owner.name}")
            service_ips[owner.uid] = service_addresses(service)
    return DnsState(
        corefile_map=client.get_at(COREFILE_PATH, "get ConfigMap kube-system/coredns"),
        custom_map=client.get_at(CUSTOM_PATH, "get ConfigMap kube-system/coredns-custom"),
        deployment=client.get_at(DEPLOYMENT_PATH, "get Deployment kube-system/coredns"),
        service_ips=service_ips,
        facts=facts,
    )


def _write_corefile(client: KubeClient, plan: DnsPlan, current: Mapping[str, Any] | None) -> None:
    """Bring the Corefile's section in line with ``plan``, retrying on conflicts."""
    for _ in range(MAX_CONFLICT_RETRIES):
        if current is None:
            return  # no Corefile: nothing to add to or remove from
        text = (current.get("data") or {}).get(COREFILE_KEY)
        if text is None:
            return
        wanted = dns_plan.desired_corefile(text, plan.blocks, plan.mode)
        if wanted == text:
            return
        patch = {
            "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
            "data": {COREFILE_KEY: wanted},
        }
        try:
            client.merge_patch_at(COREFILE_PATH, patch, "edit the Corefile in kube-system/coredns")
        except KubeApiError as error:
            if error.status != 409:
                raise
            logger.info("dns: the Corefile changed while the operator edited it; retrying")
            current = client.get_at(COREFILE_PATH, "get ConfigMap kube-system/coredns")
            continue
        logger.info("dns: updated the Corefile section in kube-system/coredns")
        return
    raise KubeApiError(
        "edit the Corefile in kube-system/coredns",
        409,
        f"the ConfigMap changed during each of {MAX_CONFLICT_RETRIES} attempts",
    )


def _custom_object(annotated: bool, value: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": CUSTOM_CONFIG_MAP, "namespace": COREDNS_NAMESPACE}
    if annotated:
        metadata["annotations"] = {CREATED_ANNOTATION: "true"}
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    if value is not None:
        obj["data"] = {CUSTOM_KEY: value}
    return obj


def _write_custom(client: KubeClient, plan: DnsPlan, current: Mapping[str, Any] | None) -> None:
    """Set or remove the operator's key in coredns-custom."""
    value = plan.blocks if plan.mode == MODE_CUSTOM and plan.blocks else None
    data = (current or {}).get("data") or {}
    if data.get(CUSTOM_KEY) == value or (current is None and value is None):
        return
    annotations = ((current or {}).get("metadata") or {}).get("annotations") or {}
    created = current is None or annotations.get(CREATED_ANNOTATION) == "true"
    action = "apply ConfigMap kube-system/coredns-custom"
    result = client.apply_at(CUSTOM_PATH, _custom_object(created, value), action)
    if value is not None:
        logger.info("dns: wrote key %s of ConfigMap kube-system/coredns-custom", CUSTOM_KEY)
        return
    left = result.get("data") or {}
    if CUSTOM_KEY in left:
        # Another field manager (kubectl edit) shares the key, so the apply
        # left it in place; a merge patch removes it whoever owns it.
        result = client.merge_patch_at(CUSTOM_PATH, {"data": {CUSTOM_KEY: None}}, action)
        left = result.get("data") or {}
    logger.info("dns: removed key %s of ConfigMap kube-system/coredns-custom", CUSTOM_KEY)
    if created and not left and not result.get("binaryData"):
        version = result["metadata"]["resourceVersion"]
        client.delete_at(CUSTOM_PATH, "delete ConfigMap kube-system/coredns-custom", version)


def run_dns_pass(
    client: KubeClient, entries: Sequence[ProxyEntry], facts: ClusterFacts
) -> DnsResult:
    """Plan and write the DNS override; raise ``KubeApiError`` if a read fails."""
    state = fetch_state(client, entries, facts)
    plan = dns_plan.plan_dns(entries, state)
    result = DnsResult(plan=plan)
    writes = [(_write_corefile, state.corefile_map), (_write_custom, state.custom_map)]
    if plan.mode != MODE_CUSTOM:
        # Remove from the place not in use before adding to the other: CoreDNS
        # rejects a configuration that defines a zone twice.
        writes.reverse()
    for write, current in writes:
        try:
            write(client, plan, current)
        except (KubeApiError, CorefileError) as error:
            logger.warning("dns: %s", error)
            result.errors.append(str(error))
    return result

"""The DNS plan: which proxy answers which host name, where the answers go, and what defeats them.

Every IMtegrityProxy with ``dns.override`` takes part. A host name belongs to
the oldest resource that lists it; a younger one reports the conflict. A
host name that the user's own Corefile (or another ``*.server`` key of the
``coredns-custom`` ConfigMap) already serves as a zone is left alone, because
CoreDNS refuses a configuration that defines one zone twice.

Modes:

- ``coredns-custom``: a ``.server`` key in the ``kube-system/coredns-custom``
  ConfigMap, which k3s and AKS mount into CoreDNS and import with
  ``import /etc/coredns/custom/*.server``;
- ``corefile``: a marked section at the end of the Corefile in the
  ``kube-system/coredns`` ConfigMap;
- ``auto``: ``coredns-custom`` when the Corefile imports ``*.server`` files
  from the directory where the CoreDNS Deployment mounts ``coredns-custom``
  (or no Deployment named ``coredns`` exists to check), otherwise
  ``corefile``.

The oldest taking part resource's ``mode`` decides. This module does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imtegrity_operator.dns import corefile, render
from imtegrity_operator.dns.corefile import Corefile, CorefileError
from imtegrity_operator.egress.detect import ClusterFacts
from imtegrity_operator.egress.inventory import ProxyEntry

COREDNS_NAMESPACE = "kube-system"
COREFILE_CONFIG_MAP = "coredns"
COREFILE_KEY = "Corefile"
CUSTOM_CONFIG_MAP = "coredns-custom"
CUSTOM_KEY = "imtegrity.server"
COREDNS_DEPLOYMENT = "coredns"
NODE_LOCAL_DNS = (COREDNS_NAMESPACE, "node-local-dns")

MODE_CUSTOM = "coredns-custom"
MODE_COREFILE = "corefile"
AUTO = "auto"

# The Kubernetes add-on manager (GKE, AKS, kube-up) rewrites objects with this
# label to its own copy.
ADDON_MANAGER_LABEL = ("addonmanager.kubernetes.io/mode", "Reconcile")
# EKS applies its managed add-ons with server-side apply under this field manager.
EKS_FIELD_MANAGER = "eks"


@dataclass(frozen=True)
class DnsState:
    """The cluster objects a DNS plan reads; a missing object is None."""

    corefile_map: Mapping[str, Any] | None
    custom_map: Mapping[str, Any] | None
    deployment: Mapping[str, Any] | None
    # Proxy UID -> the ClusterIPs of its Service (empty while unallocated).
    service_ips: Mapping[str, Sequence[str]]
    facts: ClusterFacts


@dataclass(frozen=True)
class Defeat:
    """Something in the cluster that stops clients from getting the override."""

    reason: str
    message: str


@dataclass
class DnsPlan:
    """The server blocks to write, the owner of each host name, and the facts for the report."""

    participants: list[ProxyEntry]
    mode: str = ""
    port: int = corefile.DEFAULT_DNS_PORT
    bind: list[str] = field(default_factory=list)
    # Host name -> the resource that owns it.
    owners: dict[str, ProxyEntry] = field(default_factory=dict)
    # Host name -> its addresses, for the host names that get a server block.
    answers: dict[str, list[str]] = field(default_factory=dict)
    # Host name -> where a zone for it is already defined.
    taken: dict[str, str] = field(default_factory=dict)
    defeats: list[Defeat] = field(default_factory=list)
    # Set when CoreDNS's configuration cannot be read or edited.
    problem: Defeat | None = None

    @property
    def blocks(self) -> str:
        return render.render_blocks(list(self.answers.items()), self.port, self.bind)


def _data(config_map: Mapping[str, Any] | None, key: str) -> str | None:
    if config_map is None:
        return None
    return (config_map.get("data") or {}).get(key)


def mounts_custom(deployment: Mapping[str, Any], directories: Sequence[str]) -> bool:
    """Return whether the Deployment mounts ConfigMap coredns-custom at one of ``directories``."""
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    volumes = {
        volume["name"]
        for volume in pod.get("volumes") or []
        if (volume.get("configMap") or {}).get("name") == CUSTOM_CONFIG_MAP
    }
    wanted = {directory.rstrip("/") for directory in directories}
    return any(
        mount.get("name") in volumes and str(mount.get("mountPath", "")).rstrip("/") in wanted
        for container in pod.get("containers") or []
        for mount in container.get("volumeMounts") or []
    )


def choose_mode(
    requested: str, parsed: Corefile | None, deployment: Mapping[str, Any] | None
) -> str:
    if requested != AUTO:
        return requested
    directories = corefile.server_import_dirs(parsed) if parsed is not None else []
    if directories and (deployment is None or mounts_custom(deployment, directories)):
        return MODE_CUSTOM
    return MODE_COREFILE


def _managed_by_addon(config_map: Mapping[str, Any]) -> str:
    metadata = config_map.get("metadata") or {}
    key, value = ADDON_MANAGER_LABEL
    if (metadata.get("labels") or {}).get(key) == value:
        return f"its label {key}={value} makes the add-on manager restore its own copy"
    for entry in metadata.get("managedFields") or []:
        fields = (entry.get("fieldsV1") or {}).get("f:data") or {}
        if entry.get("manager") == EKS_FIELD_MANAGER and f"f:{COREFILE_KEY}" in fields:
            return "the EKS CoreDNS add-on manages its Corefile and overwrites it on updates"
    return ""


def _user_zones(state: DnsState, user_corefile: Corefile | None) -> dict[tuple[str, int], str]:
    """Return the zones that the user's configuration serves, with where each is defined."""
    where = {}
    if user_corefile is not None:
        for zone in corefile.zones(user_corefile):
            where[zone] = f"ConfigMap {COREDNS_NAMESPACE}/{COREFILE_CONFIG_MAP}"
    custom = (state.custom_map or {}).get("data") or {}
    for key, text in sorted(custom.items()):
        if key == CUSTOM_KEY or not key.endswith(".server"):
            continue
        try:
            parsed = corefile.parse(text)
        except CorefileError:
            continue  # CoreDNS rejects it too; it serves no zone
        for zone in corefile.zones(parsed):
            where[zone] = f"key {key} of ConfigMap {COREDNS_NAMESPACE}/{CUSTOM_CONFIG_MAP}"
    return where


def _assign(plan: DnsPlan, state: DnsState, zones_in_use: Mapping[tuple[str, int], str]) -> None:
    for entry in plan.participants:
        for hostname in entry.dns.hostnames:
            name = hostname.rstrip(".").lower()
            if name in plan.owners:
                continue  # an older resource owns it
            plan.owners[name] = entry
            defined = zones_in_use.get((f"{name}.", plan.port))
            if defined:
                plan.taken[name] = defined
                continue
            addresses = list(state.service_ips.get(entry.owner.uid) or [])
            if addresses:
                plan.answers[name] = addresses


def _defeats(plan: DnsPlan, state: DnsState, parsed: Corefile | None) -> None:
    if NODE_LOCAL_DNS in state.facts.daemonsets:
        plan.defeats.append(
            Defeat(
                "NodeLocalDNSCache",
                "NodeLocal DNSCache (DaemonSet kube-system/node-local-dns) answers the pods' "
                "queries and sends names outside the cluster domain to the node's resolver, "
                "not to CoreDNS",
            )
        )
    if plan.mode == MODE_COREFILE and state.corefile_map is not None:
        managed = _managed_by_addon(state.corefile_map)
        if managed:
            plan.defeats.append(
                Defeat(
                    "ManagedCoreDNS",
                    f"ConfigMap {COREDNS_NAMESPACE}/{COREFILE_CONFIG_MAP} is managed: {managed}",
                )
            )
    if plan.mode == MODE_CUSTOM and parsed is not None and not corefile.server_import_dirs(parsed):
        plan.defeats.append(
            Defeat(
                "NotImported",
                f"the Corefile has no top-level import of *.server files, so CoreDNS never "
                f"reads ConfigMap {COREDNS_NAMESPACE}/{CUSTOM_CONFIG_MAP}",
            )
        )
    if parsed is not None and not corefile.has_reload(parsed):
        plan.defeats.append(
            Defeat(
                "ReloadMissing",
                "the Corefile does not load the reload plugin, so CoreDNS reads the change "
                "only when its pods restart",
            )
        )


def plan_dns(entries: Sequence[ProxyEntry], state: DnsState) -> DnsPlan:
    """Return the DNS plan for the live resources, oldest first."""
    plan = DnsPlan(participants=[entry for entry in entries if entry.dns.override])
    text = _data(state.corefile_map, COREFILE_KEY)
    parsed = None
    if text is None:
        plan.problem = Defeat(
            "CoreDNSNotFound",
            f"ConfigMap {COREDNS_NAMESPACE}/{COREFILE_CONFIG_MAP} with a Corefile key was "
            "not found, so the cluster does not run CoreDNS as the operator expects",
        )
    else:
        try:
            user_text, _ = corefile.split_section(text)
            parsed = corefile.parse(user_text)
        except CorefileError as error:
            plan.problem = Defeat("CorefileInvalid", f"the Corefile cannot be edited: {error}")
    if not plan.participants:
        return plan
    plan.mode = choose_mode(plan.participants[0].dns.mode, parsed, state.deployment)
    if parsed is not None:
        plan.port = corefile.root_port(parsed)
        root = corefile.root_block(parsed)
        plan.bind = list((root.directive("bind") if root else None) or [])
    _assign(plan, state, _user_zones(state, parsed))
    _defeats(plan, state, parsed)
    return plan


def desired_corefile(current: str, blocks: str, mode: str) -> str:
    """Return the Corefile with the operator's section for ``mode`` (none outside corefile mode).

    Raises ``CorefileError`` when the current section's markers are broken.
    """
    user_text, _ = corefile.split_section(current)
    return corefile.with_section(user_text, blocks if mode == MODE_COREFILE else "")

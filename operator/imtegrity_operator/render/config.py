"""The proxy's config file, rendered from the spec into a ConfigMap.

The config goes through the proxy's own model (``parse_config``), so the
operator never writes a file that ``imtegrity-proxy config check`` rejects.

Reload or restart: the proxy rereads ``policy`` when the mounted file changes,
so a policy edit updates the ConfigMap only. Every other section (listen
ports, advertise, upstream, relay, archive, health, logging) takes effect only
at start, so ``restart_checksum`` covers those sections, and the Deployment
carries it as a pod-template annotation: a change there rolls the pods.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from imtegrity_proxy.config import Config, ConfigError, parse_config, render_config_yaml

from imtegrity_operator.render.meta import Owner, object_meta
from imtegrity_operator.spec import ProxySpec, SpecError

CONFIG_DIR = "/etc/imtegrity"
CONFIG_FILE = "config.yaml"
ARCHIVE_DIR = "/var/lib/imtegrity"
ARCHIVE_FILE = "archive.sqlite3"
# Every address of the pod, so that kubelet probes and the Service reach it.
# NOTE: an IPv6-only cluster needs "::" here; nothing in the spec selects it yet.
LISTEN_HOST = "0.0.0.0"  # noqa: S104

# Sections the proxy applies without a restart.
RELOADABLE_SECTIONS = frozenset({"policy"})

# Config file paths that come from spec fields with other names.
_SPEC_PATHS = {
    "listen.ports": "spec.ports",
    "advertise.host": "spec.advertiseHost",
    "health.port": "spec.healthPort",
}


def _proxy_config_data(spec: ProxySpec) -> dict[str, Any]:
    archive = spec.archive.model_dump(mode="json", exclude={"storage_size", "storage_class_name"})
    return {
        "listen": {"host": LISTEN_HOST, "ports": list(spec.ports)},
        "advertise": {"host": spec.advertise_host},
        "upstream": spec.upstream.model_dump(mode="json"),
        "relay": spec.relay.model_dump(mode="json"),
        "archive": {"path": f"{ARCHIVE_DIR}/{ARCHIVE_FILE}", **archive},
        "policy": spec.policy.model_dump(mode="json"),
        "health": {"host": LISTEN_HOST, "port": spec.health_port},
        "logging": spec.logging.model_dump(mode="json"),
    }


def _spec_path(config_path: str) -> str:
    for config_prefix, spec_prefix in _SPEC_PATHS.items():
        if config_path.startswith(config_prefix):
            return spec_prefix + config_path.removeprefix(config_prefix)
    return f"spec.{config_path}"


def build_proxy_config(spec: ProxySpec) -> Config:
    """Return the proxy's config for ``spec``; raise ``SpecError`` naming spec fields."""
    try:
        return parse_config(_proxy_config_data(spec))
    except ConfigError as error:
        raise SpecError([_spec_path(line) for line in error.errors]) from None


def restart_checksum(config: Config) -> str:
    """Return a SHA-256 over the config sections that the proxy reads only at start."""
    sections = config.model_dump(mode="json", exclude=set(RELOADABLE_SECTIONS))
    canonical = json.dumps(sections, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def render_config_map(owner: Owner, config: Config) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(owner, owner.config_map_name),
        "data": {CONFIG_FILE: render_config_yaml(config)},
    }

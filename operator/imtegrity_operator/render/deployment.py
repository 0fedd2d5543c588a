"""The proxy's Deployment."""

from __future__ import annotations

import math
from typing import Any

from imtegrity_operator.dns.proxy_pod import proxy_dns_policy
from imtegrity_operator.render.config import ARCHIVE_DIR, CONFIG_DIR, CONFIG_FILE
from imtegrity_operator.render.meta import Owner, labels, object_meta, selector_labels
from imtegrity_operator.spec import ProxySpec

CONTAINER_NAME = "proxy"
CHECKSUM_ANNOTATION = "imtegrity.io/config-checksum"
# A fixed non-root identity; the archive volume is made writable for its group.
PROXY_UID = 10001
PROXY_GID = 10001
# Ports below this number need NET_BIND_SERVICE (Linux's default
# net.ipv4.ip_unprivileged_port_start).
FIRST_UNPRIVILEGED_PORT = 1024
# Time the pod gets after the proxy's own shutdown grace, for the process to exit.
EXIT_MARGIN_SECONDS = 5


def port_name(port: int) -> str:
    """Return the name of a client port, the same on the container and the Service."""
    return f"oscar-{port}"


def _container_ports(spec: ProxySpec) -> list[dict[str, Any]]:
    ports = [
        {"name": port_name(port), "containerPort": port, "protocol": "TCP"} for port in spec.ports
    ]
    ports.append({"name": "health", "containerPort": spec.health_port, "protocol": "TCP"})
    return ports


def _probe(path: str, period_seconds: int, failure_threshold: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "health", "scheme": "HTTP"},
        "periodSeconds": period_seconds,
        "timeoutSeconds": 2,
        "failureThreshold": failure_threshold,
    }


def _container_security_context(spec: ProxySpec) -> dict[str, Any]:
    capabilities: dict[str, list[str]] = {"drop": ["ALL"]}
    if min(spec.ports) < FIRST_UNPRIVILEGED_PORT:
        # NOTE: a non-root process gets this capability only when the image
        # sets it as a file capability. Otherwise the runtime must set
        # net.ipv4.ip_unprivileged_port_start to 0 (containerd's CRI plugin
        # does with enable_unprivileged_ports).
        capabilities["add"] = ["NET_BIND_SERVICE"]
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": PROXY_UID,
        "runAsGroup": PROXY_GID,
        "capabilities": capabilities,
    }


def _container(spec: ProxySpec, image: str) -> dict[str, Any]:
    return {
        "name": CONTAINER_NAME,
        "image": image,
        "command": ["imtegrity-proxy", "serve", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"],
        "ports": _container_ports(spec),
        "livenessProbe": _probe("/healthz", period_seconds=10, failure_threshold=3),
        "readinessProbe": _probe("/readyz", period_seconds=5, failure_threshold=2),
        "resources": spec.resources.model_dump(mode="json"),
        "securityContext": _container_security_context(spec),
        "volumeMounts": [
            # A whole-directory mount (no subPath), so the kubelet updates the
            # file in place and the proxy can reload its policy.
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "archive", "mountPath": ARCHIVE_DIR},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 (a private emptyDir)
        ],
    }


def _volumes(owner: Owner) -> list[dict[str, Any]]:
    # NOTE: no Secret is mounted for upstream.socks.proxies[].password_file yet,
    # so that file must already exist in the image.
    return [
        {"name": "config", "configMap": {"name": owner.config_map_name}},
        {"name": "archive", "persistentVolumeClaim": {"claimName": owner.archive_claim_name}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]


def _pod_spec(owner: Owner, spec: ProxySpec, image: str) -> dict[str, Any]:
    grace = math.ceil(spec.relay.shutdown_grace_seconds) + EXIT_MARGIN_SECONDS
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        # Default (the node's resolver) when cluster DNS would answer the
        # proxy's own upstream name with the proxy itself.
        "dnsPolicy": proxy_dns_policy(spec),
        "terminationGracePeriodSeconds": grace,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": PROXY_UID,
            "runAsGroup": PROXY_GID,
            "fsGroup": PROXY_GID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(spec, image)],
        "volumes": _volumes(owner),
    }


def render_deployment(
    owner: Owner, spec: ProxySpec, image: str, config_checksum: str
) -> dict[str, Any]:
    """Return the Deployment; ``config_checksum`` is ``restart_checksum`` of its config."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(owner, owner.name),
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": selector_labels(owner)},
            # The old pod must release the archive (a ReadWriteOnce volume and a
            # single-writer SQLite file) before the new one starts.
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {
                    "labels": labels(owner),
                    "annotations": {CHECKSUM_ANNOTATION: config_checksum},
                },
                "spec": _pod_spec(owner, spec, image),
            },
        },
    }

"""The proxy's Service."""

from __future__ import annotations

from typing import Any

from imtegrity_operator.render.deployment import port_name
from imtegrity_operator.render.meta import Owner, object_meta, selector_labels
from imtegrity_operator.spec import ProxySpec


def render_service(owner: Owner, spec: ProxySpec) -> dict[str, Any]:
    """Return a ClusterIP Service with every client port.

    After a redirect, a client's next connection presents a cookie that only the
    issuing replica has stored, so ``sessionAffinity: ClientIP`` keeps each
    client on one replica.
    """
    ports = [
        {"name": port_name(port), "port": port, "targetPort": port_name(port), "protocol": "TCP"}
        for port in spec.ports
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(owner, owner.name),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(owner),
            "sessionAffinity": "ClientIP",
            "ports": ports,
        },
    }

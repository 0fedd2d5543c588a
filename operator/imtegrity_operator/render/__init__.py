"""Pure functions from an IMtegrityProxy spec to the child objects it needs.

Nothing here talks to the API server: every function takes the owner and the
validated spec and returns plain dicts, ready for server-side apply.
"""

from __future__ import annotations

from typing import Any

from imtegrity_operator.render.config import (
    build_proxy_config,
    render_config_map,
    restart_checksum,
)
from imtegrity_operator.render.deployment import render_deployment
from imtegrity_operator.render.disruption import render_disruption_budget
from imtegrity_operator.render.meta import Owner
from imtegrity_operator.render.service import render_service
from imtegrity_operator.render.storage import render_archive_claim
from imtegrity_operator.spec import ProxySpec, SpecError

__all__ = ["MAX_REPLICAS", "Owner", "UnsupportedReplicasError", "render_children"]

# The archive is one SQLite file on a ReadWriteOnce volume, written by one
# proxy process. A pod on a second node could not mount the volume, and the
# archive is not built for a second writing process.
MAX_REPLICAS = 1


class UnsupportedReplicasError(SpecError):
    """A replica count that the archive cannot support."""


def check_replicas(spec: ProxySpec) -> None:
    if spec.replicas > MAX_REPLICAS:
        raise UnsupportedReplicasError(
            f"spec.replicas: {spec.replicas} is not supported: the SQLite archive has a "
            f"single writer, so at most {MAX_REPLICAS} replica can run without losing "
            "messages; set replicas to 0 or 1"
        )


def render_children(owner: Owner, spec: ProxySpec, image: str) -> list[dict[str, Any]]:
    """Return every child object, in the order they should be applied.

    Raises ``SpecError`` (or ``UnsupportedReplicasError``) when the spec cannot
    be rendered; nothing is returned for a partly valid spec.
    """
    check_replicas(spec)
    config = build_proxy_config(spec)
    return [
        render_config_map(owner, config),
        render_archive_claim(owner, spec),
        render_service(owner, spec),
        render_disruption_budget(owner),
        render_deployment(owner, spec, image, restart_checksum(config)),
    ]

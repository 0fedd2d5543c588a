"""The PersistentVolumeClaim for the archive."""

from __future__ import annotations

from typing import Any

from imtegrity_operator.render.meta import Owner, object_meta
from imtegrity_operator.spec import ProxySpec


def render_archive_claim(owner: Owner, spec: ProxySpec) -> dict[str, Any]:
    """Return the archive's claim; a null storageClassName leaves the cluster default."""
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": spec.archive.storage_size}},
    }
    if spec.archive.storage_class_name is not None:
        claim_spec["storageClassName"] = spec.archive.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": object_meta(owner, owner.archive_claim_name),
        "spec": claim_spec,
    }

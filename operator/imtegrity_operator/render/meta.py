"""Names, labels and owner references shared by every child object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

API_VERSION = "imtegrity.io/v1alpha1"
KIND = "IMtegrityProxy"
MANAGED_BY = "imtegrity-operator"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
INSTANCE_LABEL = "app.kubernetes.io/instance"


@dataclass(frozen=True)
class Owner:
    """The IMtegrityProxy that a child object belongs to."""

    name: str
    namespace: str
    uid: str

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Owner:
        metadata = body["metadata"]
        return cls(name=metadata["name"], namespace=metadata["namespace"], uid=metadata["uid"])

    @property
    def config_map_name(self) -> str:
        return f"{self.name}-config"

    @property
    def archive_claim_name(self) -> str:
        return f"{self.name}-archive"

    @property
    def service_address(self) -> str:
        """DNS name of the proxy's Service inside the cluster."""
        return f"{self.name}.{self.namespace}.svc"


def selector_labels(owner: Owner) -> dict[str, str]:
    """Return the labels that select the proxy's pods; a Deployment cannot change them later."""
    return {"app.kubernetes.io/name": "imtegrity-proxy", INSTANCE_LABEL: owner.name}


def labels(owner: Owner) -> dict[str, str]:
    return {**selector_labels(owner), MANAGED_BY_LABEL: MANAGED_BY}


def owner_reference(owner: Owner) -> dict[str, Any]:
    """Return a controller reference, so the garbage collector deletes the child with its owner."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(owner: Owner, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner),
        "ownerReferences": [owner_reference(owner)],
    }

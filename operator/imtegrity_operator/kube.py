"""A small synchronous Kubernetes API client for the operator's writes.

kopf watches and patches the IMtegrityProxy itself; this client applies the
child objects with server-side apply and writes the resource's status. It uses
the official client's ``ApiClient`` for authentication and transport, and
builds the REST paths itself, because the generated typed APIs cannot send an
``application/apply-patch+yaml`` body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

FIELD_MANAGER = "imtegrity-operator"

# Connect and read timeouts of every request, in seconds.
REQUEST_TIMEOUT = (10.0, 30.0)
# Items per page of a list request; larger collections take several requests.
LIST_PAGE_SIZE = 500

# Plural resource names of the kinds this client reads and writes.
_PLURALS = {
    "ConfigMap": "configmaps",
    "Service": "services",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Deployment": "deployments",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "IMtegrityProxy": "imtegrityproxies",
}


class KubeApiError(Exception):
    """A failed API request, with the HTTP status (0 when no response arrived)."""

    def __init__(self, action: str, status: int, message: str) -> None:
        super().__init__(f"{action} failed: {message}" + (f" (HTTP {status})" if status else ""))
        self.status = status
        self.message = message

    @property
    def rejected(self) -> bool:
        """Whether the API server rejected the object itself, so a retry cannot help."""
        return self.status in (400, 422)


def object_path(api_version: str, kind: str, namespace: str, name: str) -> str:
    """Return the REST path of one namespaced object."""
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{_PLURALS[kind]}/{name}"


def describe(obj: Mapping[str, Any]) -> str:
    """Return ``Kind namespace/name`` for messages and events."""
    metadata = obj["metadata"]
    return f"{obj['kind']} {metadata['namespace']}/{metadata['name']}"


def _api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(error.reason)


class KubeClient:
    """Server-side apply and status writes over one ``kubernetes.client.ApiClient``."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.api_client = api_client

    @classmethod
    def from_config(cls, kubeconfig: str | None = None) -> KubeClient:
        """Connect with the given kubeconfig, else in-cluster, else the default kubeconfig."""
        if kubeconfig is None:
            try:
                kubernetes.config.load_incluster_config()
                return cls(kubernetes.client.ApiClient())
            except kubernetes.config.ConfigException:
                pass  # Not in a pod: fall back to $KUBECONFIG or ~/.kube/config.
        return cls(kubernetes.config.new_client_from_config(config_file=kubeconfig))

    def _request(
        self,
        action: str,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        try:
            return self.api_client.call_api(
                path,
                method,
                query_params=query or [],
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                auth_settings=["BearerToken"],
                response_type="object",
                _return_http_data_only=True,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as error:
            raise KubeApiError(action, error.status or 0, _api_message(error)) from error
        except urllib3.exceptions.HTTPError as error:
            raise KubeApiError(action, 0, str(error)) from error

    def get(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """Read the live version of ``obj``; return None if it does not exist."""
        metadata = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], metadata["namespace"], metadata["name"])
        try:
            return self._request(f"get {describe(obj)}", "GET", path)  # type: ignore[no-any-return]
        except KubeApiError as error:
            if error.status == 404:
                return None
            raise

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply ``obj`` as the operator's field manager; return the result.

        ``force`` takes over only the fields in ``obj`` when another manager
        changed them; fields that ``obj`` leaves out stay with their managers.
        """
        metadata = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], metadata["namespace"], metadata["name"])
        query = [("fieldManager", FIELD_MANAGER), ("force", "true"), ("fieldValidation", "Strict")]
        return self._request(  # type: ignore[no-any-return]
            f"apply {describe(obj)}",
            "PATCH",
            path,
            body=dict(obj),
            query=query,
            content_type="application/apply-patch+yaml",
        )

    def get_proxy(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Read one IMtegrityProxy; return None if it does not exist."""
        proxy = {
            "apiVersion": "imtegrity.io/v1alpha1",
            "kind": "IMtegrityProxy",
            "metadata": {"namespace": namespace, "name": name},
        }
        return self.get(proxy)

    def patch_proxy_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge ``status`` into an IMtegrityProxy's status subresource."""
        path = object_path("imtegrity.io/v1alpha1", "IMtegrityProxy", namespace, name)
        self._request(
            f"patch status of IMtegrityProxy {namespace}/{name}",
            "PATCH",
            f"{path}/status",
            body={"status": dict(status)},
            content_type="application/merge-patch+json",
        )

    # Path-based requests, for the cluster-wide egress and DNS objects, whose
    # kinds (cluster-scoped, or from third-party CRDs) the table above lacks.

    def get_at(self, path: str, action: str) -> dict[str, Any] | None:
        """GET ``path``; return None when the API server answers 404."""
        try:
            return self._request(action, "GET", path)  # type: ignore[no-any-return]
        except KubeApiError as error:
            if error.status == 404:
                return None
            raise

    def list_at(
        self,
        path: str,
        action: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """Return every item of the collection at ``path``, following continue tokens."""
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = [("limit", str(LIST_PAGE_SIZE))]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if field_selector:
                query.append(("fieldSelector", field_selector))
            if token:
                query.append(("continue", token))
            page = self._request(action, "GET", path, query=query)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    def apply_at(self, path: str, obj: Mapping[str, Any], action: str) -> dict[str, Any]:
        """Server-side apply ``obj`` at ``path``, as ``apply`` does for the proxy's children."""
        query = [("fieldManager", FIELD_MANAGER), ("force", "true"), ("fieldValidation", "Strict")]
        return self._request(  # type: ignore[no-any-return]
            action,
            "PATCH",
            path,
            body=dict(obj),
            query=query,
            content_type="application/apply-patch+yaml",
        )

    def merge_patch_at(self, path: str, patch: Mapping[str, Any], action: str) -> dict[str, Any]:
        """Send a JSON merge patch as the operator's field manager.

        A ``metadata.resourceVersion`` in ``patch`` makes the write conditional:
        the API server answers 409 Conflict when the object changed since.
        """
        return self._request(  # type: ignore[no-any-return]
            action,
            "PATCH",
            path,
            body=dict(patch),
            query=[("fieldManager", FIELD_MANAGER)],
            content_type="application/merge-patch+json",
        )

    def delete_at(self, path: str, action: str, resource_version: str | None = None) -> bool:
        """DELETE ``path``; return False when it was already gone.

        With ``resource_version`` the API server deletes only that version and
        answers 409 Conflict for any other.
        """
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if resource_version is not None:
            body["preconditions"] = {"resourceVersion": resource_version}
        try:
            self._request(action, "DELETE", path, body=body)
        except KubeApiError as error:
            if error.status == 404:
                return False
            raise
        return True

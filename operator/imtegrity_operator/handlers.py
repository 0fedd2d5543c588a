"""kopf handlers. Each one hands the resource to ``Reconciler`` and maps its errors.

A spec change, the operator's start, a timer and events on the child objects
all run the same reconcile pass. A deleted or edited child is therefore
restored by whichever of them reaches the operator first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from imtegrity_operator.crd import GROUP, PLURAL, VERSION
from imtegrity_operator.egress import objects as egress_objects
from imtegrity_operator.egress.coordinator import ClusterCoordinator
from imtegrity_operator.kube import KubeApiError, KubeClient
from imtegrity_operator.reconcile import ReconcileError, Reconciler
from imtegrity_operator.render.meta import MANAGED_BY, MANAGED_BY_LABEL
from imtegrity_operator.settings import configure_settings
from imtegrity_operator.telemetry import OperatorTelemetry

logger = logging.getLogger("imtegrity.operator")

# How often every resource is reconciled even without a change, in seconds.
# This bounds how long a hand edit or a deleted child lasts when no watch event
# reaches the operator.
RESYNC_INTERVAL_SECONDS = 10.0
DEFAULT_PROXY_IMAGE = "imtegrity-proxy:0.1.0"

CHILD_SELECTOR = {MANAGED_BY_LABEL: MANAGED_BY}


def post_event(body: Mapping[str, Any], event_type: str, reason: str, message: str) -> None:
    kopf.event(body, type=event_type, reason=reason, message=message)  # type: ignore[arg-type]


@kopf.on.startup()
def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure_settings(settings)
    client = KubeClient.from_config(memo.get("kubeconfig"))
    image = memo.get("default_image") or DEFAULT_PROXY_IMAGE
    memo.telemetry = OperatorTelemetry.from_environment()
    memo.reconciler = Reconciler(
        client=client, default_image=image, post_event=post_event, telemetry=memo.telemetry
    )
    memo.reconciler.cluster = ClusterCoordinator(client)
    logger.info("reconciling IMtegrityProxy resources; default proxy image %s", image)


@kopf.on.cleanup()
def stop(memo: kopf.Memo, **_: Any) -> None:
    """Export the spans and metrics still queued before the operator exits."""
    telemetry = memo.get("telemetry")
    if telemetry is not None:
        telemetry.shutdown()
    reconciler = memo.get("reconciler")
    if reconciler is not None and reconciler.cluster is not None:
        reconciler.cluster.stop()


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """Give kopf the credentials of the operator's own client (the --kubeconfig file)."""
    configuration = memo.reconciler.client.api_client.configuration
    header = configuration.get_api_key_with_prefix(
        "BearerToken"
    ) or configuration.get_api_key_with_prefix("authorization")
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def _reconcile(memo: kopf.Memo, body: Mapping[str, Any]) -> None:
    metadata = body["metadata"]
    try:
        memo.reconciler.reconcile(metadata["namespace"], metadata["name"], metadata["uid"])
    except ReconcileError as error:
        if error.permanent:
            raise kopf.PermanentError(str(error)) from error
        raise kopf.TemporaryError(str(error), delay=error.delay) from error


def _cluster_changed(memo: kopf.Memo) -> None:
    """Ask for a cluster-wide egress and DNS pass without waiting for it."""
    cluster = memo.reconciler.cluster
    if cluster is not None:
        cluster.trigger()


@kopf.on.create(GROUP, VERSION, PLURAL)
def on_create(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _cluster_changed(memo)
    _reconcile(memo, body)


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def on_update(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _cluster_changed(memo)
    _reconcile(memo, body)


@kopf.on.resume(GROUP, VERSION, PLURAL)
def on_resume(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _reconcile(memo, body)


@kopf.timer(GROUP, VERSION, PLURAL, interval=RESYNC_INTERVAL_SECONDS)
def resync(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    try:
        _reconcile(memo, body)
    except kopf.PermanentError:
        # The status and an event reported it when it first happened; raising
        # here would only log the same error on every tick.
        pass


@kopf.on.delete(GROUP, VERSION, PLURAL)
def on_delete(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Remove the resource's cluster-wide egress policies and DNS override.

    Objects in other namespaces and cluster-scoped ones cannot have a
    namespaced owner, so the finalizer holds the resource until this is done.
    """
    try:
        memo.reconciler.finalize(body)
    except ReconcileError as error:
        raise kopf.TemporaryError(str(error), delay=error.delay) from error


def _child_changed(memo: kopf.Memo, body: kopf.Body) -> None:
    try:
        memo.reconciler.reconcile_owner_of(body)
    except (ReconcileError, KubeApiError) as error:
        # The owner's status and events report a failed pass; the timer retries.
        logger.info("reconcile after a change to %s stopped: %s", body.get("kind"), error)


@kopf.on.event("apps", "v1", "deployments", labels=CHILD_SELECTOR)
def on_deployment_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Reconcile on every Deployment change, so the status follows the rollout."""
    _child_changed(memo, body)


def _deleted(event: Mapping[str, Any], **_: Any) -> bool:
    return event.get("type") == "DELETED"


@kopf.on.event("v1", "configmaps", labels=CHILD_SELECTOR, when=_deleted)
@kopf.on.event("v1", "services", labels=CHILD_SELECTOR, when=_deleted)
@kopf.on.event("v1", "persistentvolumeclaims", labels=CHILD_SELECTOR, when=_deleted)
@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=CHILD_SELECTOR, when=_deleted)
def on_child_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Restore a deleted child at once, without waiting for the timer."""
    _child_changed(memo, body)
    if body.get("kind") == "Service":
        _cluster_changed(memo)  # the restored Service has a new ClusterIP for DNS


def _namespace_added(event: Mapping[str, Any], **_: Any) -> bool:
    # "None" marks the objects of the initial listing; the start's passes cover them.
    return event.get("type") == "ADDED"


@kopf.on.event("v1", "namespaces", when=_namespace_added)
def on_namespace_added(memo: kopf.Memo, **_: Any) -> None:
    """Cover a new namespace at once instead of at the next resync."""
    _cluster_changed(memo)


def _policy_changed(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> bool:
    if event.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
        return False
    labels = body.get("metadata", {}).get("labels") or {}
    own = labels.get(egress_objects.COMPONENT_LABEL) == egress_objects.COMPONENT
    # The operator's own writes need no new pass, but the deletion of one of
    # its policies does.
    return not own or event.get("type") == "DELETED"


@kopf.on.event("networking.k8s.io", "v1", "networkpolicies", when=_policy_changed)
def on_network_policy_changed(memo: kopf.Memo, **_: Any) -> None:
    """Recompute the coverage when any egress policy appears, changes or goes.

    NOTE: with --namespace, kopf watches NetworkPolicies in those namespaces
    only; changes elsewhere wait for the next resync.
    """
    _cluster_changed(memo)

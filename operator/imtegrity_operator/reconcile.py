"""One reconcile pass over an IMtegrityProxy: validate, render, apply, write status.

Every pass applies every child with server-side apply, so the same code creates
the objects, rolls out spec changes, restores a deleted child and reverts a
hand edit to a field the operator owns. This module does not import kopf; the
handlers translate ``ReconcileError`` into kopf's retry errors.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from imtegrity_operator.egress.coordinator import (
    ClusterCoordinator,
    ClusterPassError,
    cluster_conditions,
)
from imtegrity_operator.kube import KubeApiError, KubeClient, describe
from imtegrity_operator.render import Owner, UnsupportedReplicasError, render_children
from imtegrity_operator.render.meta import API_VERSION, KIND
from imtegrity_operator.render.status import (
    Problem,
    problem_conditions,
    rollout_conditions,
    rollout_status,
    status_changed,
    transition_events,
    with_transition_times,
)
from imtegrity_operator.spec import SpecError, parse_spec
from imtegrity_operator.telemetry import OperatorTelemetry

logger = logging.getLogger("imtegrity.operator")

# Arguments: the IMtegrityProxy body, event type (Normal or Warning), reason, message.
EventPoster = Callable[[Mapping[str, Any], str, str, str], None]

# Seconds before a failed API request is tried again.
RETRY_DELAY_SECONDS = 10.0


class ReconcileError(Exception):
    """A reconcile pass that stopped; ``permanent`` means only a spec change can help."""

    def __init__(self, message: str, *, permanent: bool, delay: float = RETRY_DELAY_SECONDS):
        super().__init__(message)
        self.permanent = permanent
        self.delay = delay


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def project(obj: Any, shape: Any) -> Any:
    """Return the part of ``obj`` at the paths that ``shape`` has.

    Lists of the same length are projected element by element; any other
    value is returned as it is.
    """
    if isinstance(shape, Mapping) and isinstance(obj, Mapping):
        return {key: project(obj.get(key), value) for key, value in shape.items()}
    if isinstance(shape, list) and isinstance(obj, list) and len(shape) == len(obj):
        return [project(item, part) for item, part in zip(obj, shape, strict=True)]
    return obj


def applied_fields_changed(
    before: Mapping[str, Any], after: Mapping[str, Any], desired: Mapping[str, Any]
) -> bool:
    """Return whether an apply changed any field that the operator sets.

    Both versions come from the API server in its normalized form, so a
    quantity written as 0.5 does not differ from the stored 500m. Writes by
    controllers between the read and the apply (status, a bound volume's
    name) fall outside ``desired`` and do not count.
    """
    return bool(project(before, desired) != project(after, desired))


def _find(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(obj for obj in objects if obj["kind"] == kind)


def _spec_problem(error: SpecError) -> Problem:
    if isinstance(error, UnsupportedReplicasError):
        return Problem("ReplicasUnsupported", str(error))
    return Problem("InvalidSpec", str(error))


def _apply_problem(error: KubeApiError) -> Problem:
    if error.rejected:
        return Problem("ApplyRejected", str(error))
    return Problem("ApplyFailed", str(error), retrying=True)


@dataclass
class Reconciler:
    """Brings one IMtegrityProxy's children and status in line with its spec."""

    client: KubeClient
    default_image: str
    post_event: EventPoster
    # Spans and metrics of each pass; the default exports nothing.
    telemetry: OperatorTelemetry = field(default_factory=OperatorTelemetry)
    # Egress denial and the DNS override, shared by every resource; None
    # leaves both out (the EgressEnforced and DNSOverridden conditions too).
    cluster: ClusterCoordinator | None = None
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)
    # UIDs of resources being deleted. A pass that started before the deletion
    # stops applying, so it does not recreate children that the garbage
    # collector has just removed. The set grows by one UID per deleted resource.
    # NOTE: an apply already in flight can still recreate one child; its owner
    # UID no longer exists, so the garbage collector deletes it again.
    _deleted: set[str] = field(default_factory=set)

    def _lock_for(self, uid: str) -> threading.Lock:
        # The timer, the change handlers and child events run in different
        # threads; one lock per resource keeps their passes from interleaving.
        with self._locks_guard:
            return self._locks.setdefault(uid, threading.Lock())

    def forget(self, uid: str) -> None:
        """Stop every pass for a resource that is being deleted, and drop its lock."""
        with self._locks_guard:
            self._deleted.add(uid)
            self._locks.pop(uid, None)

    def finalize(self, body: Mapping[str, Any]) -> None:
        """Stop the resource's passes and remove what only it needed cluster-wide.

        Its namespaced children have owner references and go with the garbage
        collector; the cluster-wide objects and the DNS override do not, so the
        delete handler waits for this before kopf removes the finalizer.
        Raises ``ReconcileError`` (retried) when the cluster pass failed.
        """
        self.forget(body["metadata"]["uid"])
        if self.cluster is None:
            return
        try:
            self.cluster.finalize()
        except ClusterPassError as error:
            raise ReconcileError(
                f"cleanup of the egress policies and DNS override failed: {error}",
                permanent=False,
            ) from error

    def _cluster_conditions(self, body: Mapping[str, Any], wait: bool) -> list[dict[str, Any]]:
        """Return the EgressEnforced and DNSOverridden conditions, or none without a coordinator.

        With ``wait`` a stale report is refreshed first; otherwise the last
        report serves.
        """
        if self.cluster is None:
            return []
        report = self.cluster.current() if wait else self.cluster.latest()
        return cluster_conditions(body, report)

    def _is_deleted(self, uid: str) -> bool:
        with self._locks_guard:
            return uid in self._deleted

    def reconcile(self, namespace: str, name: str, uid: str) -> None:
        """Run one pass for an IMtegrityProxy; raise ``ReconcileError`` when it stops early.

        The pass reads the resource again under its lock, so the status it
        compares with includes what the previous pass wrote.
        """
        with self._lock_for(uid), self.telemetry.reconcile(namespace, name):
            try:
                body = self.client.get_proxy(namespace, name)
            except KubeApiError as error:
                raise ReconcileError(str(error), permanent=False) from error
            if body is None or body["metadata"]["uid"] != uid:
                return  # Deleted, or deleted and created again under the same name.
            if body["metadata"].get("deletionTimestamp") or self._is_deleted(uid):
                return  # The garbage collector removes the children.
            self._reconcile(body)

    def reconcile_owner_of(self, child: Mapping[str, Any]) -> None:
        """Run a pass for the IMtegrityProxy that controls ``child``."""
        metadata = child["metadata"]
        for reference in metadata.get("ownerReferences") or []:
            if reference.get("kind") == KIND and reference.get("apiVersion") == API_VERSION:
                self.reconcile(metadata["namespace"], reference["name"], reference["uid"])

    def _reconcile(self, body: Mapping[str, Any]) -> None:
        owner = Owner.from_body(body)
        try:
            spec = parse_spec(body.get("spec"))
            children = render_children(owner, spec, spec.image or self.default_image)
        except SpecError as error:
            self._stop(body, _spec_problem(error))
            raise ReconcileError(str(error), permanent=True) from error
        applied = []
        try:
            for child in children:
                if self._is_deleted(owner.uid):
                    return  # The garbage collector removes the children.
                applied.append(self._apply(body, child))
        except KubeApiError as error:
            problem = _apply_problem(error)
            self._stop(body, problem)
            raise ReconcileError(str(error), permanent=not problem.retrying) from error
        self._write_rollout_status(body, owner, spec.replicas, applied)

    def _apply(self, body: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
        before = self.client.get(child)
        after = self.client.apply(child)
        if before is None:
            self._event(body, "Normal", "Created", f"Created {describe(child)}")
        elif applied_fields_changed(before, after, child):
            self._event(body, "Normal", "Updated", f"Updated {describe(child)}")
        return after

    def _write_rollout_status(
        self, body: Mapping[str, Any], owner: Owner, replicas: int, applied: list[dict[str, Any]]
    ) -> None:
        generation = body["metadata"].get("generation", 0)
        deployment = _find(applied, "Deployment")
        conditions = rollout_conditions(replicas, deployment, generation)
        conditions += self._cluster_conditions(body, wait=True)
        status = rollout_status(
            owner, conditions, deployment, _find(applied, "Service"), generation
        )
        self._write_status(body, status)

    def _stop(self, body: Mapping[str, Any], problem: Problem) -> None:
        """Record ``problem`` in the status and, when it is new, as a Warning event."""
        generation = body["metadata"].get("generation", 0)
        status = {
            "observedGeneration": generation,
            "conditions": [
                *problem_conditions(problem, generation),
                *self._cluster_conditions(body, wait=False),
            ],
        }
        try:
            changed = self._write_status(body, status)
        except KubeApiError as error:
            # The pass has already failed; the retry writes the status again.
            logger.warning("failed to write the status of %s: %s", describe(body), error)
            changed = True
        # A timer pass repeats a standing problem every few seconds; log it once.
        level = logging.WARNING if changed else logging.DEBUG
        logger.log(level, "reconcile of %s stopped: %s", describe(body), problem.message)

    def _write_status(self, body: Mapping[str, Any], status: dict[str, Any]) -> bool:
        """Write ``status`` and post events for its transitions; return whether it changed."""
        current = body.get("status") or {}
        previous = current.get("conditions") or []
        status["conditions"] = with_transition_times(status["conditions"], previous, _now())
        if not status_changed(current, status):
            return False
        metadata = body["metadata"]
        self.client.patch_proxy_status(metadata["namespace"], metadata["name"], status)
        for event_type, reason, message in transition_events(previous, status["conditions"]):
            self._event(body, event_type, reason, message)
        return True

    def _event(self, body: Mapping[str, Any], event_type: str, reason: str, message: str) -> None:
        logger.info("%s: %s: %s", describe(body), reason, message)
        self.post_event(body, event_type, reason, message)

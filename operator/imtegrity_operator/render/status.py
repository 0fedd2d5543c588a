"""The status the operator writes: Ready, Progressing and Degraded conditions.

Ready is True once every desired replica of the current pod template passes
its readiness probe. Progressing is True while the Deployment rolls out or the
operator retries. Degraded is True when the spec is invalid or refused, when
applying a child failed, or when the Deployment reports a failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imtegrity_operator.render.meta import Owner

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"


@dataclass(frozen=True)
class Problem:
    """Why a reconcile stopped: a CamelCase reason, a message, and whether it retries."""

    reason: str
    message: str
    retrying: bool = False


def _condition(
    condition_type: str, status: bool | None, reason: str, message: str, generation: int
) -> dict[str, Any]:
    value = "Unknown" if status is None else str(status)
    return {
        "type": condition_type,
        "status": value,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def _deployment_failure(deployment: Mapping[str, Any]) -> tuple[str, str] | None:
    """Return (reason, message) of a failure the Deployment controller reports."""
    for condition in (deployment.get("status") or {}).get("conditions", []):
        if condition.get("reason") == "ProgressDeadlineExceeded":
            return "ProgressDeadlineExceeded", condition.get("message", "")
        if condition["type"] == "ReplicaFailure" and condition.get("status") == "True":
            return "ReplicaFailure", condition.get("message", "")
    return None


def _rollout_settled(desired: int, deployment: Mapping[str, Any]) -> bool:
    status = deployment.get("status") or {}
    generation = deployment["metadata"].get("generation", 0)
    return (
        status.get("observedGeneration", 0) >= generation
        and status.get("replicas", 0) == desired
        and status.get("updatedReplicas", 0) == desired
        and status.get("readyReplicas", 0) == desired
    )


def rollout_conditions(
    desired: int, deployment: Mapping[str, Any], generation: int
) -> list[dict[str, Any]]:
    """Return the conditions for a spec that was applied, from the Deployment's status."""
    status = deployment.get("status") or {}
    counts = f"{status.get('readyReplicas', 0)} of {desired} replicas ready"
    settled = _rollout_settled(desired, deployment)
    if not settled:
        updated = status.get("updatedReplicas", 0)
        counts += f", {updated} of {desired} updated to the current pod template"
    if desired == 0:
        ready = _condition(READY, False, "ScaledToZero", "spec.replicas is 0", generation)
    elif settled:
        ready = _condition(READY, True, "ProxyReady", counts, generation)
    else:
        ready = _condition(READY, False, "ReplicasNotReady", counts, generation)
    if settled:
        progressing = _condition(PROGRESSING, False, "RolloutComplete", counts, generation)
    else:
        progressing = _condition(PROGRESSING, True, "RollingOut", counts, generation)
    failure = _deployment_failure(deployment)
    if failure is None:
        degraded = _condition(DEGRADED, False, "AsExpected", "no failures", generation)
    else:
        degraded = _condition(DEGRADED, True, failure[0], failure[1], generation)
    return [ready, progressing, degraded]


def problem_conditions(problem: Problem, generation: int) -> list[dict[str, Any]]:
    """Return the conditions for a reconcile that stopped at ``problem``.

    Ready is Unknown when the operator retries (the pods may still serve) and
    False when the spec itself is refused.
    """
    ready_status = None if problem.retrying else False
    progressing_reason = "Retrying" if problem.retrying else problem.reason
    return [
        _condition(READY, ready_status, problem.reason, problem.message, generation),
        _condition(PROGRESSING, problem.retrying, progressing_reason, problem.message, generation),
        _condition(DEGRADED, True, problem.reason, problem.message, generation),
    ]


def with_transition_times(
    conditions: Sequence[Mapping[str, Any]], previous: Sequence[Mapping[str, Any]], now: str
) -> list[dict[str, Any]]:
    """Set lastTransitionTime: kept from ``previous`` while a condition's status is unchanged."""
    earlier = {condition["type"]: condition for condition in previous}
    result = []
    for condition in conditions:
        before = earlier.get(condition["type"])
        time = now
        if before is not None and before.get("status") == condition["status"]:
            time = before.get("lastTransitionTime", now)
        result.append({**condition, "lastTransitionTime": time})
    return result


def rollout_status(
    owner: Owner,
    conditions: list[dict[str, Any]],
    deployment: Mapping[str, Any],
    service: Mapping[str, Any],
    generation: int,
) -> dict[str, Any]:
    """Return the whole status after a successful apply."""
    return {
        "observedGeneration": generation,
        "conditions": conditions,
        "readyReplicas": (deployment.get("status") or {}).get("readyReplicas", 0),
        "serviceAddress": owner.service_address,
        "serviceIP": (service.get("spec") or {}).get("clusterIP", ""),
    }


def transition_events(
    previous: Sequence[Mapping[str, Any]], conditions: Sequence[Mapping[str, Any]]
) -> list[tuple[str, str, str]]:
    """Return (event type, reason, message) for each change worth a Kubernetes Event.

    Ready gets an event when it becomes True or stops being True. Degraded gets
    a Warning when it becomes True or its reason or message changes while True,
    and a Normal "Recovered" event when it returns to False.
    """
    earlier = {condition["type"]: condition for condition in previous}
    events = []
    for condition in conditions:
        before = earlier.get(condition["type"], {})
        was_true = before.get("status") == "True"
        is_true = condition["status"] == "True"
        if condition["type"] == READY and is_true != was_true:
            event_type = "Normal" if is_true else "Warning"
            events.append((event_type, condition["reason"], condition["message"]))
        elif condition["type"] == DEGRADED and is_true:
            same = (before.get("reason"), before.get("message")) == (
                condition["reason"],
                condition["message"],
            )
            if not (was_true and same):
                events.append(("Warning", condition["reason"], condition["message"]))
        elif condition["type"] == DEGRADED and was_true:
            events.append(("Normal", "Recovered", condition["message"]))
    # A refused spec turns Ready False and Degraded True with the same reason
    # and message, so only one event is posted for both.
    return list(dict.fromkeys(events))


def status_changed(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Return whether writing ``desired`` (a merge patch) would change ``current``."""
    return any(current.get(key) != value for key, value in desired.items())

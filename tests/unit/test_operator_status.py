"""Status conditions and events computed from the Deployment and from failures."""

from __future__ import annotations

from imtegrity_operator.render import Owner
from imtegrity_operator.render.status import (
    Problem,
    problem_conditions,
    rollout_conditions,
    rollout_status,
    status_changed,
    transition_events,
    with_transition_times,
)

OWNER = Owner(name="aim", namespace="imtegrity", uid="uid-1")
T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:05:00Z"


def _deployment(generation=2, observed=2, replicas=1, updated=1, ready=1, conditions=()):
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "conditions": list(conditions),
        },
    }


def _by_type(conditions):
    return {condition["type"]: condition for condition in conditions}


def test_rollout_ready():
    conditions = _by_type(rollout_conditions(1, _deployment(), generation=5))

    assert conditions["Ready"]["status"] == "True"
    assert conditions["Ready"]["reason"] == "ProxyReady"
    assert conditions["Ready"]["message"] == "1 of 1 replicas ready"
    assert conditions["Ready"]["observedGeneration"] == 5
    assert conditions["Progressing"]["status"] == "False"
    assert conditions["Degraded"]["status"] == "False"


def test_rollout_pod_not_ready():
    conditions = _by_type(rollout_conditions(1, _deployment(ready=0), generation=1))

    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "ReplicasNotReady"
    assert conditions["Ready"]["message"] == (
        "0 of 1 replicas ready, 1 of 1 updated to the current pod template"
    )
    assert conditions["Progressing"]["status"] == "True"
    assert conditions["Progressing"]["reason"] == "RollingOut"


def test_rollout_not_yet_observed():
    # The Deployment controller has not seen the new template yet.
    deployment = _deployment(generation=3, observed=2)
    conditions = _by_type(rollout_conditions(1, deployment, generation=1))

    assert conditions["Ready"]["status"] == "False"
    assert conditions["Progressing"]["status"] == "True"


def test_rollout_old_pod_still_running():
    deployment = _deployment(replicas=2, updated=1, ready=2)
    conditions = _by_type(rollout_conditions(1, deployment, generation=1))

    assert conditions["Ready"]["status"] == "False"
    assert conditions["Progressing"]["status"] == "True"


def test_rollout_without_status():
    conditions = _by_type(rollout_conditions(1, {"metadata": {"generation": 1}}, generation=1))

    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["message"] == (
        "0 of 1 replicas ready, 0 of 1 updated to the current pod template"
    )


def test_rollout_scaled_to_zero():
    deployment = _deployment(replicas=0, updated=0, ready=0)
    conditions = _by_type(rollout_conditions(0, deployment, generation=1))

    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "ScaledToZero"
    assert conditions["Progressing"]["status"] == "False"


def test_rollout_deadline_exceeded():
    failure = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "aim-1" has timed out progressing.',
    }
    deployment = _deployment(ready=0, conditions=[failure])
    conditions = _by_type(rollout_conditions(1, deployment, generation=1))

    assert conditions["Degraded"]["status"] == "True"
    assert conditions["Degraded"]["reason"] == "ProgressDeadlineExceeded"
    assert conditions["Degraded"]["message"] == failure["message"]


def test_rollout_replica_failure():
    failure = {
        "type": "ReplicaFailure",
        "status": "True",
        "reason": "FailedCreate",
        "message": "pods are forbidden",
    }
    deployment = _deployment(ready=0, conditions=[failure])
    conditions = _by_type(rollout_conditions(1, deployment, generation=1))

    assert conditions["Degraded"]["status"] == "True"
    assert conditions["Degraded"]["reason"] == "ReplicaFailure"


def test_problem_refused_spec():
    problem = Problem("InvalidSpec", "spec.ports[0]: too large")
    conditions = _by_type(problem_conditions(problem, generation=4))

    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "InvalidSpec"
    assert conditions["Degraded"]["status"] == "True"
    assert conditions["Degraded"]["message"] == "spec.ports[0]: too large"
    assert conditions["Degraded"]["observedGeneration"] == 4
    assert conditions["Progressing"]["status"] == "False"


def test_problem_retrying():
    problem = Problem("ApplyFailed", "apply failed: timed out", retrying=True)
    conditions = _by_type(problem_conditions(problem, generation=1))

    assert conditions["Ready"]["status"] == "Unknown"
    assert conditions["Progressing"]["status"] == "True"
    assert conditions["Progressing"]["reason"] == "Retrying"
    assert conditions["Degraded"]["status"] == "True"


def test_transition_time_kept_while_status_unchanged():
    previous = with_transition_times(rollout_conditions(1, _deployment(), 1), [], T0)
    current = with_transition_times(rollout_conditions(1, _deployment(), 2), previous, T1)

    assert _by_type(current)["Ready"]["lastTransitionTime"] == T0


def test_transition_time_moves_on_change():
    previous = with_transition_times(rollout_conditions(1, _deployment(ready=0), 1), [], T0)
    current = with_transition_times(rollout_conditions(1, _deployment(), 1), previous, T1)

    assert _by_type(current)["Ready"]["lastTransitionTime"] == T1
    assert _by_type(current)["Degraded"]["lastTransitionTime"] == T0


def test_rollout_status_fields():
    service = {"spec": {"clusterIP": "10.96.0.12"}}
    conditions = rollout_conditions(1, _deployment(), 3)
    status = rollout_status(OWNER, conditions, _deployment(), service, 3)

    assert status["observedGeneration"] == 3
    assert status["readyReplicas"] == 1
    assert status["serviceAddress"] == "aim.imtegrity.svc"
    assert status["serviceIP"] == "10.96.0.12"
    assert status["conditions"] == conditions


def test_status_changed_compares_only_written_keys():
    current = {"observedGeneration": 3, "readyReplicas": 1, "serviceIP": "10.96.0.12"}

    assert not status_changed(current, {"observedGeneration": 3})
    assert status_changed(current, {"observedGeneration": 4})


def test_events_when_ready():
    previous = rollout_conditions(1, _deployment(ready=0), 1)
    current = rollout_conditions(1, _deployment(), 1)

    assert transition_events(previous, current) == [
        ("Normal", "ProxyReady", "1 of 1 replicas ready")
    ]


def test_no_events_without_change():
    conditions = rollout_conditions(1, _deployment(), 1)

    assert transition_events(conditions, conditions) == []


def test_events_when_spec_refused():
    previous = rollout_conditions(1, _deployment(), 1)
    current = problem_conditions(Problem("ReplicasUnsupported", "spec.replicas: 2"), 2)

    assert transition_events(previous, current) == [
        ("Warning", "ReplicasUnsupported", "spec.replicas: 2")
    ]


def test_event_for_new_degraded_message():
    previous = problem_conditions(Problem("InvalidSpec", "spec.ports[0]: bad"), 1)
    current = problem_conditions(Problem("InvalidSpec", "spec.replicas: bad"), 2)

    assert transition_events(previous, current) == [
        ("Warning", "InvalidSpec", "spec.replicas: bad")
    ]


def test_event_when_recovered():
    previous = problem_conditions(Problem("InvalidSpec", "spec.ports[0]: bad"), 1)
    current = rollout_conditions(1, _deployment(ready=0), 2)

    assert transition_events(previous, current) == [("Normal", "Recovered", "no failures")]

"""The pure helpers of a reconcile pass: what counts as a change to a child."""

from __future__ import annotations

from imtegrity_operator.reconcile import applied_fields_changed, project

DESIRED = {
    "metadata": {"name": "aim", "labels": {"app": "proxy"}},
    "spec": {"replicas": 1, "ports": [{"port": 5190}]},
}


def _live(replicas=1, port=5190, resource_version="7", extra=None):
    live = {
        "metadata": {
            "name": "aim",
            "labels": {"app": "proxy", "team": "ops"},
            "resourceVersion": resource_version,
        },
        "spec": {"replicas": replicas, "ports": [{"port": port, "protocol": "TCP"}]},
        "status": {"readyReplicas": 1},
    }
    live["spec"].update(extra or {})
    return live


def test_project_keeps_desired_paths():
    assert project(_live(), DESIRED) == DESIRED


def test_project_missing_key_is_none():
    assert project({"spec": {}}, {"spec": {"replicas": 1}}) == {"spec": {"replicas": None}}


def test_project_list_length_mismatch():
    live = {"ports": [{"port": 1}, {"port": 2}]}

    assert project(live, {"ports": [{"port": 1}]}) == live


def test_unchanged_when_only_others_write():
    before = _live(resource_version="7")
    after = _live(resource_version="9", extra={"volumeName": "pv-1"})
    after["status"]["readyReplicas"] = 0

    assert applied_fields_changed(before, after, DESIRED) is False


def test_changed_when_apply_reverts_edit():
    before = _live(replicas=0)
    after = _live(replicas=1)

    assert applied_fields_changed(before, after, DESIRED) is True


def test_changed_in_list_item():
    assert applied_fields_changed(_live(port=5191), _live(port=5190), DESIRED) is True

"""The DNS pass's writes: Corefile edits that retry on conflicts, and the coredns-custom key.

A small in-memory stand-in for the API server records the requests; the
real API server runs in tests/e2e/test_dns_coredns.py.
"""

from __future__ import annotations

import copy

import pytest
from imtegrity_operator.dns import corefile
from imtegrity_operator.dns.plan import MODE_COREFILE, MODE_CUSTOM, DnsPlan
from imtegrity_operator.dns.sync import (
    COREFILE_PATH,
    CREATED_ANNOTATION,
    CUSTOM_KEY,
    CUSTOM_PATH,
    MAX_CONFLICT_RETRIES,
    _write_corefile,
    _write_custom,
)
from imtegrity_operator.kube import KubeApiError

from tests.unit.test_dns_corefile import KUBEADM_COREFILE

ANSWERS = {"login.oscar.aol.com": ["10.96.0.50"]}


class FakeApi:
    """Objects by path; ``conflicts`` makes that many Corefile patches fail with 409."""

    def __init__(self, objects: dict[str, dict], conflicts: int = 0) -> None:
        self.objects = objects
        self.conflicts = conflicts
        self.requests: list[tuple[str, str]] = []
        self.version = 10

    def get_at(self, path: str, action: str) -> dict | None:
        self.requests.append(("GET", path))
        found = self.objects.get(path)
        return copy.deepcopy(found) if found else None

    def merge_patch_at(self, path: str, patch: dict, action: str) -> dict:
        self.requests.append(("PATCH", path))
        current = self.objects[path]
        expected = (patch.get("metadata") or {}).get("resourceVersion")
        if self.conflicts and path == COREFILE_PATH:
            self.conflicts -= 1
            self._bump(current)  # another client wrote in between
            raise KubeApiError(action, 409, "the object has been modified")
        if expected is not None and expected != current["metadata"]["resourceVersion"]:
            raise KubeApiError(action, 409, "the object has been modified")
        for key, value in (patch.get("data") or {}).items():
            if value is None:
                current["data"].pop(key, None)
            else:
                current["data"][key] = value
        self._bump(current)
        return copy.deepcopy(current)

    def apply_at(self, path: str, obj: dict, action: str) -> dict:
        self.requests.append(("APPLY", path))
        current = self.objects.setdefault(path, {"metadata": dict(obj["metadata"]), "data": {}})
        # As if another field manager also owned the key: apply leaves it.
        if "data" in obj:
            current["data"].update(obj["data"])
        self._bump(current)
        return copy.deepcopy(current)

    def delete_at(self, path: str, action: str, resource_version: str | None = None) -> bool:
        self.requests.append(("DELETE", path))
        return self.objects.pop(path, None) is not None

    def _bump(self, obj: dict) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)


def corefile_map(text: str) -> dict:
    return {"metadata": {"name": "coredns", "resourceVersion": "7"}, "data": {"Corefile": text}}


def plan(mode: str) -> DnsPlan:
    result = DnsPlan(participants=[], mode=mode)
    result.answers = dict(ANSWERS)
    return result


def test_corefile_edit_retries_after_conflict():
    api = FakeApi({COREFILE_PATH: corefile_map(KUBEADM_COREFILE)}, conflicts=2)

    _write_corefile(api, plan(MODE_COREFILE), api.get_at(COREFILE_PATH, "get"))  # type: ignore[arg-type]
    text = api.objects[COREFILE_PATH]["data"]["Corefile"]

    assert text.startswith(KUBEADM_COREFILE)
    assert "login.oscar.aol.com:53 {" in text
    assert [r for r in api.requests if r[0] == "PATCH"] == [("PATCH", COREFILE_PATH)] * 3


def test_corefile_edit_gives_up():
    api = FakeApi({COREFILE_PATH: corefile_map(KUBEADM_COREFILE)}, conflicts=99)

    with pytest.raises(KubeApiError) as raised:
        _write_corefile(api, plan(MODE_COREFILE), api.get_at(COREFILE_PATH, "get"))  # type: ignore[arg-type]

    assert raised.value.status == 409
    assert f"{MAX_CONFLICT_RETRIES} attempts" in str(raised.value)


def test_corefile_unchanged_no_write():
    text = corefile.with_section(KUBEADM_COREFILE, plan(MODE_COREFILE).blocks)
    api = FakeApi({COREFILE_PATH: corefile_map(text)})

    _write_corefile(api, plan(MODE_COREFILE), api.get_at(COREFILE_PATH, "get"))  # type: ignore[arg-type]

    assert [r for r in api.requests if r[0] == "PATCH"] == []


def test_custom_key_written_and_created():
    api = FakeApi({})

    _write_custom(api, plan(MODE_CUSTOM), None)  # type: ignore[arg-type]
    created = api.objects[CUSTOM_PATH]

    assert "login.oscar.aol.com:53 {" in created["data"][CUSTOM_KEY]
    assert created["metadata"]["annotations"] == {CREATED_ANNOTATION: "true"}


def test_shared_key_removed_and_map_deleted():
    created = {
        "metadata": {"name": "coredns-custom", "annotations": {CREATED_ANNOTATION: "true"}},
        "data": {CUSTOM_KEY: "old"},
    }
    api = FakeApi({CUSTOM_PATH: created})

    _write_custom(api, plan(MODE_COREFILE), api.get_at(CUSTOM_PATH, "get"))  # type: ignore[arg-type]

    assert ("PATCH", CUSTOM_PATH) in api.requests
    assert CUSTOM_PATH not in api.objects


def test_user_map_kept_without_key():
    users = {
        "metadata": {"name": "coredns-custom"},
        "data": {CUSTOM_KEY: "old", "corp.server": "x"},
    }
    api = FakeApi({CUSTOM_PATH: users})

    _write_custom(api, plan(MODE_COREFILE), api.get_at(CUSTOM_PATH, "get"))  # type: ignore[arg-type]

    assert api.objects[CUSTOM_PATH]["data"] == {"corp.server": "x"}

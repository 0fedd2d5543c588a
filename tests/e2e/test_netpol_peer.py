"""Smoke tests for the netpol-analyzer peer (the netpolicy CLI) on YAML in a temp dir.

netpolicy reads manifests only; it needs no cluster.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.fixtures.peers import minimal_env, peer_binary

pytestmark = pytest.mark.e2e

NETPOLICY_TIMEOUT_SECONDS = 60
ALL_CONNECTIONS = "All Connections"
POD_A = "default/pod-a[Pod]"
POD_B = "default/pod-b[Pod]"


def pod(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "registry.invalid/smoke:1",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                }
            ]
        },
    }


DEFAULT_DENY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny", "namespace": "default"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}


def write_manifests(directory: Path, *, with_policy: bool) -> Path:
    directory.mkdir()
    (directory / "pods.yaml").write_text(yaml.safe_dump_all([pod("pod-a"), pod("pod-b")]))
    if with_policy:
        (directory / "netpol.yaml").write_text(yaml.safe_dump(DEFAULT_DENY))
    return directory


def netpolicy(*args: str) -> subprocess.CompletedProcess[str]:
    binary = peer_binary("netpol-analyzer", "netpolicy")
    result = subprocess.run(
        [str(binary), *args],
        capture_output=True,
        text=True,
        env=minimal_env(),
        timeout=NETPOLICY_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"netpolicy {' '.join(args)} failed: {result.stderr}"
    return result


def list_connections(directory: Path) -> set[tuple[str, str, str]]:
    """Return the (src, dst, conn) triples of `netpolicy list -o json`."""
    output = netpolicy("list", "--dirpath", str(directory), "-o", "json").stdout
    return {(c["src"], c["dst"], c["conn"]) for c in json.loads(output) or []}


def test_list_without_policy_allows_all(tmp_path: Path):
    connections = list_connections(write_manifests(tmp_path / "open", with_policy=False))

    assert (POD_A, POD_B, ALL_CONNECTIONS) in connections
    assert (POD_B, POD_A, ALL_CONNECTIONS) in connections


def test_list_with_default_deny_allows_none(tmp_path: Path):
    connections = list_connections(write_manifests(tmp_path / "deny", with_policy=True))

    assert connections == set()


def test_diff_reports_removed_connections(tmp_path: Path):
    open_dir = write_manifests(tmp_path / "open", with_policy=False)
    deny_dir = write_manifests(tmp_path / "deny", with_policy=True)

    output = netpolicy("diff", "--dir1", str(open_dir), "--dir2", str(deny_dir), "-o", "csv")
    rows = list(csv.DictReader(io.StringIO(output.stdout)))
    pod_rows = {(r["source"], r["destination"]): r for r in rows}

    assert (POD_A, POD_B) in pod_rows
    assert pod_rows[(POD_A, POD_B)]["diff-type"] == "removed"
    # netpolicy names the old and new columns after the --dir1 and --dir2 flags.
    assert pod_rows[(POD_A, POD_B)]["dir1"] == ALL_CONNECTIONS
    assert pod_rows[(POD_A, POD_B)]["dir2"] == "No Connections"
    assert {r["diff-type"] for r in rows} == {"removed"}

"""Smoke tests for the helm peer against the loopback cluster of tests/fixtures/kube.py."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.fixtures.kube import KubeCluster
from tests.fixtures.peers import minimal_env, peer_binary, peer_version

pytestmark = pytest.mark.e2e

HELM_TIMEOUT_SECONDS = 120

RunHelm = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def helm(tmp_path: Path) -> RunHelm:
    """Return a function that runs helm with its cache, config and data under tmp_path."""
    binary = peer_binary("helm", "helm")
    home = tmp_path / "helm-home"
    env = minimal_env(
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
    )

    def run(*args: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(binary), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=HELM_TIMEOUT_SECONDS,
            check=False,
        )
        assert result.returncode == 0, f"helm {' '.join(args)} failed: {result.stderr}"
        return result

    return run


def write_configmap_chart(directory: Path) -> Path:
    """Write a chart whose only template is a ConfigMap filled from .Values.greeting."""
    chart = directory / "settings"
    (chart / "templates").mkdir(parents=True)
    metadata = {"apiVersion": "v2", "name": "settings", "version": "0.1.0"}
    (chart / "Chart.yaml").write_text(yaml.safe_dump(metadata))
    (chart / "values.yaml").write_text("greeting: from-values\n")
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: {{ .Release.Name }}-settings\n"
        "data:\n"
        "  greeting: {{ .Values.greeting | quote }}\n"
    )
    return chart


def unique_namespace(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_helm_version(helm: RunHelm):
    expected = peer_version("helm")

    version = helm("version", "--template", "{{ .Version }}").stdout.strip()

    assert version == expected


def test_helm_create_then_install(helm: RunHelm, kube_cluster: KubeCluster, tmp_path: Path):
    namespace = unique_namespace("helm-create")
    helm("create", "demo")

    helm(
        "install", "smoke", str(tmp_path / "demo"),
        f"--kubeconfig={kube_cluster.kubeconfig}", "-n", namespace, "--create-namespace",
    )  # fmt: skip
    status = json.loads(
        helm("status", "smoke", f"--kubeconfig={kube_cluster.kubeconfig}", "-n", namespace,
             "-o", "json").stdout
    )  # fmt: skip

    assert status["info"]["status"] == "deployed"
    # "helm create" names objects <release>-<chart>; pods need not run for this check.
    for kind in ("deployment", "service", "serviceaccount"):
        found = kube_cluster.kubectl("get", kind, "smoke-demo", "-n", namespace, check=False)
        assert found.returncode == 0, f"{kind} smoke-demo missing: {found.stderr}"


def test_helm_install_sets_value(helm: RunHelm, kube_cluster: KubeCluster, tmp_path: Path):
    namespace = unique_namespace("helm-values")
    chart = write_configmap_chart(tmp_path)
    kubeconfig = f"--kubeconfig={kube_cluster.kubeconfig}"

    helm(
        "install", "cfg", str(chart), kubeconfig, "-n", namespace, "--create-namespace",
        "--set", "greeting=from-set",
    )  # fmt: skip
    configmap = kube_cluster.kubectl_json("get", "configmap", "cfg-settings", "-n", namespace)

    assert configmap["data"]["greeting"] == "from-set"
    assert configmap["metadata"]["annotations"]["meta.helm.sh/release-name"] == "cfg"


def test_helm_uninstall_removes_objects(helm: RunHelm, kube_cluster: KubeCluster, tmp_path: Path):
    namespace = unique_namespace("helm-uninstall")
    chart = write_configmap_chart(tmp_path)
    kubeconfig = f"--kubeconfig={kube_cluster.kubeconfig}"
    helm("install", "gone", str(chart), kubeconfig, "-n", namespace, "--create-namespace")

    helm("uninstall", "gone", kubeconfig, "-n", namespace)
    after = kube_cluster.kubectl("get", "configmap", "gone-settings", "-n", namespace, check=False)

    assert after.returncode != 0
    assert "NotFound" in after.stderr

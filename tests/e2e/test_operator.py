"""The operator against a real kube-apiserver, controller manager, scheduler and kwok node.

The operator runs as a subprocess (``python -m imtegrity_operator.cli run``)
with the cluster's admin kubeconfig. kwok marks pods Running and Ready without
a container runtime, so no proxy image is pulled or run. Every process binds
127.0.0.1; the Service IPs are allocations inside the API server and no test
sends traffic to them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from imtegrity_operator.kube import KubeClient
from imtegrity_operator.render import Owner, render_children
from imtegrity_operator.render.deployment import CHECKSUM_ANNOTATION
from imtegrity_operator.spec import parse_spec

from tests.fixtures.kube import KubeCluster
from tests.fixtures.peers import PeerProcess, free_port, http_probe, minimal_env

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = REPO_ROOT / "crds" / "imtegrityproxies.imtegrity.io.yaml"
EXAMPLE_PATH = REPO_ROOT / "examples" / "proxy.yaml"
CRD_NAME = "imtegrityproxies.imtegrity.io"
# kwok never pulls images, so this name need not exist anywhere.
PROXY_IMAGE = "registry.invalid/imtegrity-proxy:e2e"
# Upper bound for a change to show up on a loaded 2-core machine; the operator's
# resync timer runs every 10 s.
WAIT_SECONDS = 90.0
CHILD_KINDS = (
    "configmap",
    "deployment",
    "service",
    "persistentvolumeclaim",
    "poddisruptionbudget",
)

T = TypeVar("T")


def wait_for(probe: Callable[[], T], what: str, timeout: float = WAIT_SECONDS) -> T:
    """Poll ``probe`` until it returns a truthy value and return that value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")


def get_object(cluster: KubeCluster, kind: str, name: str, namespace: str) -> dict | None:
    """Return the object, or None if the API server reports it as not found."""
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
        return None
    return json.loads(result.stdout)


def wait_for_object(
    cluster: KubeCluster,
    kind: str,
    name: str,
    namespace: str,
    predicate: Callable[[dict], bool],
    what: str,
) -> dict:
    """Wait until the object exists and ``predicate`` accepts it; return the object."""

    def probe() -> dict | None:
        obj = get_object(cluster, kind, name, namespace)
        return obj if obj is not None and predicate(obj) else None

    return wait_for(probe, what)


def checksum(deployment: dict) -> str:
    return deployment["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION]


def config_text(cluster: KubeCluster, namespace: str) -> str:
    return get_object(cluster, "configmap", "aim-config", namespace)["data"]["config.yaml"]


def condition(proxy: dict, condition_type: str) -> dict:
    conditions = (proxy.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == condition_type), {})


def observed(proxy: dict) -> bool:
    return (proxy.get("status") or {}).get("observedGeneration") == proxy["metadata"]["generation"]


def wait_for_condition(
    cluster: KubeCluster, namespace: str, name: str, condition_type: str, status: str
) -> dict:
    """Wait until the current generation has the condition with ``status``; return the proxy."""

    def probe() -> dict | None:
        proxy = get_object(cluster, "imtegrityproxy", name, namespace)
        if proxy and observed(proxy) and condition(proxy, condition_type).get("status") == status:
            return proxy
        return None

    return wait_for(probe, f"{condition_type}={status} on {namespace}/{name}")


def event_reasons(cluster: KubeCluster, namespace: str, name: str) -> list[tuple[str, str]]:
    events = cluster.kubectl_json(
        "get", "events", "-n", namespace,
        "--field-selector", f"involvedObject.kind=IMtegrityProxy,involvedObject.name={name}",
    )["items"]  # fmt: skip
    return [(event["type"], event["reason"]) for event in events]


def create_namespace(cluster: KubeCluster, prefix: str) -> str:
    """Create a namespace with a random suffix, so reruns in one session do not collide."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    return name


def create_archive_volume(cluster: KubeCluster, namespace: str, claim: str) -> None:
    """Create a PersistentVolume bound in advance to one archive claim.

    The test cluster has no storage provisioner, and the scheduler leaves a pod
    with an unbound claim pending. kwok runs no kubelet, so the hostPath is
    never mounted.
    """
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{namespace}-{claim}"},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "claimRef": {"namespace": namespace, "name": claim},
            "hostPath": {"path": f"/var/lib/imtegrity-e2e/{namespace}"},
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(volume))


def proxy_manifest(namespace: str, name: str, spec: dict) -> str:
    return json.dumps(
        {
            "apiVersion": "imtegrity.io/v1alpha1",
            "kind": "IMtegrityProxy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def merge_patch(cluster: KubeCluster, kind: str, name: str, namespace: str, patch: dict) -> None:
    cluster.kubectl("patch", kind, name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))


def start_operator(cluster: KubeCluster, workdir: Path, namespaces: list[str]) -> PeerProcess:
    """Start ``imtegrity-operator run`` and wait until its liveness endpoint returns 200."""
    port = free_port()
    argv = [
        sys.executable, "-m", "imtegrity_operator.cli", "run",
        f"--kubeconfig={cluster.kubeconfig}",
        f"--liveness=127.0.0.1:{port}",
        f"--default-proxy-image={PROXY_IMAGE}",
        *(f"--namespace={namespace}" for namespace in namespaces),
    ]  # fmt: skip
    process = PeerProcess(
        "imtegrity-operator",
        argv,
        workdir=workdir,
        ready=http_probe(f"http://127.0.0.1:{port}/healthz", ok=lambda status: status == 200),
        env=minimal_env(),
        inherit_env=False,
        ready_timeout=60.0,
    )
    process.liveness_url = f"http://127.0.0.1:{port}/healthz"  # type: ignore[attr-defined]
    return process.start()


def contains(live: Any, desired: Any) -> bool:
    """Return whether ``live`` has every field of ``desired`` with the same value.

    Lists match element by element; the server may add fields that ``desired``
    leaves out (defaults such as a port's protocol).
    """
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            key in live and contains(live[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


# Fixtures.


@pytest.fixture(scope="module")
def cluster(kube_cluster_with_nodes: KubeCluster) -> KubeCluster:
    """The cluster with the CRD applied from crds/ with kubectl, as a user would."""
    kube_cluster_with_nodes.kubectl("apply", "-f", str(CRD_PATH))
    kube_cluster_with_nodes.kubectl(
        "wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s"
    )
    return kube_cluster_with_nodes


@pytest.fixture(scope="module")
def operator(cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One operator for the namespace of examples/proxy.yaml and the op-* test namespaces."""
    process = start_operator(cluster, tmp_path_factory.mktemp("operator"), ["imtegrity", "op-*"])
    try:
        yield process
    finally:
        crashed = process.exited_unexpectedly
        process.close()
        assert not crashed, f"the operator exited by itself\n{process.describe_log()}"


@pytest.fixture(scope="module")
def example(cluster: KubeCluster, operator: PeerProcess) -> dict:
    """The resource from examples/proxy.yaml, applied with kubectl, once its children exist."""
    create_archive_volume(cluster, "imtegrity", "aim-archive")
    cluster.kubectl("apply", "-f", str(EXAMPLE_PATH))
    wait_for(
        lambda: get_object(cluster, "deployment", "aim", "imtegrity"),
        "Deployment imtegrity/aim",
    )
    return get_object(cluster, "imtegrityproxy", "aim", "imtegrity") or {}


# The example resource and its children.


def test_example_config_map(cluster, example):
    config_map = get_object(cluster, "configmap", "aim-config", "imtegrity")
    config = yaml.safe_load(config_map["data"]["config.yaml"])

    assert config["listen"]["ports"] == [5190, 443]
    assert config["upstream"]["servers"] == ["login.oscar.aol.com:5190"]
    assert config["policy"]["identities"] == {
        "aliceexample": "alice@example.com",
        "bobexample": "bob@example.com",
    }
    assert config["policy"]["unregistered"] == "deny"
    assert config["archive"]["path"] == "/var/lib/imtegrity/archive.sqlite3"


def test_example_deployment(cluster, example):
    deployment = get_object(cluster, "deployment", "aim", "imtegrity")
    template = deployment["spec"]["template"]
    container = template["spec"]["containers"][0]
    (owner,) = deployment["metadata"]["ownerReferences"]

    assert owner["uid"] == example["metadata"]["uid"]
    assert owner["controller"] is True
    assert deployment["spec"]["replicas"] == 1
    assert container["image"] == PROXY_IMAGE
    assert container["command"] == [
        "imtegrity-proxy", "serve", "--config", "/etc/imtegrity/config.yaml",
    ]  # fmt: skip
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["add"] == ["NET_BIND_SERVICE"]
    assert len(template["metadata"]["annotations"][CHECKSUM_ANNOTATION]) == 64


def test_example_service(cluster, example):
    service = get_object(cluster, "service", "aim", "imtegrity")
    ports = {port["name"]: port["port"] for port in service["spec"]["ports"]}

    assert ports == {"oscar-5190": 5190, "oscar-443": 443}
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    assert service["spec"]["selector"]["app.kubernetes.io/instance"] == "aim"


def test_example_claim_and_budget(cluster, example):
    claim = get_object(cluster, "persistentvolumeclaim", "aim-archive", "imtegrity")
    budget = get_object(cluster, "poddisruptionbudget", "aim", "imtegrity")

    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert budget["spec"]["maxUnavailable"] == 1


def test_example_becomes_ready(cluster, example):
    proxy = wait_for_condition(cluster, "imtegrity", "aim", "Ready", "True")
    service = get_object(cluster, "service", "aim", "imtegrity")
    status = proxy["status"]

    assert status["readyReplicas"] == 1
    assert status["serviceIP"] == service["spec"]["clusterIP"]
    assert status["serviceAddress"] == "aim.imtegrity.svc"
    assert condition(proxy, "Degraded")["status"] == "False"
    assert condition(proxy, "Progressing")["status"] == "False"
    assert condition(proxy, "Ready")["observedGeneration"] == proxy["metadata"]["generation"]


def test_example_printer_columns(cluster, example):
    proxy = wait_for_condition(cluster, "imtegrity", "aim", "Ready", "True")
    table = cluster.kubectl("get", "imp", "aim", "-n", "imtegrity").stdout.splitlines()

    assert table[0].split() == ["NAME", "READY", "REPLICAS", "SERVICE", "AGE"]
    assert table[1].split()[:4] == ["aim", "True", "1", proxy["status"]["serviceIP"]]


def test_example_events(cluster, example):
    wait_for_condition(cluster, "imtegrity", "aim", "Ready", "True")
    reasons = event_reasons(cluster, "imtegrity", "aim")

    assert ("Normal", "Created") in reasons
    assert ("Normal", "ProxyReady") in reasons


def test_rendered_config_passes_config_check(cluster, example, tmp_path):
    config_map = get_object(cluster, "configmap", "aim-config", "imtegrity")
    path = tmp_path / "config.yaml"
    path.write_text(config_map["data"]["config.yaml"])

    check = subprocess.run(
        [Path(sys.executable).parent / "imtegrity-proxy", "config", "check", path],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{path}: valid" in check.stdout


def test_explain_shows_proxy_descriptions(cluster):
    explained = cluster.kubectl("explain", "imp.spec.upstream.servers").stdout

    assert "Login servers as host:port" in explained


# Reload or roll.


def test_policy_edit_updates_config_only(cluster, example):
    wait_for_condition(cluster, "imtegrity", "aim", "Ready", "True")
    before = get_object(cluster, "deployment", "aim", "imtegrity")
    text = f"Archived {uuid.uuid4().hex}"

    merge_patch(
        cluster,
        "imp",
        "aim",
        "imtegrity",
        {"spec": {"policy": {"disclaimer": {"outbound": text}}}},
    )
    wait_for(
        lambda: text in config_text(cluster, "imtegrity"),
        "the new disclaimer in ConfigMap aim-config",
    )
    proxy = wait_for_condition(cluster, "imtegrity", "aim", "Ready", "True")
    after = get_object(cluster, "deployment", "aim", "imtegrity")

    assert observed(proxy)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert checksum(after) == checksum(before)


def test_upstream_edit_rolls_pods(cluster, example):
    wait_for_condition(cluster, "imtegrity", "aim", "Ready", "True")
    before = get_object(cluster, "deployment", "aim", "imtegrity")
    proxy = get_object(cluster, "imtegrityproxy", "aim", "imtegrity")
    timeout = proxy["spec"]["upstream"]["connect_timeout_seconds"] + 1

    merge_patch(
        cluster, "imp", "aim", "imtegrity",
        {"spec": {"upstream": {"connect_timeout_seconds": timeout}}},
    )  # fmt: skip
    after = wait_for_object(
        cluster, "deployment", "aim", "imtegrity",
        lambda deployment: checksum(deployment) != checksum(before),
        "a new checksum annotation on Deployment aim",
    )  # fmt: skip
    config = yaml.safe_load(config_text(cluster, "imtegrity"))
    proxy = wait_for_condition(cluster, "imtegrity", "aim", "Ready", "True")

    assert config["upstream"]["connect_timeout_seconds"] == timeout
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    assert proxy["status"]["readyReplicas"] == 1


# Drift.


def test_deleted_deployment_restored(cluster, example):
    before = get_object(cluster, "deployment", "aim", "imtegrity")

    cluster.kubectl("delete", "deployment", "aim", "-n", "imtegrity", "--wait=false")
    restored = wait_for_object(
        cluster, "deployment", "aim", "imtegrity",
        lambda deployment: deployment["metadata"]["uid"] != before["metadata"]["uid"],
        "a new Deployment imtegrity/aim",
    )  # fmt: skip

    assert restored["spec"]["template"]["spec"]["containers"][0]["image"] == PROXY_IMAGE
    assert restored["metadata"]["ownerReferences"][0]["uid"] == example["metadata"]["uid"]


def test_scaled_deployment_reverted(cluster, example):
    cluster.kubectl("annotate", "deployment", "aim", "-n", "imtegrity", "example.com/owner=ops")
    cluster.kubectl("scale", "deployment", "aim", "-n", "imtegrity", "--replicas=0")

    deployment = wait_for_object(
        cluster, "deployment", "aim", "imtegrity",
        lambda deployment: deployment["spec"]["replicas"] == 1,
        "Deployment aim back at 1 replica",
    )  # fmt: skip

    # The annotation belongs to kubectl's field manager, so the operator keeps it.
    assert deployment["metadata"]["annotations"]["example.com/owner"] == "ops"


def test_service_affinity_edit_reverted(cluster, example):
    merge_patch(cluster, "service", "aim", "imtegrity", {"spec": {"sessionAffinity": "None"}})

    service = wait_for_object(
        cluster, "service", "aim", "imtegrity",
        lambda service: service["spec"]["sessionAffinity"] == "ClientIP",
        "Service aim back at sessionAffinity ClientIP",
    )  # fmt: skip

    assert service["spec"]["sessionAffinity"] == "ClientIP"


def test_config_map_edit_reverted(cluster, example):
    original = config_text(cluster, "imtegrity")

    merge_patch(
        cluster, "configmap", "aim-config", "imtegrity", {"data": {"config.yaml": "listen: {}\n"}}
    )
    # No watch reacts to an edited ConfigMap: the resync timer restores it,
    # unless a pass started by another event does so first.
    wait_for(
        lambda: config_text(cluster, "imtegrity") == original, "ConfigMap aim-config restored"
    )

    assert config_text(cluster, "imtegrity") == original


# Validation by the API server.


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"ports": [70000]}, "spec.ports[0]", "less than or equal to 65535"),
        ({"egress": {"blockedCIDRs": ["64.12.0.0/33"]}}, "spec.egress.blockedCIDRs[0]", "CIDR"),
        ({"bogusField": True}, 'unknown field "spec.bogusField"', ""),
    ],
    ids=["port", "cidr", "unknown-field"],
)
def test_invalid_resource_rejected(cluster, spec, field, message):
    result = cluster.kubectl(
        "apply", "-f", "-", input=proxy_manifest("default", "invalid", spec), check=False
    )

    assert result.returncode != 0
    assert field in result.stderr
    assert message in result.stderr
    assert get_object(cluster, "imtegrityproxy", "invalid", "default") is None


# Refused specs.


def test_two_replicas_refused(cluster, operator):
    namespace = create_namespace(cluster, "op-replicas")
    cluster.kubectl("apply", "-f", "-", input=proxy_manifest(namespace, "aim", {"replicas": 2}))

    proxy = wait_for_condition(cluster, namespace, "aim", "Degraded", "True")

    assert condition(proxy, "Degraded")["reason"] == "ReplicasUnsupported"
    assert "single writer" in condition(proxy, "Degraded")["message"]
    assert condition(proxy, "Ready")["status"] == "False"
    assert get_object(cluster, "deployment", "aim", namespace) is None
    assert ("Warning", "ReplicasUnsupported") in event_reasons(cluster, namespace, "aim")


def test_refused_replicas_recover(cluster, operator):
    namespace = create_namespace(cluster, "op-recover")
    cluster.kubectl("apply", "-f", "-", input=proxy_manifest(namespace, "aim", {"replicas": 2}))
    wait_for_condition(cluster, namespace, "aim", "Degraded", "True")

    merge_patch(cluster, "imp", "aim", namespace, {"spec": {"replicas": 1}})
    proxy = wait_for_condition(cluster, namespace, "aim", "Degraded", "False")

    assert get_object(cluster, "deployment", "aim", namespace)["spec"]["replicas"] == 1
    assert ("Normal", "Recovered") in event_reasons(cluster, namespace, "aim")
    assert proxy["status"]["observedGeneration"] == 2


def test_invalid_policy_names_field(cluster, operator):
    namespace = create_namespace(cluster, "op-policy")
    spec = {"policy": {"rules": [{"name": "broken", "pattern": "(", "action": "block"}]}}
    cluster.kubectl("apply", "-f", "-", input=proxy_manifest(namespace, "aim", spec))

    proxy = wait_for_condition(cluster, namespace, "aim", "Degraded", "True")
    message = condition(proxy, "Degraded")["message"]

    assert condition(proxy, "Degraded")["reason"] == "InvalidSpec"
    assert message.startswith("spec.policy.rules[0].pattern: invalid regular expression")
    assert get_object(cluster, "configmap", "aim-config", namespace) is None


# Lifecycle.


def test_delete_removes_children(cluster, operator):
    namespace = create_namespace(cluster, "op-delete")
    create_archive_volume(cluster, namespace, "aim-archive")
    cluster.kubectl("apply", "-f", "-", input=proxy_manifest(namespace, "aim", {}))
    wait_for_condition(cluster, namespace, "aim", "Ready", "True")

    cluster.kubectl("delete", "imp", "aim", "-n", namespace, "--timeout=60s")

    for kind in CHILD_KINDS:
        name = {"configmap": "aim-config", "persistentvolumeclaim": "aim-archive"}.get(kind, "aim")
        gone = wait_for(
            lambda kind=kind, name=name: get_object(cluster, kind, name, namespace) is None,
            f"{kind} {namespace}/{name} deleted by the garbage collector",
        )
        assert gone is True, kind


def test_liveness_endpoint(operator):
    probe = http_probe(operator.liveness_url, ok=lambda status: status == 200)

    assert probe() is True


def _children(cluster: KubeCluster, namespace: str) -> dict[str, dict]:
    selector = "app.kubernetes.io/managed-by=imtegrity-operator"
    kinds = ",".join(CHILD_KINDS)
    items = cluster.kubectl_json("get", kinds, "-n", namespace, "-l", selector)["items"]
    return {f"{item['kind']}/{item['metadata']['name']}": item for item in items}


def test_restart_mid_reconcile_converges(cluster, tmp_path):
    """A restarted operator repairs what a killed one left, and a further restart changes nothing.

    The first operator gets SIGKILL once its first child exists. A pass takes
    well under a second, so it has often finished by then. The test therefore
    also deletes the Deployment and corrupts the ConfigMap: the second operator
    always starts from the state that a pass cut short would leave.
    """
    namespace = create_namespace(cluster, "restart")
    create_archive_volume(cluster, namespace, "aim-archive")
    client = KubeClient.from_config(str(cluster.kubeconfig))
    first = start_operator(cluster, tmp_path / "first", [namespace])
    try:
        cluster.kubectl("apply", "-f", "-", input=proxy_manifest(namespace, "aim", {}))
        config_map = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"namespace": namespace, "name": "aim-config"},
        }
        # Kill the operator as soon as its first child appears, so the pass
        # that applies the other children is cut short.
        wait_for(lambda: client.get(config_map), "the first child, ConfigMap aim-config")
        first.process.send_signal(signal.SIGKILL)
    finally:
        first.close()
    # Whatever the killed pass left, make the state partial for certain.
    cluster.kubectl("delete", "deployment", "aim", "-n", namespace, "--ignore-not-found")
    merge_patch(cluster, "configmap", "aim-config", namespace, {"data": {"config.yaml": "x"}})

    second = start_operator(cluster, tmp_path / "second", [namespace])
    try:
        proxy = wait_for_condition(cluster, namespace, "aim", "Ready", "True")
        converged = _children(cluster, namespace)
        second.stop()
        third = start_operator(cluster, tmp_path / "third", [namespace])
        try:
            time.sleep(12)  # longer than one resync interval of the restarted operator
            after_restart = _children(cluster, namespace)
        finally:
            third.close()
    finally:
        second.close()
    owner = Owner.from_body(proxy)
    desired = {
        f"{child['kind']}/{child['metadata']['name']}": child
        for child in render_children(owner, parse_spec(proxy["spec"]), PROXY_IMAGE)
    }

    assert sorted(converged) == sorted(desired)
    for key, child in desired.items():
        assert contains(converged[key], child), key
    for key, child in converged.items():
        # Controllers write the status of Deployments and budgets, so compare
        # the generation, which only a spec change moves.
        field = "generation" if "generation" in child["metadata"] else "resourceVersion"
        assert after_restart[key]["metadata"][field] == child["metadata"][field], key

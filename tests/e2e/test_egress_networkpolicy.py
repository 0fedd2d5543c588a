"""Egress denial with NetworkPolicies, proved with netpol-analyzer on the cluster's own objects.

The module starts a cluster of its own (etcd, kube-apiserver, controllers,
scheduler and a kwok node). The operator's egress and DNS passes cover every
namespace and every IMtegrityProxy, and the session's shared cluster contains
other modules' proxies, which would take part. A DaemonSet named
``kube-router`` stands for a network plugin that enforces NetworkPolicies.
kwok runs its pod, and nothing filters traffic here.

netpol-analyzer (``netpolicy``) reads the Pods, Namespaces and
NetworkPolicies exported with kubectl. The AOL addresses appear only as its
``--destination-ip`` input; no test sends a packet anywhere but loopback.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_operator import (
    CRD_NAME,
    CRD_PATH,
    condition,
    create_archive_volume,
    get_object,
    proxy_manifest,
    start_operator,
    wait_for,
)
from tests.fixtures.kube import KubeCluster, add_nodes, start_kube_cluster
from tests.fixtures.peers import PeerProcess, minimal_env, peer_binary

pytestmark = pytest.mark.e2e

NETPOLICY_TIMEOUT_SECONDS = 60
# Addresses inside AOL's blocks (64.12.0.0/16 and 205.188.0.0/16), used only
# as netpol-analyzer input.
AOL_ADDRESSES = ("64.12.24.50", "205.188.13.12")
AOL_PORTS = ("5190", "443", "80")
# "Within seconds": the namespace and NetworkPolicy watches start a pass at once.
QUICK_SECONDS = 15.0
MANAGED = "app.kubernetes.io/managed-by=imtegrity-operator"
PROXY_SELECTOR = "app.kubernetes.io/instance=aim"


# Cluster helpers, shared with test_egress_clusterwide.py.


def start_own_cluster(workdir: Path) -> KubeCluster:
    """Start a cluster with a kwok node and the IMtegrityProxy CRD; stop it if a step fails."""
    cluster = start_kube_cluster(workdir)
    try:
        add_nodes(cluster)
        cluster.kubectl("apply", "-f", str(CRD_PATH))
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def apply(cluster: KubeCluster, *objects: dict) -> None:
    manifest = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def create_namespace(cluster: KubeCluster, name: str) -> None:
    """Create a namespace and wait for its default ServiceAccount, which pods need."""
    cluster.kubectl("create", "namespace", name)
    wait_for(
        lambda: (
            cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode
            == 0
        ),
        f"ServiceAccount {name}/default",
    )


def pod(namespace: str, name: str, labels: dict[str, str], host_network: bool = False) -> dict:
    spec: dict = {
        "containers": [{"name": "main", "image": "registry.invalid/app:1"}],
        "automountServiceAccountToken": False,
    }
    if host_network:
        spec["hostNetwork"] = True
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def daemonset(namespace: str, name: str) -> dict:
    """A DaemonSet object that detection looks for; kwok runs its pod, which does nothing."""
    labels = {"k8s-app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "agent", "image": "registry.invalid/agent:1"}]},
            },
        },
    }


def network_policy(namespace: str, name: str, selector: dict, egress: list | None) -> dict:
    spec: dict = {"podSelector": selector, "policyTypes": ["Egress"]}
    if egress is not None:
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def wait_pods_ready(cluster: KubeCluster, namespace: str) -> None:
    cluster.kubectl(
        "wait", "--for=condition=Ready", "pod", "--all", "-n", namespace, "--timeout=90s"
    )


def export(cluster: KubeCluster, directory: Path, *kinds: str) -> Path:
    """Write each kind, from every namespace, as one YAML List file in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        text = cluster.kubectl("get", kind, "-A", "-o", "yaml").stdout
        (directory / f"{kind.replace('.', '-')}.yaml").write_text(text)
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


def reaches(directory: Path, namespace: str, name: str, address: str, port: str) -> bool:
    """Return netpol-analyzer's verdict on a TCP connection from a pod to an external address."""
    output = netpolicy(
        "eval", "--dirpath", str(directory), "-s", name, "-n", namespace,
        "--destination-ip", address, "-p", port,
    ).stdout  # fmt: skip
    verdict = output.strip().rsplit(":", 1)[-1].strip()
    assert verdict in ("true", "false"), output
    return verdict == "true"


def pod_names(cluster: KubeCluster, namespace: str, selector: str | None = None) -> list[str]:
    args = ["get", "pods", "-n", namespace]
    if selector:
        args += ["-l", selector]
    return [item["metadata"]["name"] for item in cluster.kubectl_json(*args)["items"]]


def operator_policies(cluster: KubeCluster, namespace: str) -> list[dict]:
    return cluster.kubectl_json("get", "networkpolicies", "-n", namespace, "-l", MANAGED)["items"]


def coverage_selectors(cluster: KubeCluster, namespace: str) -> list[dict]:
    return [
        policy["spec"]["podSelector"]
        for policy in operator_policies(cluster, namespace)
        if policy["metadata"]["labels"].get("imtegrity.io/egress-role") == "coverage"
    ]


def wait_condition(cluster: KubeCluster, namespace: str, condition_type: str, predicate) -> dict:
    """Wait until the proxy's condition satisfies ``predicate``; return the condition."""

    def probe() -> dict | None:
        proxy = get_object(cluster, "imtegrityproxy", "aim", namespace)
        found = condition(proxy or {}, condition_type)
        return found if found and predicate(found) else None

    return wait_for(probe, f"{condition_type} on {namespace}/aim")


def start_proxy(cluster: KubeCluster, namespace: str, spec: dict | None = None) -> None:
    create_archive_volume(cluster, namespace, "aim-archive")
    cluster.kubectl("apply", "-f", "-", input=proxy_manifest(namespace, "aim", spec or {}))
    wait_for(lambda: pod_names(cluster, namespace, PROXY_SELECTOR), f"a proxy pod in {namespace}")
    wait_pods_ready(cluster, namespace)


# Fixtures.


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    own = start_own_cluster(tmp_path_factory.mktemp("egress-np-kube"))
    try:
        yield own
    finally:
        own.close()


@pytest.fixture(scope="module")
def scene(cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Namespaces, pods and user policies; then the operator and a proxy.

    - ``team``: two pods and no policy;
    - ``locked``: a pre-existing default-deny egress policy;
    - ``mixed``: ``api`` pods restricted to in-cluster peers, others free;
    - ``legacy``: a policy that lets ``app=legacy`` reach everything on 443;
    - ``hostnet``: a host-network pod.
    """
    apply(cluster, daemonset("kube-system", "kube-router"))
    for name in ("imtegrity", "team", "locked", "mixed", "legacy", "hostnet"):
        create_namespace(cluster, name)
    apply(
        cluster,
        pod("team", "web", {"app": "web"}),
        pod("team", "worker", {"app": "worker"}),
        pod("locked", "vault", {"app": "vault"}),
        pod("mixed", "api", {"app": "api"}),
        pod("mixed", "batch", {"app": "batch"}),
        pod("legacy", "old", {"app": "legacy"}),
        pod("legacy", "new", {"app": "new"}),
        pod("hostnet", "exporter", {"app": "exporter"}, host_network=True),
        network_policy("locked", "default-deny", {}, []),
        network_policy(
            "mixed", "api-in-cluster", {"matchLabels": {"app": "api"}},
            [{"to": [{"namespaceSelector": {}}]}],
        ),
        network_policy(
            "legacy", "legacy-https", {"matchLabels": {"app": "legacy"}},
            [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]}],
        ),
    )  # fmt: skip
    for name in ("team", "locked", "mixed", "legacy", "hostnet"):
        wait_pods_ready(cluster, name)
    workdir = tmp_path_factory.mktemp("egress-np")
    before_policies = export(cluster, workdir / "policies-before", "networkpolicies")
    operator = start_operator(cluster, workdir / "operator", [])
    try:
        start_proxy(cluster, "imtegrity")
        wait_for(lambda: coverage_selectors(cluster, "team"), "coverage in namespace team")
        yield {"workdir": workdir, "before_policies": before_policies, "operator": operator}
    finally:
        crashed = operator.exited_unexpectedly
        operator.close()
        assert not crashed, f"the operator exited by itself\n{operator.describe_log()}"


@pytest.fixture(scope="module")
def analysis_dirs(cluster: KubeCluster, scene: dict) -> dict[str, Path]:
    """Two netpol-analyzer inputs with the same pods: policies before and after the operator."""
    workdir: Path = scene["workdir"]
    wait_for(
        lambda: condition(
            get_object(cluster, "imtegrityproxy", "aim", "imtegrity") or {}, "EgressEnforced"
        ),
        "EgressEnforced on imtegrity/aim",
    )
    after = export(cluster, workdir / "after", "pods", "namespaces", "networkpolicies")
    before = export(cluster, workdir / "before", "pods", "namespaces")
    before_policies = scene["before_policies"] / "networkpolicies.yaml"
    (before / "networkpolicies.yaml").write_text(before_policies.read_text())
    return {"before": before, "after": after}


# The policies the operator writes.


def test_coverage_in_plain_namespace(cluster, scene):
    assert coverage_selectors(cluster, "team") == [{}]


def test_exempt_namespace_untouched(cluster, scene):
    assert operator_policies(cluster, "kube-system") == []


def test_default_deny_namespace_untouched(cluster, scene):
    assert coverage_selectors(cluster, "locked") == []


def test_restricted_pods_excluded(cluster, scene):
    assert coverage_selectors(cluster, "mixed") == [
        {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["api"]}]}
    ]


def test_coverage_rule_excepts_aol(cluster, scene):
    (policy,) = [
        p
        for p in operator_policies(cluster, "team")
        if p["metadata"]["labels"]["imtegrity.io/egress-role"] == "coverage"
    ]
    (rule,) = policy["spec"]["egress"]

    assert policy["spec"]["policyTypes"] == ["Egress"]
    assert "ports" not in rule
    assert rule["to"][0]["ipBlock"] == {
        "cidr": "0.0.0.0/0",
        "except": ["64.12.0.0/16", "152.163.0.0/16", "205.188.0.0/16"],
    }


def test_proxy_policy_allows_upstream_port(cluster, scene):
    policy = get_object(cluster, "networkpolicy", "aim-egress", "imtegrity")
    upstream, dns = policy["spec"]["egress"]

    assert policy["metadata"]["ownerReferences"][0]["name"] == "aim"
    assert upstream["ports"] == [{"protocol": "TCP", "port": 5190}]
    assert [peer["ipBlock"]["cidr"] for peer in upstream["to"]] == [
        "64.12.0.0/16",
        "152.163.0.0/16",
        "205.188.0.0/16",
    ]
    assert {port["port"] for port in dns["ports"]} == {53}


def test_proxy_pods_use_node_resolver(cluster, scene):
    deployment = get_object(cluster, "deployment", "aim", "imtegrity")

    # The default upstream, login.oscar.aol.com, is an overridden name.
    assert deployment["spec"]["template"]["spec"]["dnsPolicy"] == "Default"


# What netpol-analyzer finds the pods can reach.


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("team", "web"),
        ("team", "worker"),
        ("locked", "vault"),
        ("mixed", "api"),
        ("mixed", "batch"),
        ("legacy", "new"),
    ],
)
def test_pod_cannot_reach_aol(analysis_dirs, namespace, name):
    for address in AOL_ADDRESSES:
        for port in AOL_PORTS:
            assert not reaches(analysis_dirs["after"], namespace, name, address, port), (
                f"{namespace}/{name} -> {address}:{port}"
            )


def test_pods_reached_aol_before(analysis_dirs):
    # The same question on the policies before the operator acted, so the
    # check above can fail.
    assert reaches(analysis_dirs["before"], "team", "web", AOL_ADDRESSES[0], "5190")
    assert reaches(analysis_dirs["before"], "mixed", "batch", AOL_ADDRESSES[1], "80")


def test_pod_still_reaches_others(analysis_dirs):
    assert reaches(analysis_dirs["after"], "team", "web", "192.0.2.10", "443")


def test_proxy_reaches_aol_on_upstream_port(cluster, analysis_dirs):
    (proxy,) = pod_names(cluster, "imtegrity", PROXY_SELECTOR)

    for address in AOL_ADDRESSES:
        assert reaches(analysis_dirs["after"], "imtegrity", proxy, address, "5190"), address
    assert not reaches(analysis_dirs["after"], "imtegrity", proxy, AOL_ADDRESSES[0], "80")


def test_legacy_bypass_is_real(analysis_dirs):
    # The pre-existing policy still lets app=legacy out on 443; the operator
    # reports it (below) rather than widening or deleting it.
    assert reaches(analysis_dirs["after"], "legacy", "old", AOL_ADDRESSES[0], "443")
    assert not reaches(analysis_dirs["after"], "legacy", "old", AOL_ADDRESSES[0], "5190")


def diff_rows(analysis_dirs) -> list[dict[str, str]]:
    output = netpolicy(
        "diff", "--dir1", str(analysis_dirs["before"]), "--dir2", str(analysis_dirs["after"]),
        "-o", "csv",
    ).stdout  # fmt: skip
    return list(csv.DictReader(io.StringIO(output)))


def connection_set(text: str) -> set[tuple[str, str]]:
    """Parse netpol-analyzer's "TCP 53,5190;UDP 53" connection text into (protocol, ports)."""
    text = text.strip()
    if text == "No Connections":
        return set()
    if text == "All Connections":
        return {("*", "*")}
    found = set()
    for part in text.split(";"):
        protocol, _, ports = part.strip().partition(" ")
        found |= {(protocol, port) for port in ports.split(",")}
    return found


def test_no_connection_added(analysis_dirs):
    rows = diff_rows(analysis_dirs)

    assert rows, "netpol-analyzer found no difference at all"
    assert [row for row in rows if row["diff-type"] == "added"] == []


def test_changed_connections_only_shrink(analysis_dirs):
    for row in diff_rows(analysis_dirs):
        if row["diff-type"] != "changed":
            continue
        before = connection_set(row["dir1"])
        after = connection_set(row["dir2"])
        assert before == {("*", "*")} or after <= before, row


def test_default_deny_namespace_unchanged(analysis_dirs):
    rows = diff_rows(analysis_dirs)

    assert [r for r in rows if "locked/" in r["source"]] == []
    assert [r for r in rows if "legacy/old" in r["source"]] == []


# The condition.


def test_condition_reports_bypasses(cluster, scene):
    found = wait_condition(
        cluster, "imtegrity", "EgressEnforced", lambda c: "legacy-https" in c["message"]
    )

    assert found["status"] == "False"
    assert found["reason"] == "BypassFound"
    assert "NetworkPolicy legacy/legacy-https allows 64.12.0.0/16" in found["message"]
    assert "on TCP 443" in found["message"]
    assert "hostnet/exporter" in found["message"]
    assert "kube-system/kube-router" in found["message"]
    for namespace in ("imtegrity", "team", "locked", "mixed", "legacy", "hostnet"):
        assert namespace in found["message"].split("covered namespaces")[1], namespace


# Changes in the cluster.


def test_new_namespace_covered_quickly(cluster, scene):
    name = f"fresh-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    cluster.kubectl("create", "namespace", name)

    wait_for(lambda: coverage_selectors(cluster, name), f"coverage in namespace {name}")

    assert time.monotonic() - started < QUICK_SECONDS


def test_deleted_policy_restored_quickly(cluster, scene):
    (policy,) = [
        p
        for p in operator_policies(cluster, "team")
        if p["metadata"]["labels"]["imtegrity.io/egress-role"] == "coverage"
    ]
    name = policy["metadata"]["name"]
    started = time.monotonic()
    cluster.kubectl("delete", "networkpolicy", name, "-n", "team")

    restored = wait_for(
        lambda: get_object(cluster, "networkpolicy", name, "team"), f"NetworkPolicy team/{name}"
    )

    assert restored["metadata"]["uid"] != policy["metadata"]["uid"]
    assert time.monotonic() - started < QUICK_SECONDS


def test_new_user_policy_narrows_coverage(cluster, scene):
    apply(
        cluster,
        network_policy("team", "web-only-dns", {"matchLabels": {"app": "web"}}, []),
    )

    selectors = wait_for(
        lambda: [s for s in coverage_selectors(cluster, "team") if s != {}] or None,
        "coverage in team without app=web",
    )
    wait_for(lambda: {} not in coverage_selectors(cluster, "team"), "the old coverage pruned")

    assert selectors == [
        {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}
    ]


def test_delete_removes_every_policy(cluster, scene):
    cluster.kubectl("delete", "imtegrityproxy", "aim", "-n", "imtegrity", "--timeout=90s")

    leftovers = cluster.kubectl_json("get", "networkpolicies", "-A", "-l", MANAGED)["items"]

    assert [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in leftovers] == []
    assert get_object(cluster, "imtegrityproxy", "aim", "imtegrity") is None


def test_user_policies_survive_delete(cluster, scene):
    names = {
        (p["metadata"]["namespace"], p["metadata"]["name"])
        for p in cluster.kubectl_json("get", "networkpolicies", "-A")["items"]
    }

    assert ("locked", "default-deny") in names
    assert ("legacy", "legacy-https") in names
    assert ("team", "web-only-dns") in names


def test_operator_log_has_no_traceback(scene):
    operator: PeerProcess = scene["operator"]

    assert "Traceback" not in operator.log_text()

"""Cluster-wide egress denial: Calico, Cilium, AdminNetworkPolicy and ClusterNetworkPolicy.

The module starts a cluster of its own and installs, step by step, the
minimal CRDs of tests/fixtures/crds. These were written for these tests from
the projects' documented field names and are not the projects' own
manifests. Beside each CRD goes a DaemonSet object named like the plugin's
agent, so detection picks that kind. kwok runs the agents' pods, which do
nothing: the API server validates the policies the operator writes, and no
packet is filtered.

The tests run in file order, each one switching the cluster to the next kind
and checking that the operator writes it and prunes the previous one.
netpol-analyzer v1.4.4 reads AdminNetworkPolicies, so that step is also
checked with it. It does not read ClusterNetworkPolicies or the Cilium and
Calico kinds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_egress_networkpolicy import (
    AOL_ADDRESSES,
    AOL_PORTS,
    PROXY_SELECTOR,
    apply,
    create_namespace,
    daemonset,
    export,
    pod,
    pod_names,
    reaches,
    start_own_cluster,
    start_proxy,
    wait_condition,
    wait_pods_ready,
)
from tests.e2e.test_operator import start_operator, wait_for
from tests.fixtures.kube import KubeCluster
from tests.fixtures.peers import REPO_ROOT

pytestmark = pytest.mark.e2e

CRD_DIR = REPO_ROOT / "tests" / "fixtures" / "crds"
OWNED = "imtegrity.io/component=egress"
KINDS = {
    "calico-tier": "tiers.crd.projectcalico.org",
    "calico": "globalnetworkpolicies.crd.projectcalico.org",
    "cilium": "ciliumclusterwidenetworkpolicies.cilium.io",
    "anp": "adminnetworkpolicies.policy.networking.k8s.io",
    "cnp": "clusternetworkpolicies.policy.networking.k8s.io",
}


def install_crds(cluster: KubeCluster, file_name: str, *crd_names: str) -> None:
    cluster.kubectl("apply", "-f", str(CRD_DIR / file_name))
    for name in crd_names:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


def owned(cluster: KubeCluster, kind: str) -> list[dict]:
    """Return the operator's egress objects of one kind; none if the kind is not served."""
    result = cluster.kubectl("get", KINDS[kind], "-l", OWNED, "-o", "json", check=False)
    if result.returncode != 0:
        assert "the server doesn't have a resource type" in result.stderr, result.stderr
        return []
    return json.loads(result.stdout)["items"]


def by_name(items: list[dict]) -> dict[str, dict]:
    return {item["metadata"]["name"]: item for item in items}


def coverage_policies(cluster: KubeCluster) -> list[dict]:
    items = cluster.kubectl_json("get", "networkpolicies", "-A", "-l", OWNED)["items"]
    return [i for i in items if i["metadata"]["labels"]["imtegrity.io/egress-role"] == "coverage"]


def enforcement_message(cluster: KubeCluster, kind_name: str) -> dict:
    return wait_condition(
        cluster,
        "imtegrity",
        "EgressEnforced",
        lambda c: f"enforced with {kind_name}" in c["message"],
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    own = start_own_cluster(tmp_path_factory.mktemp("egress-cw-kube"))
    try:
        yield own
    finally:
        own.close()


@pytest.fixture(scope="module")
def scene(cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two plain pods in ``team``, then the operator and a proxy in ``imtegrity``."""
    for name in ("imtegrity", "team"):
        create_namespace(cluster, name)
    apply(cluster, pod("team", "web", {"app": "web"}), pod("team", "worker", {"app": "worker"}))
    wait_pods_ready(cluster, "team")
    workdir = tmp_path_factory.mktemp("egress-cw")
    operator = start_operator(cluster, workdir / "operator", [])
    try:
        start_proxy(cluster, "imtegrity")
        wait_for(lambda: coverage_policies(cluster), "NetworkPolicy coverage before any CRD")
        yield workdir
    finally:
        crashed = operator.exited_unexpectedly
        operator.close()
        assert not crashed, f"the operator exited by itself\n{operator.describe_log()}"


# Calico.


def test_calico_detected(cluster, scene):
    install_crds(cluster, "calico.yaml", KINDS["calico-tier"], KINDS["calico"])
    cluster.kubectl("create", "namespace", "calico-system")
    apply(cluster, daemonset("calico-system", "calico-node"))

    found = enforcement_message(cluster, "Calico GlobalNetworkPolicy")

    assert "calico-system/calico-node" in found["message"]
    assert found["status"] == "True"


def test_calico_objects_validated(cluster, scene):
    tiers = by_name(owned(cluster, "calico-tier"))
    policies = by_name(owned(cluster, "calico"))
    (allow_name,) = [name for name in policies if name.startswith("imtegrity.allow-proxy-")]

    assert tiers["imtegrity"]["spec"] == {"order": 100, "defaultAction": "Pass"}
    assert policies["imtegrity.deny-blocked-cidrs"]["spec"]["egress"][0] == {
        "action": "Deny",
        "destination": {"nets": ["64.12.0.0/16", "152.163.0.0/16", "205.188.0.0/16"]},
    }
    assert policies[allow_name]["spec"]["egress"][0]["destination"]["ports"] == [5190]


def test_calico_replaces_coverage(cluster, scene):
    wait_for(lambda: not coverage_policies(cluster), "coverage NetworkPolicies pruned")

    assert cluster.kubectl_json("get", "networkpolicy", "aim-egress", "-n", "imtegrity")


# Cilium.


def test_cilium_detected(cluster, scene):
    cluster.kubectl("delete", "daemonset", "calico-node", "-n", "calico-system")
    install_crds(cluster, "ciliumclusterwidenetworkpolicies.cilium.io.yaml", KINDS["cilium"])
    apply(cluster, daemonset("kube-system", "cilium"))

    found = enforcement_message(cluster, "CiliumClusterwideNetworkPolicy")

    assert "kube-system/cilium" in found["message"]


def test_cilium_objects_validated(cluster, scene):
    policies = owned(cluster, "cilium")
    selectors = [policy["spec"]["endpointSelector"] for policy in policies]

    assert len(policies) == 3
    for policy in policies:
        assert policy["spec"]["enableDefaultDeny"] == {"egress": False, "ingress": False}
        assert policy["spec"]["egressDeny"] == [
            {
                "toCIDRSet": [
                    {"cidr": "64.12.0.0/16"},
                    {"cidr": "152.163.0.0/16"},
                    {"cidr": "205.188.0.0/16"},
                ]
            }
        ]
    assert {
        "matchExpressions": [
            {
                "key": "io.kubernetes.pod.namespace",
                "operator": "NotIn",
                "values": ["imtegrity", "kube-system"],
            }
        ]
    } in selectors


def test_cilium_prunes_calico(cluster, scene):
    wait_for(lambda: not owned(cluster, "calico"), "Calico policies pruned")

    assert owned(cluster, "calico-tier") == []


# AdminNetworkPolicy.


def test_admin_network_policy_detected(cluster, scene):
    cluster.kubectl("delete", "daemonset", "cilium", "-n", "kube-system")
    install_crds(cluster, "adminnetworkpolicies.policy.networking.k8s.io.yaml", KINDS["anp"])
    apply(cluster, daemonset("kube-system", "kube-network-policies"))

    found = enforcement_message(cluster, "AdminNetworkPolicy")

    assert "kube-system/kube-network-policies" in found["message"]


def test_admin_network_policy_validated(cluster, scene):
    policies = by_name(owned(cluster, "anp"))
    deny = policies["imtegrity-deny-blocked-cidrs"]
    (allow,) = [p for name, p in policies.items() if name.startswith("imtegrity-allow-proxy-")]

    assert deny["spec"]["egress"][0]["action"] == "Deny"
    assert "ports" not in deny["spec"]["egress"][0]
    assert allow["spec"]["priority"] < deny["spec"]["priority"]
    assert allow["spec"]["egress"][0]["ports"] == [
        {"portNumber": {"protocol": "TCP", "port": 5190}}
    ]


def test_admin_network_policy_prunes_cilium(cluster, scene):
    wait_for(lambda: not owned(cluster, "cilium"), "Cilium policies pruned")

    assert owned(cluster, "cilium") == []


@pytest.fixture(scope="module")
def admin_analysis(cluster: KubeCluster, scene: Path) -> Path:
    """Pods, namespaces, NetworkPolicies and AdminNetworkPolicies, for netpol-analyzer."""
    wait_for(lambda: owned(cluster, "anp"), "AdminNetworkPolicies")
    return export(
        cluster,
        scene / "admin",
        "pods",
        "namespaces",
        "networkpolicies",
        "adminnetworkpolicies.policy.networking.k8s.io",
    )


@pytest.mark.parametrize("name", ["web", "worker"])
def test_admin_pods_cannot_reach_aol(admin_analysis, name):
    for address in AOL_ADDRESSES:
        for port in AOL_PORTS:
            assert not reaches(admin_analysis, "team", name, address, port), f"{address}:{port}"


def test_admin_pods_reach_elsewhere(admin_analysis):
    assert reaches(admin_analysis, "team", "web", "192.0.2.10", "443")


def test_admin_proxy_reaches_aol(cluster, admin_analysis):
    (proxy,) = pod_names(cluster, "imtegrity", PROXY_SELECTOR)

    for address in AOL_ADDRESSES:
        assert reaches(admin_analysis, "imtegrity", proxy, address, "5190"), address
    assert not reaches(admin_analysis, "imtegrity", proxy, AOL_ADDRESSES[0], "443")


# ClusterNetworkPolicy.


def test_cluster_network_policy_preferred(cluster, scene):
    install_crds(cluster, "clusternetworkpolicies.policy.networking.k8s.io.yaml", KINDS["cnp"])

    found = enforcement_message(cluster, "ClusterNetworkPolicy")

    assert found["status"] == "True"


def test_cluster_network_policy_validated(cluster, scene):
    policies = by_name(owned(cluster, "cnp"))
    deny = policies["imtegrity-deny-blocked-cidrs"]
    (allow,) = [p for name, p in policies.items() if name.startswith("imtegrity-allow-proxy-")]

    assert deny["spec"]["tier"] == "Admin"
    assert deny["spec"]["egress"][0]["action"] == "Deny"
    assert allow["spec"]["egress"][0]["action"] == "Accept"
    assert allow["spec"]["egress"][0]["protocols"] == [
        {"tcp": {"destinationPort": {"number": 5190}}}
    ]


def test_cluster_network_policy_prunes_admin(cluster, scene):
    wait_for(lambda: not owned(cluster, "anp"), "AdminNetworkPolicies pruned")

    assert owned(cluster, "anp") == []


def test_schema_rejects_invalid_policy(cluster, scene):
    invalid = {
        "apiVersion": "policy.networking.k8s.io/v1alpha2",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": "invalid"},
        "spec": {"tier": "Admin", "priority": 5000, "subject": {"namespaces": {}}},
    }

    result = cluster.kubectl("apply", "-f", "-", input=json.dumps(invalid), check=False)

    assert result.returncode != 0
    assert "spec.priority" in result.stderr


# Deletion.


def test_delete_removes_cluster_objects(cluster, scene):
    cluster.kubectl("delete", "imtegrityproxy", "aim", "-n", "imtegrity", "--timeout=90s")

    for kind in KINDS:
        assert owned(cluster, kind) == [], kind
    assert cluster.kubectl_json("get", "networkpolicies", "-A", "-l", OWNED)["items"] == []

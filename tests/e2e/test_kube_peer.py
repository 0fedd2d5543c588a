"""Smoke tests for the loopback Kubernetes control plane in tests/fixtures/kube.py."""

from __future__ import annotations

import ipaddress
import json
import os
import uuid
from pathlib import Path

import pytest

from tests.fixtures.kube import KWOK_NODE_NAME, KubeCluster

pytestmark = pytest.mark.e2e

# Bound for a 2-replica Deployment to become ready on the kwok node.
ROLLOUT_TIMEOUT = "120s"
# State code of a listening socket (TCP_LISTEN) in /proc/net/tcp.
TCP_LISTEN = "0A"


def unique_namespace(cluster: KubeCluster, prefix: str) -> str:
    """Create a namespace with a random suffix, so tests sharing the cluster never collide."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    return name


def test_apiserver_readyz(kube_cluster: KubeCluster):
    result = kube_cluster.kubectl("get", "--raw", "/readyz")

    assert result.stdout.strip() == "ok"


def listening_addresses(pid: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Return the local addresses of the TCP sockets in LISTEN state that pid owns.

    Reads Linux's /proc/<pid>/fd and /proc/net/tcp{,6}.
    """
    fd_dir = Path(f"/proc/{pid}/fd")
    inodes = set()
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        # The process may close a descriptor while the loop runs.
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    addresses = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == TCP_LISTEN and inode in inodes:
                addresses.add(decode_proc_net_address(local.split(":")[0]))
    return addresses


def decode_proc_net_address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Decode an address of /proc/net/tcp, written as 32-bit words in host byte order.

    Assumes a little-endian host, such as x86-64 or arm64.
    """
    raw = bytes.fromhex(hex_address)
    words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
    address = ipaddress.ip_address(b"".join(words))
    # Python 3.11 does not count ::ffff:127.0.0.1 as loopback, so unwrap it.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def test_control_plane_listens_on_loopback(kube_cluster_with_nodes: KubeCluster):
    listening = {
        process.name: listening_addresses(process.pid)
        for process in kube_cluster_with_nodes.processes
        if process.pid is not None
    }

    # Guards against a parser that finds nothing, which would pass the loop below.
    assert listening["kube-apiserver"] != set()
    for name, addresses in listening.items():
        non_loopback = {str(a) for a in addresses if not a.is_loopback}
        assert non_loopback == set(), f"{name} listens on {non_loopback}"


def test_configmap_round_trip(kube_cluster: KubeCluster):
    namespace = unique_namespace(kube_cluster, "smoke")
    kube_cluster.kubectl(
        "create", "configmap", "greeting", "-n", namespace, "--from-literal=text=hello"
    )

    configmap = kube_cluster.kubectl_json("get", "configmap", "greeting", "-n", namespace)

    assert configmap["metadata"]["namespace"] == namespace
    assert configmap["data"] == {"text": "hello"}


def test_service_account_cannot_list_secrets(kube_cluster: KubeCluster):
    namespace = unique_namespace(kube_cluster, "rbac")
    kube_cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    kubeconfig = kube_cluster.service_account_kubeconfig(namespace, "reader")

    whoami = kube_cluster.kubectl_json("auth", "whoami", kubeconfig=kubeconfig)
    can_list = kube_cluster.kubectl(
        "auth", "can-i", "list", "secrets", "-n", namespace, kubeconfig=kubeconfig, check=False
    )

    # An invalid token would also get "no", as the anonymous user, so check the identity.
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:reader"
    assert can_list.stdout.strip() == "no"
    assert can_list.returncode == 1


def test_service_account_gains_granted_verb(kube_cluster: KubeCluster):
    """The positive control for the test above: RBAC grants what a Role allows."""
    namespace = unique_namespace(kube_cluster, "rbac")
    kube_cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    kube_cluster.kubectl(
        "create", "role", "configmap-reader", "-n", namespace,
        "--verb=list", "--resource=configmaps",
    )  # fmt: skip
    kube_cluster.kubectl(
        "create", "rolebinding", "reader", "-n", namespace,
        "--role=configmap-reader", f"--serviceaccount={namespace}:reader",
    )  # fmt: skip
    kubeconfig = kube_cluster.service_account_kubeconfig(namespace, "reader")

    can_list_configmaps = kube_cluster.kubectl(
        "auth", "can-i", "list", "configmaps", "-n", namespace,
        kubeconfig=kubeconfig, check=False,
    )  # fmt: skip
    can_list_secrets = kube_cluster.kubectl(
        "auth", "can-i", "list", "secrets", "-n", namespace, kubeconfig=kubeconfig, check=False
    )

    assert can_list_configmaps.stdout.strip() == "yes"
    assert can_list_secrets.stdout.strip() == "no"


def deployment_manifest(namespace: str, replicas: int) -> str:
    labels = {"app": "smoke"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "smoke", "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    # kwok never pulls images, so the name need not resolve.
                    "containers": [{"name": "main", "image": "registry.invalid/smoke:1"}],
                },
            },
        },
    }
    return json.dumps(deployment)


def test_deployment_ready_on_kwok_node(kube_cluster_with_nodes: KubeCluster):
    cluster = kube_cluster_with_nodes
    namespace = unique_namespace(cluster, "deploy")
    cluster.kubectl("apply", "-f", "-", input=deployment_manifest(namespace, replicas=2))

    cluster.kubectl(
        "rollout", "status", "deployment/smoke", "-n", namespace, f"--timeout={ROLLOUT_TIMEOUT}"
    )
    deployment = cluster.kubectl_json("get", "deployment", "smoke", "-n", namespace)
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "app=smoke")["items"]

    assert deployment["status"].get("readyReplicas") == 2
    assert len(pods) == 2
    assert {pod["spec"].get("nodeName") for pod in pods} == {KWOK_NODE_NAME}
    assert {pod["status"].get("phase") for pod in pods} == {"Running"}


def test_kwok_node_is_ready(kube_cluster_with_nodes: KubeCluster):
    node = kube_cluster_with_nodes.kubectl_json("get", "node", KWOK_NODE_NAME)
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}

    assert conditions.get("Ready") == "True"
    assert addresses.get("InternalIP") == "127.0.0.1"

"""The DNS override: the operator edits CoreDNS's ConfigMaps, and real CoreDNS serves them.

The module starts etcd and kube-apiserver of its own: the override belongs
to the oldest IMtegrityProxy of the cluster, and the session's shared cluster
contains other modules' proxies. kube-system gets a ``coredns`` ConfigMap with a
Corefile shaped like the one k3s ships (it imports ``*.server`` files from
``/etc/coredns/custom``) and a ``coredns`` Deployment object that mounts the
``coredns-custom`` ConfigMap there. No controller runs, so no pod starts;
only the objects matter.

To prove the answers, each test reads the ConfigMaps back with kubectl and
loads them into a real CoreDNS on loopback (the ``coredns`` fixture), after
``local_config`` replaces what only works inside a cluster:

- the ``kubernetes`` and ``hosts /etc/coredns/NodeHosts`` blocks and the
  ``health``, ``ready``, ``prometheus`` and ``loop`` lines are dropped;
- ``forward . /etc/resolv.conf`` forwards to the fixture's upstream CoreDNS,
  which serves ``example.test.``;
- ``/etc/coredns/custom`` becomes the fixture's import directory;
- port 53 becomes the fixture's port, and each server block gets
  ``bind 127.0.0.1``.

The operator's server blocks pass through unchanged apart from the port and
the bind line. The Service ClusterIP only appears in DNS answers; no test
connects to it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import dns.rcode
import pytest
from imtegrity_operator.dns.corefile import BEGIN_MARKER, split_section

from tests.e2e.test_operator import (
    CRD_NAME,
    CRD_PATH,
    condition,
    get_object,
    proxy_manifest,
    start_operator,
    wait_for,
)
from tests.fixtures.coredns import UPSTREAM_RECORDS, CoreDNS, start_coredns
from tests.fixtures.kube import KubeCluster, start_kube_cluster
from tests.fixtures.peers import close_peers

pytestmark = pytest.mark.e2e

K3S_COREFILE = """\
.:53 {
    errors
    health
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    hosts /etc/coredns/NodeHosts {
      ttl 60
      reload 15s
      fallthrough
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
    import /etc/coredns/custom/*.override
}
import /etc/coredns/custom/*.server
"""
LOGIN = "login.oscar.aol.com"
MESSAGING = "login.messaging.aol.com"
OTHER_NAME = "www.example.test"
ADMIN_NOTE = "# DNS forwarders reviewed by the cluster admin\n"

DROPPED_BLOCKS = ("kubernetes", "hosts")
DROPPED_LINES = ("health", "ready", "loop")


def _code(line: str) -> str:
    """Return a Corefile line without quoted text and comments, for counting braces."""
    return re.sub(r'"[^"]*"', "", line).split("#", 1)[0]


def local_config(text: str) -> str:
    """Turn a cluster's Corefile (or a ``*.server`` file) into one CoreDNS can run here."""
    out: list[str] = []
    depth = 0
    skip_from: int | None = None
    for line in text.splitlines(keepends=True):
        code = _code(line)
        change = code.count("{") - code.count("}")
        words = code.split()
        if skip_from is not None:
            depth += change
            if depth <= skip_from:
                skip_from = None
            continue
        if depth == 1 and words and words[0] in DROPPED_BLOCKS and "{" in code:
            skip_from = depth
            depth += change
            continue
        if depth == 1 and words and (words[0] in DROPPED_LINES or words[0] == "prometheus"):
            continue
        line = line.replace("/etc/resolv.conf", "{$UPSTREAM}")
        line = line.replace("/etc/coredns/custom", "{$IMPORT_DIR}")
        if depth == 0 and "{" in code:
            out.append(re.sub(r":53(\s*\{)", r":{$PORT}\1", line))
            out.append("    bind 127.0.0.1\n")
        else:
            out.append(line)
        depth += change
    return "".join(out)


def corefile_text(cluster: KubeCluster) -> str:
    return get_object(cluster, "configmap", "coredns", "kube-system")["data"]["Corefile"]


def wait_corefile(cluster: KubeCluster, predicate, what: str) -> str:
    """Wait until the Corefile satisfies ``predicate``; return it."""

    def probe() -> str | None:
        text = corefile_text(cluster)
        return text if predicate(text) else None

    return wait_for(probe, what)


def custom_data(cluster: KubeCluster) -> dict[str, str]:
    found = get_object(cluster, "configmap", "coredns-custom", "kube-system")
    return (found or {}).get("data") or {}


def start_cluster_coredns(cluster: KubeCluster, coredns) -> CoreDNS:
    """Start a real CoreDNS from the cluster's ConfigMaps, as read back with kubectl."""
    imports = {
        key: local_config(value)
        for key, value in custom_data(cluster).items()
        if key.endswith(".server")
    }
    return coredns(local_config(corefile_text(cluster)), imports, hosts={})


def service_ip(cluster: KubeCluster, namespace: str = "imtegrity") -> str:
    return get_object(cluster, "service", "aim", namespace)["spec"]["clusterIP"]


def dns_condition(cluster: KubeCluster, namespace: str = "imtegrity") -> dict:
    return condition(
        get_object(cluster, "imtegrityproxy", "aim", namespace) or {}, "DNSOverridden"
    )


def wait_dns_condition(cluster: KubeCluster, predicate, what: str, namespace="imtegrity") -> dict:
    def probe() -> dict | None:
        found = dns_condition(cluster, namespace)
        return found if found and predicate(found) else None

    return wait_for(probe, what)


def merge_patch(cluster: KubeCluster, kind: str, name: str, namespace: str, patch: dict) -> None:
    cluster.kubectl("patch", kind, name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))


def resolution(server: CoreDNS, name: str) -> tuple[str, list[str]]:
    """Return (rcode, A records) for ``name``, whatever the rcode."""
    response = server.query(name, "A")
    answers = [rd.to_text() for rrset in response.answer for rd in rrset]
    return dns.rcode.to_text(response.rcode()), answers


# Fixtures.


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    own = start_kube_cluster(tmp_path_factory.mktemp("dns-kube"))
    try:
        own.kubectl("apply", "-f", str(CRD_PATH))
        own.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
        yield own
    finally:
        own.close()


def coredns_objects() -> list[dict]:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "coredns", "namespace": "kube-system"},
        "data": {"Corefile": K3S_COREFILE},
    }
    volumes = [
        {"name": "config-volume", "configMap": {"name": "coredns"}},
        {
            "name": "custom-config-volume",
            "configMap": {"name": "coredns-custom", "optional": True},
        },
    ]
    mounts = [
        {"name": "config-volume", "mountPath": "/etc/coredns"},
        {"name": "custom-config-volume", "mountPath": "/etc/coredns/custom"},
    ]
    labels = {"k8s-app": "kube-dns"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "coredns",
                            "image": "registry.invalid/coredns:1",
                            "args": ["-conf", "/etc/coredns/Corefile"],
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }
    return [config_map, deployment]


@pytest.fixture(scope="module")
def before(
    cluster: KubeCluster,
    coredns_upstream: CoreDNS,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, list[str]]:
    """Return how CoreDNS resolved the login name before the operator ran."""
    manifest = {"apiVersion": "v1", "kind": "List", "items": coredns_objects()}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    server = start_coredns(
        tmp_path_factory.mktemp("coredns-before"),
        local_config(corefile_text(cluster)),
        hosts={},
        upstream=coredns_upstream.address,
        name="coredns-before",
    )
    try:
        return resolution(server, LOGIN)
    finally:
        close_peers([server.process])


@pytest.fixture(scope="module")
def operator(cluster: KubeCluster, before, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    process = start_operator(cluster, tmp_path_factory.mktemp("dns-operator"), [])
    try:
        cluster.kubectl("create", "namespace", "imtegrity")
        cluster.kubectl("apply", "-f", "-", input=proxy_manifest("imtegrity", "aim", {}))
        yield process
    finally:
        crashed = process.exited_unexpectedly
        process.close()
        assert not crashed, f"the operator exited by itself\n{process.describe_log()}"


# coredns-custom, chosen for the k3s-shaped Corefile.


def test_custom_mode_chosen(cluster, operator):
    found = wait_dns_condition(cluster, lambda c: c["status"] == "True", "DNSOverridden=True")

    assert found["reason"] == "Overridden"
    assert "ConfigMap kube-system/coredns-custom" in found["message"]
    assert f"{LOGIN} -> {service_ip(cluster)}" in found["message"]


def test_corefile_left_alone_in_custom_mode(cluster, operator):
    wait_for(lambda: "imtegrity.server" in custom_data(cluster), "key imtegrity.server")

    assert corefile_text(cluster) == K3S_COREFILE


def test_coredns_answers_service_ip(cluster, operator, coredns):
    wait_for(lambda: "imtegrity.server" in custom_data(cluster), "key imtegrity.server")
    server = start_cluster_coredns(cluster, coredns)

    assert server.resolve(LOGIN) == [service_ip(cluster)]
    assert server.resolve(MESSAGING) == [service_ip(cluster)]


def test_coredns_aaaa_empty(cluster, operator, coredns):
    server = start_cluster_coredns(cluster, coredns)
    response = server.query(LOGIN, "AAAA")

    assert dns.rcode.to_text(response.rcode()) == "NOERROR"
    assert response.answer == []


def test_other_names_still_resolve(cluster, operator, coredns):
    server = start_cluster_coredns(cluster, coredns)

    assert server.resolve(OTHER_NAME) == [UPSTREAM_RECORDS[f"{OTHER_NAME}."]]
    assert server.rcode(f"x.{LOGIN}") == "NXDOMAIN"


def test_answer_follows_new_service_ip(cluster, operator, coredns):
    old = service_ip(cluster)
    cluster.kubectl("delete", "service", "aim", "-n", "imtegrity")

    new = wait_for(
        lambda: (
            (get_object(cluster, "service", "aim", "imtegrity") or {})
            .get("spec", {})
            .get("clusterIP")
        ),
        "the Service aim again",
    )
    wait_for(
        lambda: new in custom_data(cluster).get("imtegrity.server", ""),
        f"{new} in key imtegrity.server",
    )
    server = start_cluster_coredns(cluster, coredns)

    assert new != old
    assert server.resolve(LOGIN) == [new]


# The Corefile section.


def test_corefile_mode_appends_section(cluster, operator):
    merge_patch(cluster, "imp", "aim", "imtegrity", {"spec": {"dns": {"mode": "corefile"}}})

    text = wait_corefile(cluster, lambda t: BEGIN_MARKER in t, "the section in the Corefile")
    wait_for(lambda: get_object(cluster, "configmap", "coredns-custom", "kube-system") is None,
             "ConfigMap coredns-custom deleted")  # fmt: skip

    assert text.startswith(K3S_COREFILE)
    assert split_section(text)[0] == K3S_COREFILE
    assert text.count(f"{LOGIN}:53 {{") == 1


def test_corefile_section_answers(cluster, operator, coredns):
    server = start_cluster_coredns(cluster, coredns)

    assert server.resolve(LOGIN) == [service_ip(cluster)]
    assert server.resolve(OTHER_NAME) == [UPSTREAM_RECORDS[f"{OTHER_NAME}."]]
    assert server.query(LOGIN, "AAAA").answer == []


def test_corefile_mode_condition(cluster, operator):
    found = wait_dns_condition(
        cluster, lambda c: "marked section of the Corefile" in c["message"], "corefile mode"
    )

    assert found["status"] == "True"


def test_user_edit_outside_section_kept(cluster, operator):
    edited = corefile_text(cluster) + ADMIN_NOTE
    merge_patch(cluster, "configmap", "coredns", "kube-system", {"data": {"Corefile": edited}})
    # A spec change starts a pass at once; the section moves back to the end.
    merge_patch(cluster, "imp", "aim", "imtegrity", {"spec": {"dns": {"hostnames": [LOGIN]}}})

    text = wait_corefile(cluster, lambda t: MESSAGING not in t, f"a section without {MESSAGING}")

    assert split_section(text)[0] == K3S_COREFILE + ADMIN_NOTE
    assert text.endswith("# END imtegrity.io/dns-override\n")


# Conflicts and what defeats the override.


def test_younger_proxy_conflict(cluster, operator):
    namespace = f"second-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("apply", "-f", "-", input=proxy_manifest(namespace, "aim", {}))

    found = wait_dns_condition(
        cluster, lambda c: c["reason"] == "HostnameConflict", "a conflict", namespace=namespace
    )

    assert found["status"] == "False"
    assert f"{LOGIN} is answered for the older IMtegrityProxy imtegrity/aim" in found["message"]
    # The older resource dropped login.messaging.aol.com, so the younger one takes it.
    assert f"{MESSAGING} -> {service_ip(cluster, namespace)}" in found["message"]
    assert corefile_text(cluster).count(f"{LOGIN}:53 {{") == 1
    cluster.kubectl("delete", "imp", "aim", "-n", namespace, "--timeout=60s")


def test_node_local_dns_reported(cluster, operator):
    node_local = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "node-local-dns", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "node-local-dns"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "node-local-dns"}},
                "spec": {"containers": [{"name": "node-cache", "image": "registry.invalid/nc:1"}]},
            },
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(node_local))
    try:
        found = wait_dns_condition(
            cluster, lambda c: c["reason"] == "NodeLocalDNSCache", "NodeLocalDNSCache reported"
        )
    finally:
        cluster.kubectl("delete", "daemonset", "node-local-dns", "-n", "kube-system")

    assert found["status"] == "False"
    assert "DaemonSet kube-system/node-local-dns" in found["message"]


def test_addon_manager_reported(cluster, operator):
    label = "addonmanager.kubernetes.io/mode"
    cluster.kubectl("label", "configmap", "coredns", "-n", "kube-system", f"{label}=Reconcile")
    try:
        found = wait_dns_condition(
            cluster, lambda c: c["reason"] == "ManagedCoreDNS", "ManagedCoreDNS reported"
        )
    finally:
        cluster.kubectl("label", "configmap", "coredns", "-n", "kube-system", f"{label}-")

    assert found["status"] == "False"
    assert "add-on manager" in found["message"]


def test_recovers_when_defeats_gone(cluster, operator):
    found = wait_dns_condition(cluster, lambda c: c["status"] == "True", "DNSOverridden=True")

    assert found["reason"] == "Overridden"


# Deletion.


def test_delete_restores_corefile(cluster, operator):
    cluster.kubectl("delete", "imp", "aim", "-n", "imtegrity", "--timeout=60s")

    assert corefile_text(cluster) == K3S_COREFILE + ADMIN_NOTE
    assert get_object(cluster, "configmap", "coredns-custom", "kube-system") is None


def test_resolution_as_before(cluster, operator, before, coredns):
    server = start_cluster_coredns(cluster, coredns)

    assert resolution(server, LOGIN) == before
    assert server.resolve(OTHER_NAME) == [UPSTREAM_RECORDS[f"{OTHER_NAME}."]]


def test_local_config_rewrites_cluster_lines():
    local = local_config(K3S_COREFILE)

    assert "kubernetes" not in local
    assert "NodeHosts" not in local
    assert ".:{$PORT} {\n    bind 127.0.0.1\n" in local
    assert "forward . {$UPSTREAM}" in local
    assert "import {$IMPORT_DIR}/*.server" in local

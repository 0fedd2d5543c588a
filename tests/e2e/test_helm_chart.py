"""The Helm chart against a real kube-apiserver: validation, RBAC and a running operator.

Offline validation uses the API server itself: ``helm template`` output goes
through ``kubectl apply --server-side --dry-run=server --validate=strict``, so
every object is checked against the server's own OpenAPI schemas, the CRD's
schema and CEL rules, and admission, without being stored.

The installed chart's ServiceAccount is then checked with ``kubectl auth
can-i``, and the operator runs as a subprocess with that ServiceAccount's
token, so a missing RBAC rule shows up as a reconcile that never finishes.
kube_cluster runs no controllers and no nodes: no pod starts, and no test
sends traffic anywhere but to the API server on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.kube import KubeCluster
from tests.fixtures.peers import PeerProcess, free_port, http_probe, minimal_env
from tests.unit.test_chart import CHART_DIR, EXAMPLE_PATH, run_helm

pytestmark = pytest.mark.e2e

CRD_NAME = "imtegrityproxies.imtegrity.io"
INSTALL_DOC = Path(__file__).resolve().parents[2] / "docs" / "install.md"
# kube_cluster runs no kubelet, so this image is never pulled.
OPERATOR_IMAGE = "registry.invalid/imtegrity-operator"
# Upper bound for the operator to create a proxy's objects on a loaded 2-core
# machine; a pass usually takes a few seconds.
WAIT_SECONDS = 90.0
CHILDREN = [
    ("configmap", "aim-config"),
    ("deployment", "aim"),
    ("service", "aim"),
    ("persistentvolumeclaim", "aim-archive"),
    ("poddisruptionbudget", "aim"),
]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Release:
    """An installed release of the chart."""

    name: str
    namespace: str
    home: Path

    @property
    def service_account(self) -> str:
        return f"{self.name}-imtegrity-operator"

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def helm_ok(home: Path, *args: str) -> str:
    result = run_helm(home, *args)
    assert result.returncode == 0, f"helm {' '.join(args)} failed: {result.stderr}"
    return result.stdout


def install(cluster: KubeCluster, home: Path, name: str, *settings: str) -> Release:
    namespace = unique("imtegrity-system")
    args = [
        "install", name, str(CHART_DIR), f"--kubeconfig={cluster.kubeconfig}",
        "--namespace", namespace, "--create-namespace",
        "--set", f"image.repository={OPERATOR_IMAGE}",
    ]  # fmt: skip
    for setting in settings:
        args += ["--set", setting]
    helm_ok(home, *args)
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    return Release(name, namespace, home)


def uninstall(cluster: KubeCluster, release: Release) -> None:
    kubeconfig = f"--kubeconfig={cluster.kubeconfig}"
    helm_ok(release.home, "uninstall", release.name, kubeconfig, "--namespace", release.namespace)
    cluster.kubectl("delete", "namespace", release.namespace, "--wait=false")


@pytest.fixture(scope="module")
def helm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm-home")


@pytest.fixture(scope="module")
def release(kube_cluster: KubeCluster, helm_home: Path) -> Iterator[Release]:
    """The chart installed with its defaults: every namespace is watched."""
    installed = install(kube_cluster, helm_home, unique("rel"))
    try:
        yield installed
    finally:
        uninstall(kube_cluster, installed)


@pytest.fixture(scope="module")
def team_namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    """A namespace for proxies; it exists before any release refers to it."""
    name = unique("team")
    kube_cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kube_cluster.kubectl("delete", "namespace", name, "--wait=false")


# ---- Server-side validation of the rendered chart -----------------------------------


def example_spec() -> dict[str, Any]:
    documents = yaml.safe_load_all(EXAMPLE_PATH.read_text())
    (proxy,) = [doc for doc in documents if doc["kind"] == "IMtegrityProxy"]
    return proxy["spec"]


def rendered(home: Path, namespace: str, *settings: str, values: dict | None = None) -> str:
    args = ["template", "dry-run", str(CHART_DIR), "--namespace", namespace, "--include-crds"]
    for setting in settings:
        args += ["--set", setting]
    for key, value in (values or {}).items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return helm_ok(home, *args)


def server_dry_run(cluster: KubeCluster, manifests: str):
    return cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "--validate=strict",
        "--field-manager=imtegrity-chart-test", "-f", "-",
        input=manifests, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "settings",
    [(), ("logFormat=json", "debug=true", "rbac.dnsNamespace=default")],
    ids=["defaults", "json-debug"],
)
def test_rendered_chart_passes_server_dry_run(
    kube_cluster: KubeCluster, release: Release, settings: tuple[str, ...]
):
    values = {"proxy": {"create": True, "spec": example_spec()}}
    manifests = rendered(release.home, release.namespace, *settings, values=values)

    result = server_dry_run(kube_cluster, manifests)

    assert result.returncode == 0, result.stderr
    assert "imtegrityproxy.imtegrity.io/aim serverside-applied (server dry run)" in result.stdout


def test_watched_namespaces_pass_server_dry_run(
    kube_cluster: KubeCluster, release: Release, team_namespace: str
):
    settings = (f"watchNamespaces={{{team_namespace}}}", "proxy.create=true")
    manifests = rendered(
        release.home, release.namespace, *settings, "proxy.namespace=" + team_namespace
    )

    result = server_dry_run(kube_cluster, manifests)

    assert result.returncode == 0, result.stderr
    assert "rolebinding.rbac.authorization.k8s.io/dry-run-imtegrity-operator" in result.stdout


def test_server_dry_run_rejects_unknown_field(kube_cluster: KubeCluster, release: Release):
    manifests = rendered(release.home, release.namespace)
    broken = manifests.replace("  strategy:\n", "  strategie:\n", 1)
    assert broken != manifests

    result = server_dry_run(kube_cluster, broken)

    assert result.returncode != 0
    assert ".spec.strategie: field not declared in schema" in result.stderr


def test_server_dry_run_rejects_invalid_proxy_spec(kube_cluster: KubeCluster, release: Release):
    # The values schema has no CEL; this rule (healthPort not in ports) is the CRD's.
    spec = {"ports": [5190, 8080], "healthPort": 8080}
    manifests = rendered(
        release.home, release.namespace, values={"proxy": {"create": True, "spec": spec}}
    )

    result = server_dry_run(kube_cluster, manifests)

    assert result.returncode != 0
    assert "healthPort must differ from every port in ports" in result.stderr


def yaml_examples(markdown: str) -> list[str]:
    """Return the body of every ```yaml block of a Markdown text."""
    return re.findall(r"^```yaml\n(.*?)^```$", markdown, flags=re.MULTILINE | re.DOTALL)


def test_install_doc_examples_pass_server_dry_run(
    kube_cluster: KubeCluster, release: Release, team_namespace: str
):
    examples = yaml_examples(INSTALL_DOC.read_text())
    assert examples, "docs/install.md has no yaml examples"

    for example in examples:
        result = server_dry_run(kube_cluster, example.replace("TEAM", team_namespace))

        assert result.returncode == 0, f"{result.stderr}\n{example}"


# ---- The installed release ----------------------------------------------------------


def test_release_deployed(kube_cluster: KubeCluster, release: Release):
    status = json.loads(
        helm_ok(release.home, "status", release.name, f"--kubeconfig={kube_cluster.kubeconfig}",
                "--namespace", release.namespace, "-o", "json")
    )  # fmt: skip

    assert status["info"]["status"] == "deployed"


def test_installed_operator_deployment(kube_cluster: KubeCluster, release: Release):
    deployment = kube_cluster.kubectl_json(
        "get", "deployment", release.service_account, "-n", release.namespace
    )
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    assert pod["serviceAccountName"] == release.service_account
    assert container["image"] == f"{OPERATOR_IMAGE}:0.1.0"
    assert "--all-namespaces" in container["args"]


def test_installed_crd_matches_chart(kube_cluster: KubeCluster, release: Release):
    crd = kube_cluster.kubectl_json("get", "crd", CRD_NAME)
    chart_crd = yaml.safe_load((CHART_DIR / "crds" / f"{CRD_NAME}.yaml").read_text())

    assert crd["spec"]["versions"][0]["schema"] == chart_crd["spec"]["versions"][0]["schema"]


# ---- RBAC, seen through kubectl auth can-i -------------------------------------------


def groups_of(release: Release) -> list[str]:
    """Return the groups that the API server gives the ServiceAccount's tokens."""
    return [
        "system:serviceaccounts",
        f"system:serviceaccounts:{release.namespace}",
        "system:authenticated",
    ]


# API groups that the test API server does not serve. kubectl auth can-i sends
# an unknown type's whole name as the resource with an empty group, so these
# checks post the SubjectAccessReview that can-i would have sent.
UNSERVED_GROUPS = ("policy.networking.k8s.io", "cilium.io", "projectcalico.org")


def subject_access_review(cluster: KubeCluster, release: Release, *args: str) -> str:
    """Return yes or no for a can-i request (VERB RESOURCE[.GROUP][/NAME] [flags]) via a review."""
    verb, target, *flags = args
    resource_and_group, _, name = target.partition("/")
    resource, _, group = resource_and_group.partition(".")
    attributes = {"verb": verb, "group": group, "resource": resource, "name": name}
    for index, flag in enumerate(flags):
        if flag == "-n":
            attributes["namespace"] = flags[index + 1]
        elif flag.startswith("--subresource="):
            attributes["subresource"] = flag.partition("=")[2]
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": release.user,
            "groups": groups_of(release),
            "resourceAttributes": attributes,
        },
    }
    result = cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review))
    return "yes" if json.loads(result.stdout)["status"].get("allowed") else "no"


def can_i(cluster: KubeCluster, release: Release, *args: str) -> str:
    """Return yes or no for a request of the operator's ServiceAccount, as kubectl auth can-i."""
    if args[1].split("/")[0].endswith(UNSERVED_GROUPS):
        return subject_access_review(cluster, release, *args)
    result = cluster.kubectl(
        "auth", "can-i", *args, f"--as={release.user}",
        *(f"--as-group={group}" for group in groups_of(release)),
        check=False,
    )  # fmt: skip
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {' '.join(args)}: {result.stderr}"
    return answer


# Requests of the operator today (kopf and the reconciler), and of the planned
# egress and DNS reconcilers; "{ns}" is a namespace other than the release's.
ALLOWED = [
    ("get", "imtegrityproxies.imtegrity.io", "-n", "{ns}"),
    ("list", "imtegrityproxies.imtegrity.io", "--all-namespaces"),
    ("watch", "imtegrityproxies.imtegrity.io", "--all-namespaces"),
    ("patch", "imtegrityproxies.imtegrity.io", "-n", "{ns}"),
    ("patch", "imtegrityproxies.imtegrity.io", "--subresource=status", "-n", "{ns}"),
    ("update", "imtegrityproxies.imtegrity.io", "--subresource=finalizers", "-n", "{ns}"),
    ("create", "events", "-n", "{ns}"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("list", "namespaces"),
    ("watch", "namespaces"),
    *[
        (verb, resource, "-n", "{ns}")
        for resource in (
            "configmaps",
            "services",
            "persistentvolumeclaims",
            "deployments.apps",
            "poddisruptionbudgets.policy",
        )
        for verb in ("get", "create", "patch")
    ],
    *[
        (verb, resource, "--all-namespaces")
        for resource in (
            "configmaps",
            "services",
            "persistentvolumeclaims",
            "deployments.apps",
            "poddisruptionbudgets.policy",
        )
        for verb in ("list", "watch")
    ],
    # Egress policies.
    ("patch", "networkpolicies.networking.k8s.io", "-n", "{ns}"),
    ("delete", "networkpolicies.networking.k8s.io", "-n", "{ns}"),
    ("list", "networkpolicies.networking.k8s.io", "--all-namespaces"),
    ("patch", "clusternetworkpolicies.policy.networking.k8s.io"),
    ("create", "clusternetworkpolicies.policy.networking.k8s.io"),
    ("delete", "clusternetworkpolicies.policy.networking.k8s.io"),
    ("patch", "adminnetworkpolicies.policy.networking.k8s.io"),
    ("patch", "ciliumclusterwidenetworkpolicies.cilium.io"),
    ("patch", "globalnetworkpolicies.crd.projectcalico.org"),
    ("create", "tiers.crd.projectcalico.org"),
    ("list", "daemonsets.apps", "--all-namespaces"),
    ("list", "pods", "--all-namespaces"),
    ("watch", "pods", "--all-namespaces"),
    # CoreDNS override.
    ("get", "configmaps/coredns", "-n", "kube-system"),
    ("patch", "configmaps/coredns", "-n", "kube-system"),
    ("patch", "configmaps/coredns-custom", "-n", "kube-system"),
    ("create", "configmaps/coredns-custom", "-n", "kube-system"),
    ("delete", "configmaps/coredns-custom", "-n", "kube-system"),
    ("get", "deployments.apps/coredns", "-n", "kube-system"),
]

DENIED = [
    ("get", "secrets", "-n", "{ns}"),
    ("get", "secrets", "-n", "kube-system"),
    ("list", "secrets", "--all-namespaces"),
    ("watch", "secrets", "--all-namespaces"),
    ("get", "secrets", "-n", "{release_ns}"),
    ("delete", "namespaces"),
    ("create", "namespaces"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io", "-n", "{ns}"),
    ("bind", "clusterroles.rbac.authorization.k8s.io"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("impersonate", "users"),
    ("impersonate", "serviceaccounts", "-n", "{ns}"),
    ("create", "pods", "--subresource=exec", "-n", "{ns}"),
    ("get", "pods", "--subresource=log", "-n", "{ns}"),
    ("create", "pods", "-n", "{ns}"),
    ("get", "pods", "-n", "{ns}"),
    ("create", "serviceaccounts", "--subresource=token", "-n", "{ns}"),
    ("delete", "deployments.apps", "-n", "{ns}"),
    ("delete", "configmaps", "-n", "{ns}"),
    ("update", "configmaps", "-n", "{ns}"),
    ("delete", "imtegrityproxies.imtegrity.io", "-n", "{ns}"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("get", "nodes"),
    ("get", "nodes", "--subresource=proxy"),
    ("create", "daemonsets.apps", "-n", "{ns}"),
    ("create", "imtegrityproxies.imtegrity.io", "-n", "{ns}"),
    ("patch", "daemonsets.apps", "-n", "kube-system"),
    ("update", "globalnetworkpolicies.crd.projectcalico.org"),
    ("patch", "globalnetworkpolicies.projectcalico.org"),
    ("patch", "ciliumnetworkpolicies.cilium.io", "-n", "{ns}"),
    ("delete", "configmaps/coredns", "-n", "kube-system"),
]


def fill(args: tuple[str, ...], release: Release, namespace: str) -> list[str]:
    return [arg.format(ns=namespace, release_ns=release.namespace) for arg in args]


@pytest.mark.parametrize("request_args", ALLOWED, ids=" ".join)
def test_operator_may(
    kube_cluster: KubeCluster, release: Release, team_namespace: str, request_args
):
    answer = can_i(kube_cluster, release, *fill(request_args, release, team_namespace))

    assert answer == "yes"


@pytest.mark.parametrize("request_args", DENIED, ids=" ".join)
def test_operator_may_not(
    kube_cluster: KubeCluster, release: Release, team_namespace: str, request_args
):
    answer = can_i(kube_cluster, release, *fill(request_args, release, team_namespace))

    assert answer == "no"


@pytest.mark.parametrize(
    "request_args",
    [("patch", "deployments.apps", "-n", "{ns}"), ("get", "secrets", "-n", "{ns}")],
    ids=" ".join,
)
def test_access_review_agrees_with_can_i(
    kube_cluster: KubeCluster, release: Release, team_namespace: str, request_args
):
    args = fill(request_args, release, team_namespace)

    assert subject_access_review(kube_cluster, release, *args) == can_i(
        kube_cluster, release, *args
    )


@pytest.fixture(scope="module")
def namespaced_release(
    kube_cluster: KubeCluster, helm_home: Path, team_namespace: str
) -> Iterator[Release]:
    """A release that watches team_namespace only, without egress and DNS rights."""
    installed = install(
        kube_cluster, helm_home, unique("ns"),
        f"watchNamespaces={{{team_namespace}}}",
        "rbac.egressPolicies=false",
        "rbac.dnsOverride=false",
    )  # fmt: skip
    try:
        yield installed
    finally:
        uninstall(kube_cluster, installed)


def test_namespaced_release_rights_end_at_namespace(
    kube_cluster: KubeCluster, namespaced_release: Release, team_namespace: str
):
    release = namespaced_release

    assert can_i(kube_cluster, release, "patch", "deployments.apps", "-n", team_namespace) == "yes"
    assert can_i(kube_cluster, release, "patch", "deployments.apps", "-n", "default") == "no"
    assert can_i(kube_cluster, release, "list", "configmaps", "--all-namespaces") == "no"
    assert can_i(kube_cluster, release, "get", "configmaps/coredns", "-n", "kube-system") == "no"
    assert (
        can_i(
            kube_cluster,
            release,
            "patch",
            "networkpolicies.networking.k8s.io",
            "-n",
            team_namespace,
        )
        == "no"
    )
    assert can_i(kube_cluster, release, "list", "namespaces") == "yes"


# ---- The operator, running with the ServiceAccount's token ----------------------------


def wait_for(probe: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last value: {last!r}")


def get_object(cluster: KubeCluster, kind: str, name: str, namespace: str) -> dict | None:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
        return None
    return json.loads(result.stdout)


def example_in_namespace(namespace: str) -> str:
    """Return examples/proxy.yaml with its namespace renamed, as a YAML stream."""
    documents = list(yaml.safe_load_all(EXAMPLE_PATH.read_text()))
    for document in documents:
        if document["kind"] == "Namespace":
            document["metadata"]["name"] = namespace
        else:
            document["metadata"]["namespace"] = namespace
    return yaml.safe_dump_all(documents, sort_keys=False)


@dataclass
class RunningOperator:
    process: PeerProcess
    namespace: str


@pytest.fixture(scope="module")
def operator(
    kube_cluster: KubeCluster, release: Release, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningOperator]:
    """``imtegrity-operator run`` with the release's ServiceAccount token and JSON logs."""
    namespace = unique("imtegrity")
    kubeconfig = kube_cluster.service_account_kubeconfig(
        release.namespace, release.service_account
    )
    port = free_port()
    argv = [
        Path(sys.executable).parent / "imtegrity-operator", "run",
        f"--kubeconfig={kubeconfig}",
        f"--namespace={namespace}",
        f"--liveness=127.0.0.1:{port}",
        "--default-proxy-image=registry.invalid/imtegrity-proxy:e2e",
        "--log-format=json",
    ]  # fmt: skip
    process = PeerProcess(
        "imtegrity-operator-sa",
        argv,
        workdir=tmp_path_factory.mktemp("operator-sa"),
        ready=http_probe(f"http://127.0.0.1:{port}/healthz", ok=lambda status: status == 200),
        env=minimal_env(),
        inherit_env=False,
        ready_timeout=60.0,
    )
    process.start()
    try:
        kube_cluster.kubectl("apply", "-f", "-", input=example_in_namespace(namespace))
        yield RunningOperator(process, namespace)
        # Delete the proxy while the operator runs, so it removes its finalizer.
        kube_cluster.kubectl("delete", "imtegrityproxy", "aim", "-n", namespace, "--timeout=60s")
    finally:
        crashed = process.exited_unexpectedly
        process.close()
        kube_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        assert not crashed, f"the operator exited by itself\n{process.describe_log()}"


@pytest.mark.parametrize(("kind", "name"), CHILDREN)
def test_operator_creates_child(
    kube_cluster: KubeCluster, operator: RunningOperator, kind: str, name: str
):
    found = wait_for(
        lambda: get_object(kube_cluster, kind, name, operator.namespace),
        f"{kind} {operator.namespace}/{name}",
    )

    assert found["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "imtegrity-operator"


def test_operator_writes_status(kube_cluster: KubeCluster, operator: RunningOperator):
    def observed() -> dict | None:
        proxy = get_object(kube_cluster, "imtegrityproxy", "aim", operator.namespace) or {}
        status = proxy.get("status") or {}
        return (
            proxy if status.get("observedGeneration") == proxy["metadata"]["generation"] else None
        )

    proxy = wait_for(observed, "status.observedGeneration of the proxy")

    assert proxy["status"]["conditions"]


def test_operator_posts_events(kube_cluster: KubeCluster, operator: RunningOperator):
    def created_events() -> list[str]:
        events = kube_cluster.kubectl_json("get", "events", "-n", operator.namespace)["items"]
        return [event["reason"] for event in events if event["reason"] == "Created"]

    reasons = wait_for(created_events, "Created events")

    assert len(reasons) >= 1


def test_operator_log_has_no_permission_error(
    kube_cluster: KubeCluster, operator: RunningOperator
):
    # Wait for the last child, so the log covers a whole reconcile pass.
    wait_for(
        lambda: get_object(kube_cluster, "deployment", "aim", operator.namespace), "deployment"
    )
    log = operator.process.log_text()

    assert "Forbidden" not in log
    assert "Not enough permissions" not in log
    assert "forbidden" not in log


def test_operator_logs_json_lines(kube_cluster: KubeCluster, operator: RunningOperator):
    wait_for(
        lambda: get_object(kube_cluster, "deployment", "aim", operator.namespace), "deployment"
    )
    # PeerProcess writes a "=== start #N: ARGV" line before the process's own output.
    lines = [
        line
        for line in operator.process.log_text().splitlines()
        if line.strip() and not line.startswith("=== start #")
    ]
    not_json = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)

    assert lines
    assert not_json == []

"""The Helm chart in charts/imtegrity, rendered with the real helm binary.

These tests need no cluster: ``helm lint`` and ``helm template`` run offline.
tests/e2e/test_helm_chart.py validates the same output against a real API
server and installs the chart.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from imtegrity_operator.cli import _parser as operator_parser

from tests.fixtures.peers import minimal_env, peer_binary

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "imtegrity"
CRD_PATH = REPO_ROOT / "crds" / "imtegrityproxies.imtegrity.io.yaml"
EXAMPLE_PATH = REPO_ROOT / "examples" / "proxy.yaml"
HELM_TIMEOUT_SECONDS = 120
RELEASE = "compliance"
NAMESPACE = "imtegrity-system"
OPERATOR_NAME = f"{RELEASE}-imtegrity-operator"

Helm = Callable[..., subprocess.CompletedProcess[str]]


def run_helm(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run helm with its cache, config and data directories under ``home``."""
    env = minimal_env(
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
    )
    return subprocess.run(
        [str(peer_binary("helm", "helm")), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=HELM_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.fixture
def helm(tmp_path: Path) -> Helm:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_helm(tmp_path / "helm-home", *args)

    return run


def template_args(*settings: str, values: dict[str, Any] | None = None) -> list[str]:
    """Return ``helm template`` arguments for the chart with ``--set`` settings and values."""
    args = ["template", RELEASE, str(CHART_DIR), "--namespace", NAMESPACE]
    for setting in settings:
        args += ["--set", setting]
    if values is not None:
        args += ["--set-json", *(f"{key}={json.dumps(value)}" for key, value in values.items())]
    return args


def render(helm: Helm, *settings: str, values: dict[str, Any] | None = None) -> list[dict]:
    """Render the chart and return its objects; fail with helm's error output."""
    result = helm(*template_args(*settings, values=values))
    assert result.returncode == 0, f"helm template failed: {result.stderr}"
    return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


def find(objects: list[dict], kind: str, name: str, namespace: str | None = None) -> dict:
    for obj in objects:
        metadata = obj["metadata"]
        in_namespace = namespace is None or metadata.get("namespace") == namespace
        if obj["kind"] == kind and metadata["name"] == name and in_namespace:
            return obj
    pytest.fail(f"no {kind} {name} in the rendered chart: {kinds_and_names(objects)}")


def kinds_and_names(objects: list[dict]) -> list[tuple[str, str, str | None]]:
    return [
        (obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace")) for obj in objects
    ]


def container(objects: list[dict]) -> dict:
    deployment = find(objects, "Deployment", OPERATOR_NAME)
    (operator,) = deployment["spec"]["template"]["spec"]["containers"]
    return operator


def rules_of(objects: list[dict], kind: str, name: str) -> list[dict]:
    return find(objects, kind, name)["rules"]


def granted(rules: list[dict]) -> set[tuple[str, str, str]]:
    """Return every (API group, resource, verb) that ``rules`` allow."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


# ---- Lint ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        (),
        ("proxy.create=true",),
        ("watchNamespaces={team-a,team-b}", "proxy.create=true", "proxy.namespace=team-a"),
        ("rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=existing"),
    ],
    ids=["defaults", "with-proxy", "watched-namespaces", "no-rbac"],
)
def test_helm_lint_strict(helm: Helm, settings: tuple[str, ...]):
    args = ["lint", "--strict", str(CHART_DIR)]
    for setting in settings:
        args += ["--set", setting]

    result = helm(*args)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_chart_crd_matches_repository_crd():
    chart_crd = CHART_DIR / "crds" / CRD_PATH.name

    assert chart_crd.read_bytes() == CRD_PATH.read_bytes(), (
        "charts/imtegrity/crds differs from crds/; run: python tools/gen-config-docs.py"
    )


# ---- values.schema.json -------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "path", "reason"),
    [
        ("imagee=x", "at ''", "'imagee' not allowed"),
        ("image.tag=5", "at '/image/tag'", "want string"),
        ("image.digest=latest", "at '/image/digest'", "does not match pattern"),
        ("logFormat=xml", "at '/logFormat'", "value must be one of"),
        ("livenessPort=http", "at '/livenessPort'", "want integer"),
        ("watchNamespaces[0]=Team_A", "at '/watchNamespaces/0'", "does not match pattern"),
        ("rbac.egres=false", "at '/rbac'", "'egres' not allowed"),
        ("serviceAccount.create=yes", "at '/serviceAccount/create'", "want boolean"),
        ("proxy.name=Aim", "at '/proxy/name'", "does not match pattern"),
        ("proxy.spec.replicaz=1", "at '/proxy/spec'", "'replicaz' not allowed"),
        ("proxy.spec.ports[0]=70000", "at '/proxy/spec/ports/0'", "maximum"),
        (
            "proxy.spec.egress.enforcement=iptables",
            "at '/proxy/spec/egress/enforcement'",
            "one of",
        ),
        ("proxy.spec.policy.unregistered=maybe", "at '/proxy/spec/policy/unregistered'", "one of"),
    ],
)
def test_schema_rejects_invalid_value(helm: Helm, setting: str, path: str, reason: str):
    result = helm(*template_args(setting))

    assert result.returncode != 0
    assert path in result.stderr, result.stderr
    assert reason in result.stderr, result.stderr


def test_schema_accepts_example_proxy_spec(helm: Helm):
    documents = list(yaml.safe_load_all(EXAMPLE_PATH.read_text()))
    (example,) = [doc for doc in documents if doc["kind"] == "IMtegrityProxy"]

    objects = render(helm, values={"proxy": {"create": True, "spec": example["spec"]}})
    proxy = find(objects, "IMtegrityProxy", "aim", NAMESPACE)

    assert proxy["spec"] == example["spec"]


def test_schema_forbids_extra_keys_throughout():
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    open_objects = []

    def visit(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "properties" in node and node.get("additionalProperties") is not False:
                open_objects.append(path)
            for key, value in node.items():
                visit(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                visit(value, f"{path}/{index}")

    visit(schema, "")

    assert open_objects == []


# ---- Rendered objects ---------------------------------------------------------------


def test_defaults_render_operator_and_rbac(helm: Helm):
    objects = render(helm)

    assert sorted((kind, name) for kind, name, _ in kinds_and_names(objects)) == [
        ("ClusterRole", OPERATOR_NAME),
        ("ClusterRole", f"{OPERATOR_NAME}-cluster"),
        ("ClusterRoleBinding", OPERATOR_NAME),
        ("ClusterRoleBinding", f"{OPERATOR_NAME}-cluster"),
        ("Deployment", OPERATOR_NAME),
        ("Role", f"{OPERATOR_NAME}-dns"),
        ("RoleBinding", f"{OPERATOR_NAME}-dns"),
        ("ServiceAccount", OPERATOR_NAME),
    ]


def test_defaults_operator_arguments(helm: Helm):
    operator = container(render(helm))

    assert operator["args"] == [
        "run",
        "--all-namespaces",
        "--liveness=0.0.0.0:8080",
        "--default-proxy-image=imtegrity-proxy:0.1.0",
        "--log-format=text",
    ]
    assert operator["image"] == "imtegrity-operator:0.1.0"


@pytest.mark.parametrize(
    "settings",
    [
        (),
        ("watchNamespaces={team-a,team-b}", "logFormat=json", "debug=true"),
        ("livenessPort=9090", "proxyImage.repository=registry.example/proxy"),
    ],
    ids=["defaults", "namespaces-json-debug", "port-and-image"],
)
def test_operator_cli_accepts_rendered_arguments(helm: Helm, settings: tuple[str, ...]):
    operator = container(render(helm, *settings))

    args = operator_parser().parse_args(operator["args"])

    assert args.command == "run"


def test_operator_arguments_follow_values(helm: Helm):
    settings = (
        "watchNamespaces={team-a,team-b}",
        "logFormat=json",
        "debug=true",
        "livenessPort=9090",
        "proxyImage.repository=registry.example/imtegrity-proxy",
        "proxyImage.tag=1.2.3",
    )
    operator = container(render(helm, *settings))
    args = operator_parser().parse_args(operator["args"])

    assert args.namespace == ["team-a", "team-b"]
    assert args.all_namespaces is False
    assert args.log_format == "json"
    assert args.verbose is True
    assert args.liveness == "http://0.0.0.0:9090/healthz"
    assert args.default_proxy_image == "registry.example/imtegrity-proxy:1.2.3"
    assert operator["ports"][0]["containerPort"] == 9090


def test_image_digest_replaces_tag(helm: Helm):
    digest = "sha256:" + "ab" * 32

    operator = container(render(helm, f"image.digest={digest}", "image.tag=ignored"))

    assert operator["image"] == f"imtegrity-operator@{digest}"


def test_operator_pod_hardened(helm: Helm):
    objects = render(helm)
    pod = find(objects, "Deployment", OPERATOR_NAME)["spec"]["template"]["spec"]
    security = container(objects)["securityContext"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["serviceAccountName"] == OPERATOR_NAME
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}


def test_operator_single_replica_recreate(helm: Helm):
    deployment = find(render(helm), "Deployment", OPERATOR_NAME)

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_no_proxy_by_default(helm: Helm):
    kinds = [kind for kind, _, _ in kinds_and_names(render(helm))]

    assert "IMtegrityProxy" not in kinds


def test_proxy_instance_in_release_namespace(helm: Helm):
    objects = render(helm, "proxy.create=true", "proxy.spec.replicas=0")
    proxy = find(objects, "IMtegrityProxy", "aim", NAMESPACE)

    assert proxy["apiVersion"] == "imtegrity.io/v1alpha1"
    assert proxy["spec"] == {"replicas": 0}


def test_proxy_outside_watched_namespaces_fails(helm: Helm):
    result = helm(*template_args("proxy.create=true", "watchNamespaces={team-a}"))

    assert result.returncode != 0
    assert f'proxy.namespace "{NAMESPACE}" is not in watchNamespaces' in result.stderr


def test_existing_service_account_requires_name(helm: Helm):
    result = helm(*template_args("serviceAccount.create=false"))

    assert result.returncode != 0
    assert "serviceAccount.name is required" in result.stderr


# ---- RBAC ---------------------------------------------------------------------------


def test_watched_namespaces_bound_by_role_bindings(helm: Helm):
    objects = render(helm, "watchNamespaces={team-a,team-b}")
    bindings = [
        (obj["metadata"]["namespace"], obj["roleRef"]["name"])
        for obj in objects
        if obj["kind"] == "RoleBinding" and obj["roleRef"]["kind"] == "ClusterRole"
    ]
    cluster_bindings = [
        obj["roleRef"]["name"] for obj in objects if obj["kind"] == "ClusterRoleBinding"
    ]

    assert bindings == [("team-a", OPERATOR_NAME), ("team-b", OPERATOR_NAME)]
    assert cluster_bindings == [f"{OPERATOR_NAME}-cluster"]


def test_bindings_name_operator_service_account(helm: Helm):
    objects = render(helm)
    expected = [{"kind": "ServiceAccount", "name": OPERATOR_NAME, "namespace": NAMESPACE}]

    for obj in objects:
        if obj["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            assert obj["subjects"] == expected, obj["metadata"]["name"]


def test_no_rule_names_secrets_or_wildcards(helm: Helm):
    objects = render(helm)

    for obj in objects:
        for rule in obj.get("rules", []) if obj["kind"] in ("ClusterRole", "Role") else []:
            assert "secrets" not in rule["resources"], obj["metadata"]["name"]
            assert "*" not in rule["resources"], obj["metadata"]["name"]
            assert "*" not in rule["verbs"], obj["metadata"]["name"]
            assert "*" not in rule["apiGroups"], obj["metadata"]["name"]


def test_proxy_role_covers_operator_calls(helm: Helm):
    rules = granted(rules_of(render(helm), "ClusterRole", OPERATOR_NAME))
    needed = {
        ("imtegrity.io", "imtegrityproxies", verb) for verb in ("get", "list", "watch", "patch")
    } | {
        ("imtegrity.io", "imtegrityproxies/status", "patch"),
        ("", "events", "create"),
    }
    for group, resource in [
        ("", "configmaps"),
        ("", "services"),
        ("", "persistentvolumeclaims"),
        ("apps", "deployments"),
        ("policy", "poddisruptionbudgets"),
    ]:
        needed |= {(group, resource, verb) for verb in ("get", "list", "watch", "create", "patch")}

    assert needed - rules == set()


def test_proxy_role_verbs_limited(helm: Helm):
    rules = granted(rules_of(render(helm), "ClusterRole", OPERATOR_NAME))

    assert {verb for _, _, verb in rules} == {"get", "list", "watch", "patch", "create", "update"}
    assert {resource for _, resource, verb in rules if verb == "create"} == {
        "events",
        "configmaps",
        "services",
        "persistentvolumeclaims",
        "deployments",
        "poddisruptionbudgets",
    }
    assert {resource for _, resource, verb in rules if verb == "update"} == {
        "imtegrityproxies/finalizers"
    }


def test_egress_rules_follow_value(helm: Helm):
    with_egress = granted(rules_of(render(helm), "ClusterRole", f"{OPERATOR_NAME}-cluster"))
    without = granted(
        rules_of(
            render(helm, "rbac.egressPolicies=false"), "ClusterRole", f"{OPERATOR_NAME}-cluster"
        )
    )

    assert ("networking.k8s.io", "networkpolicies", "patch") in with_egress
    assert ("policy.networking.k8s.io", "clusternetworkpolicies", "delete") in with_egress
    assert ("cilium.io", "ciliumclusterwidenetworkpolicies", "patch") in with_egress
    assert ("crd.projectcalico.org", "globalnetworkpolicies", "patch") in with_egress
    assert ("networking.k8s.io", "servicecidrs", "list") in with_egress
    assert without == {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
        ("imtegrity.io", "imtegrityproxies", "list"),
        ("imtegrity.io", "imtegrityproxies", "watch"),
        ("", "services", "get"),
    }


def test_dns_role_limited_to_coredns_objects(helm: Helm):
    objects = render(helm, "rbac.dnsNamespace=dns-system")
    role = find(objects, "Role", f"{OPERATOR_NAME}-dns", "dns-system")
    rules = {
        (rule["resources"][0], *rule.get("resourceNames", ["*"])): rule["verbs"]
        for rule in role["rules"]
    }

    assert rules == {
        ("configmaps", "coredns"): ["get", "list", "watch", "patch"],
        ("configmaps", "coredns-custom"): ["get", "list", "watch", "patch", "delete"],
        # create cannot be limited to a name in RBAC.
        ("configmaps", "*"): ["create"],
        ("deployments", "coredns"): ["get"],
    }


def test_dns_role_follows_value(helm: Helm):
    kinds = [kind for kind, _, _ in kinds_and_names(render(helm, "rbac.dnsOverride=false"))]

    assert "Role" not in kinds
    assert "RoleBinding" not in kinds


def test_rbac_create_false_renders_no_roles(helm: Helm):
    objects = render(helm, "rbac.create=false")
    kinds = {kind for kind, _, _ in kinds_and_names(objects)}

    assert kinds == {"ServiceAccount", "Deployment"}

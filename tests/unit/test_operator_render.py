"""The pure render functions: spec in, Kubernetes objects out, no cluster."""

from __future__ import annotations

import pytest
import yaml
from imtegrity_operator.render import (
    Owner,
    UnsupportedReplicasError,
    render_children,
)
from imtegrity_operator.render.config import (
    build_proxy_config,
    render_config_map,
    restart_checksum,
)
from imtegrity_operator.render.deployment import CHECKSUM_ANNOTATION, render_deployment
from imtegrity_operator.render.disruption import render_disruption_budget
from imtegrity_operator.render.service import render_service
from imtegrity_operator.render.storage import render_archive_claim
from imtegrity_operator.spec import SpecError, parse_spec
from imtegrity_proxy.config import parse_config

OWNER = Owner(name="aim", namespace="imtegrity", uid="0f1e2d3c-0000-4000-8000-000000000001")
IMAGE = "registry.example/imtegrity-proxy:1.2.3"
SELECTOR = {"app.kubernetes.io/name": "imtegrity-proxy", "app.kubernetes.io/instance": "aim"}


def _deployment(spec: dict | None = None) -> dict:
    parsed = parse_spec(spec or {})
    config = build_proxy_config(parsed)
    return render_deployment(OWNER, parsed, IMAGE, restart_checksum(config))


def _container(spec: dict | None = None) -> dict:
    return _deployment(spec)["spec"]["template"]["spec"]["containers"][0]


def _checksum(spec: dict) -> str:
    return restart_checksum(build_proxy_config(parse_spec(spec)))


# Metadata shared by every child.


def test_children_in_apply_order():
    kinds = [child["kind"] for child in render_children(OWNER, parse_spec({}), IMAGE)]

    assert kinds == [
        "ConfigMap",
        "PersistentVolumeClaim",
        "Service",
        "PodDisruptionBudget",
        "Deployment",
    ]


def test_children_have_controller_owner_reference():
    for child in render_children(OWNER, parse_spec({}), IMAGE):
        (reference,) = child["metadata"]["ownerReferences"]
        assert reference["apiVersion"] == "imtegrity.io/v1alpha1", child["kind"]
        assert reference["kind"] == "IMtegrityProxy", child["kind"]
        assert reference["name"] == "aim", child["kind"]
        assert reference["uid"] == OWNER.uid, child["kind"]
        assert reference["controller"] is True, child["kind"]


def test_children_in_owner_namespace_with_labels():
    for child in render_children(OWNER, parse_spec({}), IMAGE):
        labels = child["metadata"]["labels"]
        assert child["metadata"]["namespace"] == "imtegrity", child["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "imtegrity-operator", child["kind"]
        assert labels["app.kubernetes.io/instance"] == "aim", child["kind"]


def test_two_replicas_rejected():
    with pytest.raises(UnsupportedReplicasError) as error:
        render_children(OWNER, parse_spec({"replicas": 2}), IMAGE)

    assert "spec.replicas: 2 is not supported" in str(error.value)
    assert "single writer" in str(error.value)


def test_zero_replicas_rendered():
    children = render_children(OWNER, parse_spec({"replicas": 0}), IMAGE)

    assert children[-1]["spec"]["replicas"] == 0


# ConfigMap and the proxy config.


def test_config_map_holds_valid_proxy_config():
    config_map = render_config_map(OWNER, build_proxy_config(parse_spec({})))
    config = parse_config(yaml.safe_load(config_map["data"]["config.yaml"]))

    assert config_map["metadata"]["name"] == "aim-config"
    assert config.listen.ports == [5190, 443]
    assert config.listen.host == "0.0.0.0"
    assert config.health.port == 8080
    assert config.archive.path == "/var/lib/imtegrity/archive.sqlite3"


def test_config_carries_spec_sections():
    spec = parse_spec(
        {
            "advertiseHost": "aim.example.com",
            "healthPort": 9000,
            "upstream": {"servers": ["oscar.example.net:5190"], "connect_timeout_seconds": 3},
            "policy": {"identities": {"Alice": "alice@example.com"}, "unregistered": "deny"},
            "logging": {"format": "json"},
            "archive": {"max_batch": 32},
        }
    )
    config = build_proxy_config(spec)

    assert config.advertise.host == "aim.example.com"
    assert config.health.port == 9000
    assert config.upstream.servers == ["oscar.example.net:5190"]
    assert config.upstream.connect_timeout_seconds == 3
    assert config.policy.identities == {"alice": "alice@example.com"}
    assert config.policy.unregistered == "deny"
    assert config.logging.format == "json"
    assert config.archive.max_batch == 32


def test_config_yaml_round_trips():
    config = build_proxy_config(parse_spec({"policy": {"unregistered": "deny"}}))
    text = render_config_map(OWNER, config)["data"]["config.yaml"]

    assert parse_config(yaml.safe_load(text)) == config


def test_invalid_policy_names_spec_field():
    spec = parse_spec({})
    # Assignment skips the spec model's validation; the config model still checks.
    spec.policy.unregistered = "sometimes"  # type: ignore[assignment]

    with pytest.raises(SpecError) as error:
        build_proxy_config(spec)

    assert error.value.errors[0].startswith("spec.policy.unregistered: ")


def test_config_error_maps_to_spec_name():
    spec = parse_spec({})
    spec.ports = [8080]

    with pytest.raises(SpecError) as error:
        build_proxy_config(spec)

    assert error.value.errors == [
        "spec.healthPort: 8080 is also in listen.ports; choose another port"
    ]


def test_checksum_ignores_policy():
    before = _checksum({})
    after = _checksum({"policy": {"unregistered": "deny", "disclaimer": {"outbound": "hi"}}})

    assert before == after


@pytest.mark.parametrize(
    "change",
    [
        {"ports": [5191]},
        {"advertiseHost": "aim.example.com"},
        {"upstream": {"connect_timeout_seconds": 3}},
        {"relay": {"cookie_ttl_seconds": 60}},
        {"archive": {"max_batch": 8}},
        {"healthPort": 9000},
        {"logging": {"level": "debug"}},
    ],
    ids=["ports", "advertise", "upstream", "relay", "archive", "health", "logging"],
)
def test_checksum_follows_restart_fields(change):
    assert _checksum(change) != _checksum({})


def test_checksum_is_stable():
    assert _checksum({"ports": [5190]}) == _checksum({"ports": [5190]})


# Deployment.


def test_deployment_basics():
    deployment = _deployment()

    assert deployment["metadata"]["name"] == "aim"
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["selector"] == {"matchLabels": SELECTOR}
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == (
        "imtegrity-proxy"
    )


def test_deployment_checksum_annotation():
    annotations = _deployment()["spec"]["template"]["metadata"]["annotations"]

    assert annotations[CHECKSUM_ANNOTATION] == _checksum({})


def test_container_image_and_command():
    container = _container()

    assert container["image"] == IMAGE
    assert container["command"] == [
        "imtegrity-proxy",
        "serve",
        "--config",
        "/etc/imtegrity/config.yaml",
    ]


def test_container_ports():
    ports = {port["name"]: port["containerPort"] for port in _container()["ports"]}

    assert ports == {"oscar-5190": 5190, "oscar-443": 443, "health": 8080}


def test_probes_use_health_port():
    container = _container({"healthPort": 9000})
    health = next(port for port in container["ports"] if port["name"] == "health")

    assert health["containerPort"] == 9000
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["port"] == "health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["readinessProbe"]["httpGet"]["port"] == "health"


def test_security_context_low_port():
    context = _container({"ports": [5190, 443]})["securityContext"]

    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 10001
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}


def test_security_context_high_ports_add_nothing():
    context = _container({"ports": [5190, 5191]})["securityContext"]

    assert context["capabilities"] == {"drop": ["ALL"]}


def test_pod_security_context():
    pod = _deployment()["spec"]["template"]["spec"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroup"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False


def test_termination_grace_covers_proxy_shutdown():
    pod = _deployment({"relay": {"shutdown_grace_seconds": 12.5}})["spec"]["template"]["spec"]

    assert pod["terminationGracePeriodSeconds"] == 18


def test_container_resources():
    resources = _container({"resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": 1}}})[
        "resources"
    ]

    assert resources == {"requests": {"cpu": "250m"}, "limits": {"cpu": 1}}


def test_volumes_mount_config_and_archive():
    deployment = _deployment()
    pod = deployment["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["name"]: mount for mount in pod["containers"][0]["volumeMounts"]}

    assert volumes["config"]["configMap"] == {"name": "aim-config"}
    assert volumes["archive"]["persistentVolumeClaim"] == {"claimName": "aim-archive"}
    assert mounts["config"]["mountPath"] == "/etc/imtegrity"
    assert mounts["config"]["readOnly"] is True
    assert "subPath" not in mounts["config"]
    assert mounts["archive"]["mountPath"] == "/var/lib/imtegrity"
    assert mounts["tmp"]["mountPath"] == "/tmp"


# Service, claim and disruption budget.


def test_service_ports_and_affinity():
    service = render_service(OWNER, parse_spec({"ports": [5190, 443]}))

    assert service["metadata"]["name"] == "aim"
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    assert service["spec"]["selector"] == SELECTOR
    assert service["spec"]["ports"] == [
        {"name": "oscar-5190", "port": 5190, "targetPort": "oscar-5190", "protocol": "TCP"},
        {"name": "oscar-443", "port": 443, "targetPort": "oscar-443", "protocol": "TCP"},
    ]


def test_archive_claim_default_class():
    claim = render_archive_claim(OWNER, parse_spec({}))

    assert claim["metadata"]["name"] == "aim-archive"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"] == {"requests": {"storage": "10Gi"}}
    assert "storageClassName" not in claim["spec"]


def test_archive_claim_named_class():
    spec = parse_spec({"archive": {"storageSize": "2Gi", "storageClassName": "fast-ssd"}})
    claim = render_archive_claim(OWNER, spec)

    assert claim["spec"]["resources"] == {"requests": {"storage": "2Gi"}}
    assert claim["spec"]["storageClassName"] == "fast-ssd"


def test_disruption_budget():
    budget = render_disruption_budget(OWNER)

    assert budget["apiVersion"] == "policy/v1"
    assert budget["metadata"]["name"] == "aim"
    assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": SELECTOR}}

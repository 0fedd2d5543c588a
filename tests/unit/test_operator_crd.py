"""The generated CRD and the JSON Schema to structural schema conversion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from imtegrity_operator.crd import build_crd, render_crd_yaml, spec_schema
from imtegrity_operator.structural import UnsupportedSchemaError, to_structural
from pydantic import BaseModel, Field

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = REPO_ROOT / "crds" / "imtegrityproxies.imtegrity.io.yaml"


def _version() -> dict[str, Any]:
    return build_crd()["spec"]["versions"][0]


def _walk(schema: dict[str, Any], path: str = ""):
    """Yield (path, schema) for every node below ``schema``."""
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if "items" in schema:
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}.*")


def test_committed_crd_matches_generator():
    committed = CRD_PATH.read_text()

    assert committed == render_crd_yaml(), (
        "crds/imtegrityproxies.imtegrity.io.yaml is stale; regenerate it with "
        "`python -m imtegrity_operator.crd > crds/imtegrityproxies.imtegrity.io.yaml`"
    )


def test_crd_names_and_scope():
    spec = build_crd()["spec"]

    assert spec["group"] == "imtegrity.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "IMtegrityProxy"
    assert spec["names"]["shortNames"] == ["imp"]
    assert _version()["name"] == "v1alpha1"


def test_crd_has_status_subresource():
    assert _version()["subresources"] == {"status": {}}


def test_printer_columns():
    columns = {
        column["name"]: column["jsonPath"] for column in _version()["additionalPrinterColumns"]
    }

    assert list(columns) == ["Ready", "Replicas", "Service", "Age"]
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Age"] == ".metadata.creationTimestamp"


def test_every_spec_and_status_field_has_description():
    root = _version()["schema"]["openAPIV3Schema"]
    missing = [
        path
        for section in ("spec", "status")
        for path, node in _walk(root["properties"][section], section)
        if path.count(".") >= 1 and not path.endswith((".*", "[]")) and not node.get("description")
    ]

    assert missing == []


def test_schema_is_structural():
    root = _version()["schema"]["openAPIV3Schema"]
    for path, node in _walk(root["properties"]["spec"], "spec"):
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path
        assert "$ref" not in node, path
        assert node.get("additionalProperties") is not False, path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True, path


def test_status_admits_operator_fields():
    status = _version()["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    condition = status["conditions"]["items"]["properties"]

    assert set(status) == {
        "conditions",
        "observedGeneration",
        "readyReplicas",
        "serviceAddress",
        "serviceIP",
    }
    assert set(condition) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


def test_spec_defaults():
    properties = spec_schema()["properties"]

    assert properties["replicas"]["default"] == 1
    assert properties["replicas"]["minimum"] == 0
    assert properties["image"]["default"] == ""
    assert properties["ports"]["default"] == [5190, 443]
    assert properties["archive"]["properties"]["storageSize"]["default"] == "10Gi"
    assert properties["egress"]["properties"]["blockedCIDRs"]["default"] == [
        "64.12.0.0/16",
        "152.163.0.0/16",
        "205.188.0.0/16",
    ]
    assert properties["dns"]["properties"]["hostnames"]["default"] == [
        "login.oscar.aol.com",
        "login.messaging.aol.com",
    ]


def test_spec_enums():
    properties = spec_schema()["properties"]
    dns_modes = properties["dns"]["properties"]["mode"]["enum"]

    assert properties["egress"]["properties"]["enforcement"]["enum"] == [
        "auto",
        "networkpolicy",
        "clusternetworkpolicy",
        "adminnetworkpolicy",
        "cilium",
        "calico",
    ]
    assert dns_modes == ["auto", "coredns-custom", "corefile"]
    assert properties["policy"]["properties"]["unregistered"]["enum"] == ["allow", "deny"]


def test_port_bounds_and_uniqueness():
    ports = spec_schema()["properties"]["ports"]

    assert ports["items"]["minimum"] == 1
    assert ports["items"]["maximum"] == 65535
    assert ports["x-kubernetes-list-type"] == "set"


def test_cidr_items_checked_with_cel():
    items = spec_schema()["properties"]["egress"]["properties"]["blockedCIDRs"]["items"]
    rules = [rule["rule"] for rule in items["x-kubernetes-validations"]]

    assert rules == ["isCIDR(self)"]
    assert items["maxLength"] == 43


def test_proxy_sections_follow_config_model():
    from imtegrity_proxy.config import PolicyConfig, UpstreamConfig

    properties = spec_schema()["properties"]

    assert set(properties["upstream"]["properties"]) == set(UpstreamConfig.model_fields)
    assert set(properties["policy"]["properties"]) == set(PolicyConfig.model_fields)
    assert properties["upstream"]["default"] == {}


def test_nullable_proxy_field():
    socks = spec_schema()["properties"]["upstream"]["properties"]["socks"]

    assert socks["nullable"] is True
    assert socks["type"] == "object"
    assert "default" not in socks


class _Leaf(BaseModel):
    """A leaf."""

    size: float = Field(1.0, gt=0, description="Size.")


class _Tree(BaseModel):
    leaf: _Leaf | None = Field(None, description="Optional leaf.")
    names: dict[str, str] = Field({}, description="Names.")
    tags: set[str] = Field(set(), description="Tags.")


def test_structural_inlines_nullable_reference():
    schema = to_structural(_Tree.model_json_schema())
    leaf = schema["properties"]["leaf"]

    assert leaf["type"] == "object"
    assert leaf["nullable"] is True
    assert leaf["description"] == "Optional leaf."
    assert "$ref" not in leaf


def test_structural_rewrites_exclusive_minimum():
    schema = to_structural(_Tree.model_json_schema())
    size = schema["properties"]["leaf"]["properties"]["size"]

    assert size["minimum"] == 0
    assert size["exclusiveMinimum"] is True


def test_structural_keeps_maps_and_sets():
    schema = to_structural(_Tree.model_json_schema())

    assert schema["properties"]["names"]["additionalProperties"] == {"type": "string"}
    assert schema["properties"]["tags"]["x-kubernetes-list-type"] == "set"
    assert "uniqueItems" not in schema["properties"]["tags"]


def test_structural_drops_titles():
    schema = to_structural(_Tree.model_json_schema())

    assert all("title" not in node for _, node in _walk(schema))


class _Recursive(BaseModel):
    children: list[_Recursive] = Field([], description="Children.")


class _Union(BaseModel):
    value: int | _Leaf = Field(0, description="A union of a number and an object.")


class _Tuple(BaseModel):
    pair: tuple[int, str] = Field((0, ""), description="A pair.")


@pytest.mark.parametrize(
    ("model", "path"),
    [(_Recursive, ".children[]"), (_Union, ".value"), (_Tuple, ".pair")],
)
def test_structural_rejects_unsupported(model, path):
    with pytest.raises(UnsupportedSchemaError) as error:
        to_structural(model.model_json_schema())

    assert error.value.path == path


def test_crd_yaml_round_trips():
    text = render_crd_yaml()

    assert yaml.safe_load(text) == build_crd()

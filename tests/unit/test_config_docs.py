"""docs/configuration.md documents every field, and the generated files are current.

tools/gen-config-docs.py writes the reference tables from the models, and
the tests here compare its output with the committed files. They also walk
the models themselves, without the tool's code, and look up each field's
path in the tables. A field added to the config model, the CRD or the chart's
values so fails a test until the reference is regenerated.
"""

from __future__ import annotations

import importlib.util
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from imtegrity_proxy.config import Config
from pydantic import BaseModel

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS_PATH = REPO_ROOT / "docs" / "configuration.md"
CRD_PATH = REPO_ROOT / "crds" / "imtegrityproxies.imtegrity.io.yaml"
VALUES_PATH = REPO_ROOT / "charts" / "imtegrity" / "values.yaml"
TOOL_PATH = REPO_ROOT / "tools" / "gen-config-docs.py"


def load_tool() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config_docs", TOOL_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def nested_models(annotation: Any) -> Iterator[tuple[type[BaseModel], bool]]:
    """Yield each model inside ``annotation``, and whether it sits in a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, False
        return
    origin = typing.get_origin(annotation)
    for argument in typing.get_args(annotation):
        for model, in_list in nested_models(argument):
            yield model, in_list or origin is list


def model_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Yield the dotted path of every field of ``model``; list elements add ``[]``."""
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        yield path
        for nested, in_list in nested_models(field.annotation):
            yield from model_paths(nested, f"{path}[]" if in_list else path)


def schema_paths(schema: dict[str, Any], prefix: str) -> Iterator[str]:
    """Yield the dotted path of every property under a CRD schema node."""
    for name, child in schema.get("properties", {}).items():
        path = f"{prefix}.{name}"
        yield path
        yield from schema_paths(child, path)
        if "properties" in child.get("items", {}):
            yield from schema_paths(child["items"], f"{path}[]")


# Chart values whose keys are data (names of resources, labels, spec fields),
# not fields of the chart.
MAP_VALUES = {
    "resources.requests",
    "resources.limits",
    "serviceAccount.annotations",
    "podAnnotations",
    "podLabels",
    "nodeSelector",
    "proxy.spec",
}


def value_paths(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Yield the dotted path of every chart value in values.yaml."""
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        yield path
        if isinstance(value, dict) and path not in MAP_VALUES:
            yield from value_paths(value, path)


def undocumented(paths: Iterator[str], text: str) -> list[str]:
    return [path for path in paths if f"| `{path}` |" not in text]


@pytest.fixture(scope="module")
def docs() -> str:
    return DOCS_PATH.read_text(encoding="utf-8")


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_PATH.read_text(encoding="utf-8"))
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def test_generated_files_current():
    stale = load_tool().stale_files()

    assert stale == {}, "".join(stale.values()) + "\nrun: python tools/gen-config-docs.py"


def test_every_config_field_documented(docs: str):
    missing = undocumented(model_paths(Config), docs)

    assert missing == []


def test_every_resource_spec_field_documented(docs: str):
    missing = undocumented(schema_paths(crd_schema()["properties"]["spec"], "spec"), docs)

    assert missing == []


def test_every_resource_status_field_documented(docs: str):
    missing = undocumented(schema_paths(crd_schema()["properties"]["status"], "status"), docs)

    assert missing == []


def test_every_chart_value_documented(docs: str):
    values = yaml.safe_load(VALUES_PATH.read_text(encoding="utf-8"))

    assert undocumented(value_paths(values), docs) == []


def test_added_config_field_detected(docs: str):
    class Extended(Config):
        retention_days: int = 30

    missing = undocumented(model_paths(Extended), docs)

    assert missing == ["retention_days"]


def test_nested_list_fields_walked():
    paths = set(model_paths(Config))

    assert "policy.rules[].pattern" in paths
    assert "upstream.socks.proxies[].host" in paths


def test_config_defaults_documented(docs: str):
    # One row per kind of default: a string, a list, a number and a null.
    for row in (
        '| `listen.host` | string | `"0.0.0.0"` |',
        "| `listen.ports` | list of integer | `[5190]` |",
        "| `relay.max_cookies` | integer | `100000` |",
        "| `upstream.socks` | object or null | `null` |",
    ):
        assert row in docs

#!/usr/bin/env python3
"""Regenerate the files that are derived from the configuration models.

- docs/configuration.md: the reference tables between its ``BEGIN GENERATED``
  and ``END GENERATED`` markers, from the proxy's ``Config`` model, the
  IMtegrityProxy CRD and the chart's values schema. Text outside the markers
  is written by hand and kept.
- charts/imtegrity/crds/imtegrityproxies.imtegrity.io.yaml: a copy of the
  repository's CRD, which Helm installs before the chart's templates.
- charts/imtegrity/values.schema.json: ``proxy.spec``, the CRD's spec schema
  translated to JSON Schema, so that ``helm install`` rejects an invalid
  proxy spec with its path before anything is created.

Usage: ``python tools/gen-config-docs.py`` writes the files; ``--check`` writes
nothing and exits 1, with a diff, when a file differs from what it would write.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CRD_PATH = REPO_ROOT / "crds" / "imtegrityproxies.imtegrity.io.yaml"
CHART_DIR = REPO_ROOT / "charts" / "imtegrity"
CHART_CRD_PATH = CHART_DIR / "crds" / CRD_PATH.name
VALUES_PATH = CHART_DIR / "values.yaml"
VALUES_SCHEMA_PATH = CHART_DIR / "values.schema.json"
DOCS_PATH = REPO_ROOT / "docs" / "configuration.md"

Schema = Mapping[str, Any]


@dataclass(frozen=True)
class Row:
    """One field of a reference table."""

    path: str
    type: str
    default: str
    description: str


# ---- Walking a schema -------------------------------------------------------------


def _unwrap(schema: Schema, resolve: Callable[[Schema], Schema]) -> tuple[Schema, bool]:
    """Return the schema behind ``$ref`` and ``anyOf: [X, null]``, and whether null is allowed."""
    nullable = bool(schema.get("nullable"))
    options = schema.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        if len(rest) == 1:
            nullable = True
            merged = {key: value for key, value in schema.items() if key != "anyOf"}
            schema = {**resolve(rest[0]), **merged}
    return resolve(schema), nullable


def _is_section(schema: Schema) -> bool:
    return schema.get("type") == "object" and bool(schema.get("properties"))


def _type_text(schema: Schema, resolve: Callable[[Schema], Schema], nullable: bool) -> str:
    if "enum" in schema:
        text = " or ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    elif schema.get("x-kubernetes-int-or-string") or _is_int_or_string(schema):
        text = "integer or string"
    elif schema.get("type") == "array":
        items, _ = _unwrap(schema.get("items", {}), resolve)
        if _is_section(items):
            text = "list of objects"
        elif "enum" in items:
            text = "list of " + " or ".join(f"`{json.dumps(value)}`" for value in items["enum"])
        else:
            text = f"list of {_plain_type(items)}"
    elif schema.get("type") == "object" and isinstance(schema.get("additionalProperties"), dict):
        values, _ = _unwrap(schema["additionalProperties"], resolve)
        text = f"map of string to {_type_text(values, resolve, False)}"
    else:
        text = _plain_type(schema)
    return f"{text} or null" if nullable else text


def _is_int_or_string(schema: Schema) -> bool:
    options = schema.get("anyOf") or []
    return sorted(option.get("type", "") for option in options) == ["integer", "string"]


def _plain_type(schema: Schema) -> str:
    if "enum" in schema:
        return " or ".join(json.dumps(value) for value in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"list of {_plain_type(schema.get('items', {}))}"
    if isinstance(kind, list):
        return " or ".join(kind)
    return str(kind or "any")


def _default_text(schema: Schema, required: bool) -> str:
    if _is_section(schema) and schema.get("default") is not None:
        return "see its fields"
    if "default" in schema:
        return f"`{json.dumps(schema['default'], ensure_ascii=False)}`"
    # A CRD field without a default stays unset, and the operator reads it as null.
    return "required" if required else "unset"


def _description(schema: Schema) -> str:
    text = " ".join(str(schema.get("description", "")).split())
    # Escape what Markdown would read as a table cell end or an HTML tag.
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def schema_rows(schema: Schema, prefix: str, resolve: Callable[[Schema], Schema]) -> Iterator[Row]:
    """Yield a row for every field under ``schema``, depth first, in schema order.

    A list of objects contributes the fields of one element under ``path[]``.
    """
    required = set(schema.get("required", []))
    for name, raw in schema.get("properties", {}).items():
        field, nullable = _unwrap(raw, resolve)
        path = f"{prefix}.{name}" if prefix else name
        if _is_section(field):
            kind = "object or null" if nullable else "object"
        else:
            kind = _type_text(field, resolve, nullable)
        yield Row(
            path,
            kind,
            _default_text(field, name in required),
            _description(field),
        )
        if _is_section(field):
            yield from schema_rows(field, path, resolve)
        elif field.get("type") == "array":
            items, _ = _unwrap(field.get("items", {}), resolve)
            if _is_section(items):
                yield from schema_rows(items, f"{path}[]", resolve)


def json_schema_resolver(root: Schema) -> Callable[[Schema], Schema]:
    """Return a function that follows local ``#/$defs/...`` references of ``root``."""

    def resolve(schema: Schema) -> Schema:
        reference = schema.get("$ref")
        if reference is None:
            return schema
        target: Any = root
        for part in reference.removeprefix("#/").split("/"):
            target = target[part]
        merged = {key: value for key, value in schema.items() if key != "$ref"}
        return {**resolve(target), **merged}

    return resolve


# ---- The three sources ------------------------------------------------------------


def config_rows() -> list[Row]:
    """Rows for the proxy's config file, from the pydantic model's JSON Schema."""
    from imtegrity_proxy.config import Config

    schema = Config.model_json_schema()
    return list(schema_rows(schema, "", json_schema_resolver(schema)))


def load_crd() -> dict[str, Any]:
    return yaml.safe_load(CRD_PATH.read_text(encoding="utf-8"))


def crd_schema(crd: Mapping[str, Any]) -> Schema:
    """Return the openAPIV3Schema of the CRD's only version."""
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def resource_rows(section: str) -> list[Row]:
    """Rows for ``spec`` or ``status`` of the IMtegrityProxy resource, from the CRD."""
    schema = crd_schema(load_crd())["properties"][section]
    return list(schema_rows(schema, section, lambda node: node))


def _lookup(values: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
        if not isinstance(values, Mapping) or part not in values:
            return False, None
        values = values[part]
    return True, values


def values_rows() -> list[Row]:
    """Rows for the chart's values: types and text from the schema, defaults from values.yaml."""
    schema = json.loads(VALUES_SCHEMA_PATH.read_text(encoding="utf-8"))
    values = yaml.safe_load(VALUES_PATH.read_text(encoding="utf-8"))
    rows = []
    resolve = json_schema_resolver(schema)
    for row in schema_rows(schema, "", resolve):
        if row.path.startswith("proxy.spec."):
            continue  # The IMtegrityProxy spec has its own table.
        found, value = _lookup(values, row.path)
        default = f"`{json.dumps(value, ensure_ascii=False)}`" if found else row.default
        if row.path == "proxy.spec":
            row = Row(row.path, "object", default, "An IMtegrityProxy spec; see its table.")
        elif isinstance(value, Mapping) and value and row.type == "object":
            default = "see its fields"
        rows.append(Row(row.path, row.type, default, row.description))
    return rows


# ---- docs/configuration.md --------------------------------------------------------


def render_table(rows: list[Row]) -> str:
    lines = ["| Field | Type | Default | Description |", "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| `{row.path}` | {row.type} | {row.default} | {row.description} |")
    return "\n".join(lines) + "\n"


def generated_blocks() -> dict[str, str]:
    """Return the text of each generated block of docs/configuration.md, by block name."""
    return {
        "config-file": render_table(config_rows()),
        "resource-spec": render_table(resource_rows("spec")),
        "resource-status": render_table(resource_rows("status")),
        "chart-values": render_table(values_rows()),
    }


_BLOCK = re.compile(
    r"(<!-- BEGIN GENERATED: (?P<name>[a-z-]+)[^>]*-->\n)"
    r"(?P<body>.*?)"
    r"(<!-- END GENERATED: (?P=name) -->)",
    re.DOTALL,
)


def render_docs(current: str, blocks: Mapping[str, str]) -> str:
    """Replace the body of every generated block in ``current``; raise on a missing block."""
    seen = set()

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in blocks:
            raise SystemExit(f"{DOCS_PATH}: unknown generated block {name!r}")
        seen.add(name)
        return match.group(1) + blocks[name] + match.group(4)

    text = _BLOCK.sub(replace, current)
    missing = sorted(set(blocks) - seen)
    if missing:
        raise SystemExit(f"{DOCS_PATH}: missing generated blocks {missing}; add their markers")
    return text


# ---- The chart's values schema ----------------------------------------------------

# OpenAPI keywords of the CRD that JSON Schema spells the same way.
_COPIED_KEYWORDS = (
    "type",
    "description",
    "default",
    "enum",
    "required",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
)


def crd_to_json_schema(node: Schema) -> dict[str, Any]:
    """Translate a CRD's OpenAPI v3 schema into JSON Schema (draft 2020-12).

    ``nullable`` becomes a ``null`` type, boolean ``exclusiveMinimum`` becomes the
    number form, and ``x-kubernetes-*`` extensions and ``format`` are dropped.
    An object with properties rejects other keys, where the API server would
    prune them or reject them, depending on the client's field validation.
    CEL rules (``x-kubernetes-validations``) have no JSON Schema form, so the
    API server alone checks them.
    """
    out: dict[str, Any] = {key: node[key] for key in _COPIED_KEYWORDS if key in node}
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if node.get(exclusive) is True:
            out[exclusive] = out.pop(bound)
    if "properties" in node:
        out["properties"] = {
            name: crd_to_json_schema(child) for name, child in node["properties"].items()
        }
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), Mapping):
        out["additionalProperties"] = crd_to_json_schema(node["additionalProperties"])
    if "items" in node:
        out["items"] = crd_to_json_schema(node["items"])
    if "anyOf" in node:
        out["anyOf"] = [crd_to_json_schema(option) for option in node["anyOf"]]
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def render_values_schema(current: str) -> str:
    schema = json.loads(current)
    spec = crd_to_json_schema(crd_schema(load_crd())["properties"]["spec"])
    schema["properties"]["proxy"]["properties"]["spec"] = spec
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


# ---- Main -------------------------------------------------------------------------


def desired_files() -> dict[Path, str]:
    """Return the generated content of every file this tool writes."""
    return {
        CHART_CRD_PATH: CRD_PATH.read_text(encoding="utf-8"),
        VALUES_SCHEMA_PATH: render_values_schema(VALUES_SCHEMA_PATH.read_text(encoding="utf-8")),
        DOCS_PATH: render_docs(DOCS_PATH.read_text(encoding="utf-8"), generated_blocks()),
    }


def stale_files() -> dict[Path, str]:
    """Return a unified diff for each file whose content differs from the generated one."""
    diffs = {}
    for path, desired in desired_files().items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != desired:
            relative = str(path.relative_to(REPO_ROOT))
            diffs[path] = "".join(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    desired.splitlines(keepends=True),
                    f"{relative} (committed)",
                    f"{relative} (generated)",
                )
            )
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is stale"
    )
    args = parser.parse_args(argv)
    diffs = stale_files()
    if args.check:
        for diff in diffs.values():
            sys.stdout.write(diff)
        if diffs:
            print(f"{len(diffs)} file(s) are stale; run: python tools/gen-config-docs.py")
        return 1 if diffs else 0
    for path, content in desired_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    for path in diffs:
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Conversion of a pydantic JSON Schema into a Kubernetes structural schema.

Pydantic writes JSON Schema 2020-12; a CRD takes the OpenAPI v3.0 subset that
Kubernetes calls a structural schema. The conversion inlines every ``$ref``,
turns ``anyOf [X, null]`` into ``X`` with ``nullable: true``, rewrites numeric
``exclusiveMinimum``/``exclusiveMaximum`` into OpenAPI's boolean form, and drops
what the API server rejects (``additionalProperties: false``, ``title``, a null
``default``). Descriptions, defaults, enums and bounds are kept.

A construct without a structural equivalent (a recursive model, a tuple, a
union of objects) raises ``UnsupportedSchemaError`` with its path. A change to
the proxy's config model then fails the CRD generator, instead of producing a
schema that the API server rejects.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["UnsupportedSchemaError", "to_structural"]

# Keywords the API server accepts and that carry over unchanged.
_KEPT = frozenset(
    {
        "type",
        "description",
        "default",
        "enum",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "multipleOf",
        "required",
        "nullable",
    }
)
# Keywords with no meaning for validation, or none that the API server accepts.
_DROPPED = frozenset({"title", "examples", "writeOnly", "readOnly", "$defs", "$schema"})
# Formats the API server knows (k8s.io/kube-openapi/pkg/validation/strfmt);
# any other format would have no effect there, so it is dropped.
_FORMATS = frozenset(
    {"byte", "date", "date-time", "duration", "hostname", "ipv4", "ipv6", "cidr", "uri", "uuid"}
)

# Keywords come out in this order, the rest alphabetically after them, so the
# generated YAML reads type and description first and stays stable.
_ORDER = ("type", "description", "nullable", "default", "enum", "required", "properties")


def _keyword_rank(item: tuple[str, Any]) -> tuple[int, str]:
    key = item[0]
    return (_ORDER.index(key) if key in _ORDER else len(_ORDER), key)


class UnsupportedSchemaError(ValueError):
    """A JSON Schema construct without a structural-schema equivalent."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path or '<root>'}: {reason}")
        self.path = path


def to_structural(schema: dict[str, Any]) -> dict[str, Any]:
    """Convert a pydantic JSON Schema (with its ``$defs``) into a structural schema."""
    definitions = schema.get("$defs", {})
    return _convert(schema, definitions, path="", seen=())


def _convert(
    node: dict[str, Any], definitions: dict[str, Any], path: str, seen: tuple[str, ...]
) -> dict[str, Any]:
    node = _collapse_nullable(node)
    node, seen = _inline_reference(node, definitions, path, seen)
    if "anyOf" in node:
        return _convert_int_or_string(node, path)
    result: dict[str, Any] = {}
    for key, value in sorted(node.items(), key=_keyword_rank):
        _convert_keyword(result, key, value, definitions, path, seen)
    if result.get("default", 0) is None:
        del result["default"]
    return result


def _convert_keyword(
    result: dict[str, Any],
    key: str,
    value: Any,
    definitions: dict[str, Any],
    path: str,
    seen: tuple[str, ...],
) -> None:
    if key == "properties":
        result[key] = {
            name: _convert(child, definitions, f"{path}.{name}", seen)
            for name, child in value.items()
        }
    elif key == "items":
        result[key] = _convert(value, definitions, f"{path}[]", seen)
    elif key == "additionalProperties":
        _convert_additional_properties(result, value, definitions, path, seen)
    elif key in ("exclusiveMinimum", "exclusiveMaximum"):
        bound = "minimum" if key == "exclusiveMinimum" else "maximum"
        result[bound] = value
        result[key] = True
    elif key == "const":
        result["enum"] = [value]
    elif key == "uniqueItems":
        if value:
            # The API server rejects uniqueItems; a set-typed list enforces it.
            result["x-kubernetes-list-type"] = "set"
    elif key == "format":
        if value in _FORMATS:
            result[key] = value
    elif key in _KEPT or key.startswith("x-kubernetes-"):
        result[key] = copy.deepcopy(value)
    elif key not in _DROPPED:
        raise UnsupportedSchemaError(path, f"keyword {key!r} is not supported")


def _convert_additional_properties(
    result: dict[str, Any],
    value: Any,
    definitions: dict[str, Any],
    path: str,
    seen: tuple[str, ...],
) -> None:
    if value is False:
        # Structural schemas prune unknown fields, and strict field validation
        # rejects them, so "false" is implied (and the API server forbids it).
        return
    if value is True:
        raise UnsupportedSchemaError(path, "free-form objects are not structural")
    result["additionalProperties"] = _convert(value, definitions, f"{path}.*", seen)


def _inline_reference(
    node: dict[str, Any], definitions: dict[str, Any], path: str, seen: tuple[str, ...]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Replace a ``$ref`` (or a one-element ``allOf``) by its target, keeping siblings."""
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
    reference = node.get("$ref")
    if reference is None:
        return node, seen
    name = reference.removeprefix("#/$defs/")
    if name in seen:
        raise UnsupportedSchemaError(path, f"recursive reference to {name}")
    if name not in definitions:
        raise UnsupportedSchemaError(path, f"unresolved reference {reference}")
    siblings = {key: value for key, value in node.items() if key != "$ref"}
    # A field's own description and default override the referenced model's.
    return {**definitions[name], **siblings}, (*seen, name)


def _collapse_nullable(node: dict[str, Any]) -> dict[str, Any]:
    """Turn ``anyOf: [X, {type: null}]`` into X with ``nullable: true``."""
    branches = node.get("anyOf")
    if not branches:
        return node
    others = [branch for branch in branches if branch != {"type": "null"}]
    if len(others) == len(branches) or len(others) != 1:
        return node
    merged = {key: value for key, value in node.items() if key != "anyOf"}
    return {**others[0], **merged, "nullable": True}


def _convert_int_or_string(node: dict[str, Any], path: str) -> dict[str, Any]:
    """Accept only the integer-or-string union, which Kubernetes marks specially."""
    types = sorted(branch.get("type", "") for branch in node["anyOf"])
    if types != ["integer", "string"] or not node.get("x-kubernetes-int-or-string"):
        raise UnsupportedSchemaError(path, "anyOf is supported only for int-or-string and null")
    result = {key: copy.deepcopy(value) for key, value in node.items() if key != "title"}
    result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return result

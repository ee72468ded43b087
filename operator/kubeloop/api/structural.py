"""Turn pydantic JSON Schemas into Kubernetes *structural* OpenAPI v3 schemas.

pydantic speaks JSON Schema 2020-12; CRDs need the OpenAPI v3.0 dialect with Kubernetes'
structural rules: no $ref, a type on every node, nullable instead of unions with null, boolean
exclusiveMinimum/Maximum, no titles, and x-kubernetes-preserve-unknown-fields for free-form data.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

Schema = dict[str, Any]

PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
# JSON Schema keys with no meaning (or no place) in a CRD schema.
_DROPPED_KEYS = frozenset({"title", "examples", "$schema", "readOnly", "writeOnly"})
_EXCLUSIVE_BOUNDS = {"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}


class StructuralSchemaError(ValueError):
    """The model uses a construct that has no structural equivalent."""


class KubeJsonSchema(GenerateJsonSchema):
    """pydantic's generator, but defaults from default_factory are written too.

    A nested model's default is written in full (unset optional fields left out): the API server
    checks defaults against CEL rules *without* applying the nested defaults first, so a bare `{}`
    would fail any rule reading a defaulted field.
    """

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()  # type: ignore[call-arg]
        return super().get_default_value(schema)

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, BaseModel):
            return _dump(dft)
        if isinstance(dft, list) and any(isinstance(item, BaseModel) for item in dft):
            return [_dump(item) if isinstance(item, BaseModel) else item for item in dft]
        return super().encode_default(dft)


def _dump(model: BaseModel) -> Any:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def model_schema(model: type[BaseModel]) -> Schema:
    """The structural schema of `model`, every $ref inlined."""
    raw = model.model_json_schema(by_alias=True, schema_generator=KubeJsonSchema)
    definitions = raw.pop("$defs", {})
    return _convert(raw, definitions)


def without_defaults(schema: Schema) -> Schema:
    """A copy of `schema` with no default anywhere (status must not be invented by the API server)."""
    stripped: Schema = {}
    for key, value in schema.items():
        if key == "default":
            continue
        if key == "properties":
            stripped[key] = {name: without_defaults(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            stripped[key] = without_defaults(value)
        else:
            stripped[key] = value
    return stripped


def _convert(node: Schema, definitions: dict[str, Schema]) -> Schema:
    node = _collapse_nullable(_inline(node, definitions), definitions)
    if not node or set(node) <= {"description"}:
        # `Any`: keep whatever the user wrote (pruning would drop it).
        return {**node, PRESERVE_UNKNOWN: True}
    converted: Schema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        _convert_key(converted, key, value, definitions)
    if converted.get("default", ...) is None:
        del converted["default"]  # Optional fields: absent means unset; `default: null` would be invalid
    if "type" not in converted and not converted.get(INT_OR_STRING) and not converted.get(PRESERVE_UNKNOWN):
        raise StructuralSchemaError(f"schema node without a type: {node}")
    return converted


def _convert_key(converted: Schema, key: str, value: Any, definitions: dict[str, Schema]) -> None:
    if key == "properties":
        converted[key] = {name: _convert(sub, definitions) for name, sub in value.items()}
    elif key == "items":
        converted[key] = _convert(value, definitions)
    elif key == "additionalProperties":
        if value is True:
            converted[PRESERVE_UNKNOWN] = True
        elif isinstance(value, dict):
            converted[key] = _convert(value, definitions)
        # False (extra="forbid"): the API server prunes unknown fields anyway.
    elif key == "const":
        converted["enum"] = [value]
    elif key in _EXCLUSIVE_BOUNDS and not isinstance(value, bool):
        converted[_EXCLUSIVE_BOUNDS[key]] = value
        converted[key] = True
    elif key == "anyOf":
        converted[key] = _int_or_string_branches(value, converted)
    elif key in ("oneOf", "allOf", "not", "discriminator"):
        raise StructuralSchemaError(f"{key} has no structural equivalent here: {value}")
    else:
        converted[key] = copy.deepcopy(value)


def _inline(node: Schema, definitions: dict[str, Schema]) -> Schema:
    """Replace a $ref (or a single-element allOf) by its target; keys next to it win."""
    reference = node.get("$ref")
    if reference is None and len(node.get("allOf", ())) == 1:
        reference = node["allOf"][0].get("$ref")
    if reference is None:
        return node
    target = definitions[reference.rsplit("/", 1)[-1]]
    siblings = {key: value for key, value in node.items() if key not in ("$ref", "allOf")}
    return _inline({**copy.deepcopy(target), **siblings}, definitions)


def _collapse_nullable(node: Schema, definitions: dict[str, Schema]) -> Schema:
    """`anyOf: [X, {type: null}]` becomes X with `nullable: true`."""
    branches = node.get("anyOf")
    if not branches or {"type": "null"} not in branches:
        return node
    others = [branch for branch in branches if branch != {"type": "null"}]
    if len(others) != 1:
        raise StructuralSchemaError(f"unions other than Optional[X] are not structural: {branches}")
    siblings = {key: value for key, value in node.items() if key != "anyOf"}
    return {**_inline(others[0], definitions), **siblings, "nullable": True}


def _int_or_string_branches(branches: list[JsonSchemaValue], converted: Schema) -> list[JsonSchemaValue]:
    # The one union Kubernetes allows: integer-or-string, flagged by x-kubernetes-int-or-string.
    if branches != [{"type": "integer"}, {"type": "string"}]:
        raise StructuralSchemaError(f"anyOf other than int-or-string is not structural: {branches}")
    converted[INT_OR_STRING] = True
    return copy.deepcopy(branches)

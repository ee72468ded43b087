"""The generated schemas are structural and documented. The API server checks the defaults against
the schema when it accepts the CRDs, and applies them: tests/cluster/test_crds.py."""

from __future__ import annotations

from typing import Any

import pytest

from kubeloop.api import crdgen
from kubeloop.api.structural import StructuralSchemaError, model_schema
from kubeloop.api.v1alpha1 import KINDS
from kubeloop.api.v1alpha1.common import KubeModel
from tests.unit.api.crd_tools import CRD_DIR, iter_nodes, load_yaml, root_schema

FORBIDDEN_KEYS = {"$ref", "$defs", "definitions", "title", "allOf", "oneOf", "not", "const", "examples"}
# Top-level type meta fields follow the Kubernetes convention (metadata is described by the server).
UNDESCRIBED_OK = {".metadata", ".metadata.name", ".metadata.generateName"}


def _schemas() -> list[tuple[str, dict[str, Any]]]:
    return [(kind.kind, root_schema(load_yaml(CRD_DIR / crdgen.crd_filename(kind)))) for kind in KINDS]


SCHEMAS = _schemas()
NODES = [(kind, path, node) for kind, schema in SCHEMAS for path, node in iter_nodes(schema)]


def _node_id(entry: tuple[str, str, dict[str, Any]]) -> str:
    return f"{entry[0]}{entry[1] or '.'}"


def test_there_are_many_nodes_to_check() -> None:
    assert len(NODES) > 300


@pytest.mark.parametrize(("kind", "path", "node"), NODES, ids=[_node_id(n) for n in NODES])
def test_node_is_structural(kind: str, path: str, node: dict[str, Any]) -> None:
    assert not FORBIDDEN_KEYS & set(node), f"{kind}{path} has {FORBIDDEN_KEYS & set(node)}"
    typed = "type" in node
    assert typed or node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
    if "anyOf" in node:
        assert node.get("x-kubernetes-int-or-string") is True
        assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable"):
        assert typed, "nullable without a type"
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if bound in node:
            assert node[bound] is True and bound.replace("exclusiveM", "m") in node
    assert not isinstance(node.get("additionalProperties"), bool)
    if "additionalProperties" in node:
        assert "properties" not in node
    if node.get("type") == "array":
        assert isinstance(node.get("items"), dict)
    if node.get("type") == "object" and path not in UNDESCRIBED_OK:
        has_shape = "properties" in node or "additionalProperties" in node
        assert has_shape or node.get("x-kubernetes-preserve-unknown-fields"), f"{kind}{path}: empty object"


@pytest.mark.parametrize(("kind", "schema"), SCHEMAS, ids=[kind for kind, _ in SCHEMAS])
def test_every_property_has_a_description(kind: str, schema: dict[str, Any]) -> None:
    missing = [
        path
        for path, node in iter_nodes(schema)
        if path
        and not path.endswith(("[]", "{}"))
        and path not in UNDESCRIBED_OK
        and not node.get("description")
    ]
    assert not missing, f"{kind}: properties without description: {missing}"


@pytest.mark.parametrize(("kind", "schema"), SCHEMAS, ids=[kind for kind, _ in SCHEMAS])
def test_status_has_no_defaults(kind: str, schema: dict[str, Any]) -> None:
    defaulted = [path for path, node in iter_nodes(schema["properties"]["status"]) if "default" in node]
    assert defaulted == [], f"{kind}: the API server would invent status fields {defaulted}"


def test_conditions_are_a_map_list_keyed_by_type() -> None:
    for kind, schema in SCHEMAS:
        conditions = schema["properties"]["status"]["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map", kind
        assert conditions["x-kubernetes-list-map-keys"] == ["type"], kind
        item = conditions["items"]
        assert set(item["required"]) == {"type", "status", "reason", "lastTransitionTime"}
        assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
        assert item["properties"]["lastTransitionTime"]["format"] == "date-time"
        assert item["properties"]["reason"]["pattern"] == "^[A-Z][A-Za-z0-9]*$"


def test_every_status_has_observed_generation_phase_and_conditions() -> None:
    for kind, schema in SCHEMAS:
        status = schema["properties"]["status"]["properties"]
        assert {"observedGeneration", "phase", "conditions"} <= set(status), kind
        assert status["phase"]["enum"], kind


def test_free_form_maps_keep_unknown_fields_or_type_their_values() -> None:
    spec = dict(SCHEMAS)["TrainingRun"]["properties"]["spec"]["properties"]
    params = spec["algorithm"]["properties"]["params"]
    assert params == {**params, "type": "object", "x-kubernetes-preserve-unknown-fields": True}
    space = spec["algorithm"]["properties"]["search"]["properties"]["space"]
    assert space["additionalProperties"]["type"] == "object"
    mv = dict(SCHEMAS)["ModelVersion"]["properties"]["spec"]["properties"]
    assert mv["metrics"]["additionalProperties"] == {"type": "number"}


def test_optional_fields_are_nullable_not_unions() -> None:
    version = dict(SCHEMAS)["ModelDeployment"]["properties"]["spec"]["properties"]["version"]
    assert version == {**version, "type": "integer", "nullable": True, "minimum": 1}
    assert "default" not in version


def test_quantities_are_int_or_string() -> None:
    resources = dict(SCHEMAS)["TrainingRun"]["properties"]["spec"]["properties"]["resources"]
    quantity = resources["properties"]["requests"]["additionalProperties"]
    assert quantity["x-kubernetes-int-or-string"] is True
    assert "pattern" in quantity


def test_exclusive_bounds_use_the_openapi_v3_boolean_form() -> None:
    split = dict(SCHEMAS)["TrainingRun"]["properties"]["spec"]["properties"]["split"]
    fraction = split["properties"]["testFraction"]
    assert fraction["minimum"] == 0 and fraction["exclusiveMinimum"] is True
    assert fraction["maximum"] == 1 and fraction["exclusiveMaximum"] is True


def test_nested_model_defaults_are_complete() -> None:
    # The API server validates a default against CEL rules without applying nested defaults.
    spec = dict(SCHEMAS)["ModelDeployment"]["properties"]["spec"]["properties"]
    assert spec["rollout"]["default"]["strategy"] == "Canary"
    assert spec["rollout"]["default"]["shadow"] == {"percent": 100, "duration": "15m"}
    assert spec["rollout"]["default"]["steps"] == [
        {"weight": 10, "duration": "5m"},
        {"weight": 50, "duration": "10m"},
    ]
    assert spec["rollout"]["default"]["analysis"]["maxErrorRate"] == 0.01


def test_unions_other_than_optional_are_refused() -> None:
    class Ambiguous(KubeModel):
        value: float | str

    with pytest.raises(StructuralSchemaError, match="not structural"):
        model_schema(Ambiguous)

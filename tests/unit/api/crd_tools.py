"""Reading the checked-in CRDs and examples. What the API server does with them (defaulting,
validation, CEL) is tested against a real kube-apiserver in tests/cluster/test_crds.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
CRD_DIR = REPO / "crds"
EXAMPLES_DIR = REPO / "manifests" / "examples"
VALIDATIONS = "x-kubernetes-validations"

Schema = dict[str, Any]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def root_schema(crd: dict[str, Any]) -> Schema:
    schema: Schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def iter_nodes(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node with a readable path (`.spec.rollout.steps[]`, `.spec.params{}`)."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from iter_nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from iter_nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from iter_nodes(schema["additionalProperties"], f"{path}{{}}")

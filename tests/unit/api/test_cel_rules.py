"""CEL rules: well-formed, cheap for the API server's cost estimator, and twinned in the pydantic models.

The real kube-apiserver enforces the rules in tests/cluster/test_crds.py, on the table of invalid
manifests in tests/cluster/invalid_manifests.py; here the models must reject that same table, with
the same message wherever the server's message comes from a CEL rule."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from kubeloop.api import crdgen
from kubeloop.api.v1alpha1 import KINDS, kind_info
from kubeloop.api.v1alpha1.batchprediction import SCHEDULE_FIXED
from kubeloop.api.v1alpha1.modelversion import SPEC_IMMUTABLE
from tests.cluster.invalid_manifests import INVALID, Invalid
from tests.unit.api.crd_tools import CRD_DIR, VALIDATIONS, iter_nodes, load_yaml, root_schema

SCHEMAS = {kind.kind: root_schema(load_yaml(CRD_DIR / crdgen.crd_filename(kind))) for kind in KINDS}
RULES = [
    (kind, path or ".", node, rule)
    for kind, schema in SCHEMAS.items()
    for path, node in iter_nodes(schema)
    for rule in node.get(VALIDATIONS, [])
]
RULE_IDS = [f"{kind}{path}:{rule['rule'][:40]}" for kind, path, _, rule in RULES]
FIELD_CHAIN = re.compile(r"\bself((?:\.[A-Za-z_]\w*)+)(\()?")


# --- static checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "path", "node", "rule"), RULES, ids=RULE_IDS)
def test_rule_is_well_formed(kind: str, path: str, node: dict[str, Any], rule: dict[str, str]) -> None:
    assert {"rule", "message"} <= set(rule) <= {"rule", "message", "fieldPath"}
    if "fieldPath" in rule:
        assert _resolve(node, rule["fieldPath"].strip(".").split(".")), "fieldPath must exist in the schema"
    assert rule["message"] and not rule["message"].endswith("."), "messages are fragments, no final period"
    text = re.sub(r"'[^']*'", "''", rule["rule"])  # string literals may hold brackets
    assert rule["rule"].count("'") % 2 == 0, "unbalanced quotes"
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1, "[": 1, "]": -1}.get(char, 0)
        assert depth >= 0, "closing bracket without an opening one"
    assert depth == 0, "unclosed bracket"


@pytest.mark.parametrize(("kind", "path", "node", "rule"), RULES, ids=RULE_IDS)
def test_rule_reads_only_declared_guarded_fields(
    kind: str, path: str, node: dict[str, Any], rule: dict[str, str]
) -> None:
    """Every `self.a.b` exists, is visible to CEL, and is required, defaulted or guarded by has()."""
    for match in FIELD_CHAIN.finditer(rule["rule"]):
        chain = match.group(1).strip(".").split(".")
        if match.group(2):  # `self.x.matches(` : the last name is a method
            chain = chain[:-1]
        current = node
        for depth, name in enumerate(chain):
            if chain[: depth + 1] in (["metadata"], ["metadata", "name"]):
                current = current["properties"][name]
                continue
            assert name in current.get("properties", {}), f"self.{'.'.join(chain)}: no field {name!r}"
            child = current["properties"][name]
            assert _visible_to_cel(child), f"self.{'.'.join(chain)} is not visible to CEL"
            guarded = f"has(self.{'.'.join(chain[: depth + 1])})" in rule["rule"]
            required = name in current.get("required", []) or "default" in child
            assert guarded or required, f"self.{'.'.join(chain)} may be absent: guard it with has()"
            current = child


@pytest.mark.parametrize(("kind", "path", "node", "rule"), RULES, ids=RULE_IDS)
def test_collections_and_strings_read_by_rules_are_bounded(
    kind: str, path: str, node: dict[str, Any], rule: dict[str, str]
) -> None:
    """The API server estimates rule cost from maxItems/maxProperties/maxLength; unbounded means 3 MiB."""
    touched = [node] + [
        _resolve(node, match.group(1).strip(".").split(".")[: -1 if match.group(2) else None])
        for match in FIELD_CHAIN.finditer(rule["rule"])
    ]
    for target in touched:
        if target.get("type") == "array":
            assert "maxItems" in target, rule
            assert target["items"].get("type") != "string" or "maxLength" in target["items"], rule
        if target.get("type") == "object" and "additionalProperties" in target:
            assert "maxProperties" in target, rule
        if target.get("type") == "string" and "enum" not in target and ".matches(" in rule["rule"]:
            assert "maxLength" in target, rule


def _visible_to_cel(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "array":
        return _visible_to_cel(schema["items"])
    return "type" in schema or bool(schema.get("x-kubernetes-int-or-string"))


def _resolve(node: dict[str, Any], chain: list[str]) -> dict[str, Any]:
    for name in chain:
        node = node["properties"][name]
    return node


# --- the pydantic twins reject what the API server rejects -------------------------------------


def _validate(case: Invalid) -> None:
    manifest = case.manifest()
    kind_info(manifest["kind"]).resource_model.model_validate(manifest)


@pytest.mark.parametrize("case", INVALID, ids=[case.id for case in INVALID])
def test_pydantic_rejects_what_the_server_rejects(case: Invalid) -> None:
    if case.server_only:
        _validate(case)  # documented gap: when pydantic learns to reject it, drop server_only
    elif case.rule is not None:
        with pytest.raises(ValidationError, match=re.escape(case.message)):
            _validate(case)
    else:
        with pytest.raises(ValidationError):
            _validate(case)


def test_every_rule_has_a_rejecting_case() -> None:
    messages = {rule["message"] for _, _, _, rule in RULES}
    covered = {case.message for case in INVALID if case.rule is not None}
    transition_rules = {rule["message"] for _, _, _, rule in RULES if "oldSelf" in rule["rule"]}
    assert covered <= messages, "the table names a rule the CRDs do not have"
    # Transition rules run on updates only: test_model_version_spec_edits_are_rejected and
    # test_batch_prediction_schedule_cannot_be_added_or_removed (cluster).
    assert messages - covered == transition_rules == {SPEC_IMMUTABLE.message, SCHEDULE_FIXED.message}


def test_the_table_is_big_and_varied() -> None:
    assert len(INVALID) >= 30
    assert len({case.id for case in INVALID}) == len(INVALID), "case names must be unique per kind"
    assert {case.kind for case in INVALID} == {kind.kind for kind in KINDS}
    assert len({case.message for case in INVALID}) >= 40

"""The core planner: conditions move only on change, bad specs become conditions, Events on transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeloop.planning import batchprediction, modeldeployment, modelmonitor, modelversion, trainingrun
from kubeloop.planning.conditions import set_condition
from kubeloop.planning.core import KindPolicy, plan_core

EXAMPLES = Path(__file__).resolve().parents[3] / "manifests" / "examples"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
POLICIES = {"TrainingRun": trainingrun.POLICY, "ModelVersion": modelversion.POLICY,
            "ModelDeployment": modeldeployment.POLICY, "ModelMonitor": modelmonitor.POLICY,
            "BatchPrediction": batchprediction.POLICY}  # fmt: skip


def example(kind: str, generation: int = 1) -> dict[str, Any]:
    for path in EXAMPLES.glob("*.yaml"):
        body = yaml.safe_load(path.read_text())
        if body["kind"] == kind:
            body["metadata"].update(generation=generation, uid="u", namespace="ns")
            return dict(body)
    raise LookupError(kind)


def test_condition_time_moves_only_when_status_changes() -> None:
    first = set_condition([], "Ready", False, "Waiting", "a", generation=1, now=T0)
    same = set_condition(first, "Ready", False, "StillWaiting", "b", generation=2, now=T1)
    flipped = set_condition(same, "Ready", True, "Done", "c", generation=2, now=T1)
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert (same[0]["reason"], same[0]["observedGeneration"]) == ("StillWaiting", 2)
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:05:00Z"
    assert len(flipped) == 1


@pytest.mark.parametrize(
    ("kind", "phase", "condition"),
    [("TrainingRun", "Pending", "Succeeded"), ("ModelVersion", "Pending", "Validated"),
     ("ModelDeployment", "Progressing", "Available"), ("ModelMonitor", "InsufficientData", "Healthy"),
     ("BatchPrediction", "Pending", "Succeeded")],
)  # fmt: skip
def test_first_reconcile_of_each_example(kind: str, phase: str, condition: str) -> None:
    plan = plan_core(POLICIES[kind], example(kind), T0)
    assert plan.status["observedGeneration"] == 1 and plan.status["phase"] == phase
    assert [c["type"] for c in plan.status["conditions"]] == [condition]
    assert [(e.type, e.reason) for e in plan.events] == [("Normal", phase)]


@pytest.mark.parametrize("kind", POLICIES)
def test_second_reconcile_changes_nothing_and_says_nothing(kind: str) -> None:
    resource = example(kind)
    resource["status"] = plan_core(POLICIES[kind], resource, T0).status
    again = plan_core(POLICIES[kind], resource, T1)
    assert not again.changes(resource["status"]) and again.events == []


def test_spec_error_beyond_cel_is_a_condition_a_warning_and_recovers() -> None:
    policy: KindPolicy = trainingrun.POLICY
    resource = example("TrainingRun")
    resource["spec"]["algorithm"]["params"]["max_depth"] = 3  # also in the search space
    bad = plan_core(policy, resource, T0)
    assert bad.status["phase"] == "Failed"
    invalid = next(c for c in bad.status["conditions"] if c["type"] == "InvalidSpec")
    assert invalid["message"] == (
        "spec.algorithm.params.max_depth: also searched in spec.algorithm.search.space; keep one"
    )
    assert [(e.type, e.reason) for e in bad.events] == [("Warning", "InvalidSpec"), ("Normal", "Failed")]
    resource["status"] = bad.status
    assert plan_core(policy, resource, T1).events == []  # the same problem is not announced twice

    del resource["spec"]["algorithm"]["params"]["max_depth"]
    resource["metadata"]["generation"] = 2
    fixed = plan_core(policy, resource, T1)
    assert fixed.status["phase"] == "Pending"
    assert [c["type"] for c in fixed.status["conditions"]] == ["Succeeded"]


def test_pydantic_rule_failures_name_the_field_as_users_write_it() -> None:
    resource = example("TrainingRun")
    resource["spec"]["split"]["testFraction"] = 1.5
    plan = plan_core(trainingrun.POLICY, resource, T0)
    invalid = next(c for c in plan.status["conditions"] if c["type"] == "InvalidSpec")
    assert invalid["message"] == "spec.split.testFraction: Input should be less than 1"


def test_core_leaves_phase_alone_once_the_kind_controller_owns_it() -> None:
    resource = example("TrainingRun")
    controller_condition = {
        "type": "Succeeded",
        "status": "Unknown",
        "reason": "Training",
        "message": "2 of 3 trials done",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    resource["status"] = {
        "phase": "Searching",
        "startTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 1,
        "conditions": [controller_condition],
    }
    plan = plan_core(trainingrun.POLICY, resource, T1)
    assert plan.status["phase"] == "Searching"
    assert plan.status["conditions"] == [controller_condition]

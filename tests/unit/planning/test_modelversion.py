"""ModelVersion validation: a Job, then Ready/Candidate or Failed/Rejected with an audit entry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubeloop.api.v1alpha1 import ModelVersionSpec
from kubeloop.planning.jobs import JobState
from kubeloop.planning.modelversion import plan_version, validation_job_name
from tests.unit.planning.test_core import example
from tests.unit.planning.test_trainingrun import SETTINGS

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def version(**status: Any) -> tuple[dict[str, Any], ModelVersionSpec]:
    resource = example("ModelVersion")
    resource["status"] = {"phase": "Pending", "conditions": [], **status}
    return resource, ModelVersionSpec.model_validate(resource["spec"])


def test_pending_version_gets_a_validation_job_with_the_server_image() -> None:
    resource, spec = version()
    plan = plan_version(resource, spec, None, SETTINGS, NOW)
    (job,) = plan.create
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["args"]) == ("kubeloop/server:t", ["validate"])
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KUBELOOP_MODEL_SHA256"] == spec.artifact.sha256
    assert env["KUBELOOP_CARD_URI"].endswith("/model.json")
    assert plan.status["phase"] == "Validating"


def test_passing_validation_makes_a_candidate_once() -> None:
    resource, spec = version(phase="Validating")
    ok = JobState(
        "v", complete=True, results=[{"ok": True, "reason": "Validated", "message": "golden rows match"}]
    )
    plan = plan_version(resource, spec, ok, SETTINGS, NOW)
    assert (plan.status["phase"], plan.status["stage"]) == ("Ready", "Candidate")
    assert plan.status["stageHistory"] == [
        {"stage": "Candidate", "at": "2026-01-01T00:00:00Z", "reason": "validated", "by": "kubeloop-operator"}
    ]
    again = plan_version({**resource, "status": plan.status}, spec, ok, SETTINGS, NOW)
    assert again.events == [] and len(again.status["stageHistory"]) == 1


def test_failing_validation_rejects_with_the_reason() -> None:
    resource, spec = version(phase="Validating")
    bad = JobState(
        "v", failed=True, results=[{"ok": False, "reason": "DigestMismatch", "message": "sha256 differs"}]
    )
    plan = plan_version(resource, spec, bad, SETTINGS, NOW)
    assert (plan.status["phase"], plan.status["stage"]) == ("Failed", "Rejected")
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "Rejected")]


def test_long_names_still_make_valid_job_names() -> None:
    name = validation_job_name({"metadata": {"name": "m" * 60 + "-v12"}})
    assert len(name) <= 63 and name.endswith("-validate")

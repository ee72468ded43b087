"""ModelVersion: a registry entry is validated by a short Job before anything may serve it.

Pending -> Validating (Job: download, sha256, load in onnxruntime, replay the golden rows)
        -> Ready, stage Candidate   |   Failed, stage Rejected (the reason in Validated)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from kubeloop.api.v1alpha1 import ModelVersionSpec
from kubeloop.contracts.results import ValidationResult
from kubeloop.contracts.tasks import EXIT_PERMANENT
from kubeloop.planning.conditions import put_condition, timestamp
from kubeloop.planning.core import Event, KindPolicy, Summary
from kubeloop.planning.jobs import JobState, failure, last_result
from kubeloop.planning.workloads import WorkloadSettings, container, labels_for, owned, pod_spec, store_env
from kubeloop.store.layout import CARD_FILE

Obj = dict[str, Any]
VALIDATION_DEADLINE = 600
OPERATOR = "kubeloop-operator"


def summarize(spec: BaseModel, status: dict[str, Any]) -> Summary | None:
    if status.get("phase") in ("Validating", "Ready") or status.get("stage"):
        return None
    return Summary(
        "Pending", "Validated", None, "ValidationPending", "the artifact has not been validated yet"
    )


POLICY = KindPolicy(ModelVersionSpec, summarize, "Failed", "Validated")


def validation_job_name(version: Obj) -> str:
    """`<name>-validate`, shortened with a hash when needed: Job names end up in 63-character labels."""
    name = version["metadata"]["name"]
    if len(name) <= 54:
        return f"{name}-validate"
    return f"{name[:44]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}-validate"


def validation_job(version: Obj, spec: ModelVersionSpec, settings: WorkloadSettings) -> Obj:
    artifact = spec.artifact.uri
    env = [
        {"name": "KUBELOOP_MODEL_NAME", "value": spec.model},
        {"name": "KUBELOOP_MODEL_VERSION", "value": str(spec.version)},
        {"name": "KUBELOOP_MODEL_URI", "value": artifact},
        {"name": "KUBELOOP_MODEL_SHA256", "value": spec.artifact.sha256},
        {"name": "KUBELOOP_CARD_URI", "value": artifact.rsplit("/", 1)[0] + "/" + CARD_FILE},
        *store_env(settings),
    ]
    labels = labels_for("validator", version["metadata"]["name"], {"kubeloop.io/model": spec.model})
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": validation_job_name(version), "labels": labels},
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": VALIDATION_DEADLINE,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": "validator",
                            "operator": "In",
                            "values": [EXIT_PERMANENT],
                        },
                    }
                ]
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": pod_spec(
                    [
                        container(
                            "validator",
                            settings.server_image,
                            env,
                            args=["validate"],
                            pull_policy=settings.pull_policy,
                        )
                    ],
                    restart_policy="Never",
                ),
            },
        },
    }
    return owned(job, version)


@dataclass
class VersionPlan:
    status: Obj
    events: list[Event] = field(default_factory=list)
    create: list[Obj] = field(default_factory=list)


def enter_stage(status: Obj, stage: str, reason: str, by: str, now: datetime) -> Event | None:
    """Move to `stage` with an audit entry; nothing when already there."""
    if status.get("stage") == stage:
        return None
    status["stage"] = stage
    entry = {"stage": stage, "at": timestamp(now), "reason": reason, "by": by}
    status["stageHistory"] = [*(status.get("stageHistory") or []), entry][-100:]
    return Event("Warning" if stage == "Rejected" else "Normal", stage, f"stage {stage}: {reason} (by {by})")


def plan_version(
    version: Obj, spec: ModelVersionSpec, job: JobState | None, settings: WorkloadSettings, now: datetime
) -> VersionPlan:
    plan = VersionPlan(dict(version.get("status") or {}))
    status, generation = plan.status, version["metadata"].get("generation")

    def validated(value: bool | None, reason: str, message: str) -> None:
        put_condition(status, "Validated", value, reason, message, generation=generation, now=now)

    if spec.primary_metric is not None and spec.primary_metric.value in spec.metrics:
        status["score"] = spec.metrics[spec.primary_metric.value]
    if status.get("phase") in ("Ready", "Failed"):
        return plan
    if job is None:
        plan.create.append(validation_job(version, spec, settings))
        status["phase"] = "Validating"
        plan.events.append(
            Event("Normal", "Validating", f"validation Job {validation_job_name(version)} started")
        )
        validated(None, "Validating", "checking digest, loading in onnxruntime, replaying the golden rows")
        return plan
    verdict = last_result(job, ValidationResult)
    if job.complete and verdict is not None and verdict.ok:
        status["phase"] = "Ready"
        validated(True, "Validated", verdict.message)
        event = enter_stage(status, "Candidate", "validated", OPERATOR, now)
    elif job.failed or (verdict is not None and not verdict.ok):
        reason, message = (verdict.reason, verdict.message) if verdict else failure(
            job, "ValidationFailed", "the validation Job failed")  # fmt: skip
        status["phase"] = "Failed"
        validated(False, reason, message)
        event = enter_stage(status, "Rejected", f"validation failed: {reason}", OPERATOR, now)
    else:
        waiting = "; ".join(job.waiting)
        validated(
            None, "Validating", f"validation running; waiting: {waiting}" if waiting else "validation running"
        )
        return plan
    plan.events.extend(e for e in (event,) if e is not None)
    return plan

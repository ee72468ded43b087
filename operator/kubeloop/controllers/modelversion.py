"""ModelVersion handlers: validate the artifact with a Job, then keep the registry stage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from kubeloop.api.v1alpha1 import ModelVersionSpec
from kubeloop.api.v1alpha1.registry import MODEL_VERSION
from kubeloop.controllers.core import Progress, register_kind
from kubeloop.kube.jobs import create_job, job_state
from kubeloop.operator.settings import current
from kubeloop.planning import modelversion


def progress(version: dict[str, Any], spec: BaseModel) -> Progress:
    assert isinstance(spec, ModelVersionSpec)
    job = job_state(version["metadata"]["namespace"], modelversion.validation_job_name(version))
    plan = modelversion.plan_version(version, spec, job, current().workloads(), datetime.now(UTC))
    for child in plan.create:
        create_job(child)
    return Progress(plan.status, plan.events)


def active(status: dict[str, Any]) -> bool:
    return status.get("phase") in ("Pending", "Validating")


register_kind(MODEL_VERSION, modelversion.POLICY, progress, active=active)

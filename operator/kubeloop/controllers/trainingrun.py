"""TrainingRun handlers: Jobs for the search and the training, then the ModelVersion."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from kubeloop.api.v1alpha1 import TrainingRunSpec
from kubeloop.api.v1alpha1.registry import TRAINING_RUN
from kubeloop.contracts.model import ModelCard
from kubeloop.controllers.core import Progress, register_kind
from kubeloop.kube.jobs import create_job, job_state
from kubeloop.kube.registry import create_next_version, version_made_by
from kubeloop.operator.metrics import TRAINING_FAILURES
from kubeloop.operator.settings import current
from kubeloop.planning import trainingrun
from kubeloop.planning.conditions import put_condition
from kubeloop.planning.trainingrun_children import (
    RUN_UID_LABEL,
    search_job_name,
    train_job_name,
    version_labels,
    version_spec,
)
from kubeloop.store.client import Store, StoreUnavailable

Obj = dict[str, Any]


def observe(run: Obj, spec: TrainingRunSpec) -> trainingrun.TrainingObserved:
    meta = run["metadata"]
    search = job_state(meta["namespace"], search_job_name(run)) if spec.algorithm.search else None
    return trainingrun.TrainingObserved(
        search=search,
        train=job_state(meta["namespace"], train_job_name(run)),
        registered=version_made_by(meta["namespace"], RUN_UID_LABEL, meta["uid"]),
    )


def progress(run: Obj, spec: BaseModel) -> Progress:
    assert isinstance(spec, TrainingRunSpec)
    settings, now = current(), datetime.now(UTC)
    observed = observe(run, spec)
    plan = trainingrun.plan_training(run, spec, observed, settings.workloads(), now)
    for job in plan.create:
        create_job(job)
    if plan.register is not None:
        result = plan.register
        try:
            card = ModelCard.model_validate_json(Store(settings.store()).get_bytes(str(result.card)))
        except StoreUnavailable as error:  # reported, and the next tick tries again
            status = dict(plan.status)
            put_condition(status, "Succeeded", None, "StoreUnavailable", str(error),
                          generation=run["metadata"].get("generation"), now=now)  # fmt: skip
            return Progress(status, plan.events)
        name = create_next_version(
            run["metadata"]["namespace"],
            spec.model,
            version_labels(run, spec),
            lambda number: version_spec(run, spec, result, card, number),
        )
        plan = trainingrun.plan_training(
            run, spec, dataclasses.replace(observed, registered=name), settings.workloads(), now
        )
    if plan.status.get("phase") == "Failed" and (run.get("status") or {}).get("phase") != "Failed":
        failed: Obj = next((c for c in plan.status.get("conditions") or [] if c["type"] == "Succeeded"), {})
        meta = run["metadata"]
        TRAINING_FAILURES.labels(meta["namespace"], meta["name"], failed.get("reason", "Failed")).inc()
    return Progress(plan.status, plan.events)


def active(status: Obj) -> bool:
    """Keep watching the Jobs until the run is over and its version recorded."""
    running = status.get("phase") in ("Searching", "Training") or bool(status.get("startTime"))
    return running and not status.get("completionTime")


register_kind(TRAINING_RUN, trainingrun.POLICY, progress, active=active)

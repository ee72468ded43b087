"""What a TrainingRun creates: the search and train Jobs, and the ModelVersion it registers."""

from __future__ import annotations

from typing import Any, Literal

from kubeloop.api.v1alpha1 import TrainingRunSpec
from kubeloop.api.v1alpha1.common import parse_duration
from kubeloop.contracts.model import ModelCard
from kubeloop.contracts.results import TrainingResult
from kubeloop.contracts.tasks import EXIT_PERMANENT, TASK_ENV, TrainerTask
from kubeloop.planning.workloads import WorkloadSettings, container, labels_for, owned, pod_spec, store_env
from kubeloop.store.layout import CARD_FILE, MODEL_FILE, run_prefix

Obj = dict[str, Any]
Mode = Literal["train", "trial"]
RUN_LABEL, RUN_UID_LABEL, MODEL_LABEL = (
    "kubeloop.io/training-run",
    "kubeloop.io/training-run-uid",
    "kubeloop.io/model",
)
TRANSIENT_RETRIES = 2  # a store hiccup is worth retrying; bad data (exit 2) is not


def search_job_name(run: Obj) -> str:
    return f"{run['metadata']['name']}-search"


def train_job_name(run: Obj) -> str:
    return f"{run['metadata']['name']}-train"


def output_prefix(run: Obj, settings: WorkloadSettings) -> str:
    meta = run["metadata"]
    return run_prefix(settings.s3_bucket, meta["namespace"], meta["name"], meta["uid"])


def training_job(
    run: Obj,
    spec: TrainingRunSpec,
    settings: WorkloadSettings,
    *,
    mode: Mode,
    params: dict[str, Any],
    deadline_seconds: int,
) -> Obj:
    """The Job for one stage: `trial` (an Indexed Job over the search space) or `train`."""
    meta = run["metadata"]
    image = spec.image or settings.trainer_image
    task = TrainerTask(
        mode=mode,
        spec=run["spec"],
        output=output_prefix(run, settings),
        training_run=f"{meta['namespace']}/{meta['name']}",
        training_run_uid=meta["uid"],
        params=params,
        image=image,
    )
    env = [{"name": TASK_ENV, "value": task.to_json()}, *store_env(settings)]
    resources = spec.resources.model_dump(by_alias=True, exclude_defaults=False)
    labels = labels_for("trainer", meta["name"], {RUN_LABEL: meta["name"], MODEL_LABEL: spec.model})
    job_spec: Obj = {
        "activeDeadlineSeconds": max(deadline_seconds, 1),
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": "trainer", "operator": "In", "values": [EXIT_PERMANENT]},
                },
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
        "template": {
            "metadata": {"labels": labels},
            "spec": pod_spec(
                [
                    container(
                        "trainer",
                        image,
                        env,
                        command=spec.command,
                        resources=resources,
                        pull_policy=settings.pull_policy,
                    )
                ],
                restart_policy="Never",
            ),
        },
    }
    search = spec.algorithm.search
    if mode == "trial" and search is not None:
        job_spec |= {
            "completionMode": "Indexed",
            "completions": search.trials,
            "parallelism": search.parallelism,
            "backoffLimitPerIndex": 1,
        }
    else:
        job_spec["backoffLimit"] = TRANSIENT_RETRIES
    name = search_job_name(run) if mode == "trial" else train_job_name(run)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": job_spec,
    }
    return owned(job, run)


def remaining_deadline(spec: TrainingRunSpec, elapsed_seconds: float) -> int:
    return int(parse_duration(spec.deadline) - elapsed_seconds)


def primary_metric(spec: TrainingRunSpec, metrics: dict[str, float]) -> str | None:
    """The metric that ranks versions: the search metric, else the first requested, else a usual one."""
    candidates = [
        spec.algorithm.search.metric if spec.algorithm.search else None,
        *spec.metrics,
        "roc_auc",
        "accuracy",
        "r2",
        "rmse",
    ]
    return next((str(c) for c in candidates if c is not None and str(c) in metrics), None)


def version_spec(
    run: Obj, spec: TrainingRunSpec, result: TrainingResult, card: ModelCard, number: int
) -> Obj:
    """The ModelVersion spec registering this run's model as version `number`."""
    assert result.artifact is not None and result.card is not None
    meta = run["metadata"]
    inputs = [{"name": c.name, "type": c.type} for c in card.signature.inputs]
    outputs = (
        [{"name": "label", "type": "string"}, {"name": "probabilities", "type": "float"}]
        if card.signature.task == "classification"
        else [{"name": "value", "type": "float"}]
    )
    body: Obj = {
        "model": spec.model,
        "version": number,
        "artifact": {
            "uri": result.card.rsplit("/", 1)[0] + "/" + MODEL_FILE,
            "format": "onnx",
            "sha256": result.artifact.sha256,
            "size": result.artifact.size,
        },
        "signature": {"inputs": inputs, "outputs": outputs},
        "metrics": result.metrics,
        "params": result.params,
        "lineage": {
            "trainingRun": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "dataset": {"uri": card.lineage.dataset.uri, "sha256": card.lineage.dataset.sha256},
            "image": card.lineage.image,
            "codeVersion": card.lineage.code_version,
        },
    }
    metric = primary_metric(spec, result.metrics)
    if metric:
        body["primaryMetric"] = metric
    return body


def version_labels(run: Obj, spec: TrainingRunSpec) -> dict[str, str]:
    """Labels that find a run's version again after a restart: the uid makes the lookup exact."""
    meta = run["metadata"]
    return {MODEL_LABEL: spec.model, RUN_LABEL: meta["name"], RUN_UID_LABEL: meta["uid"]}


def card_location(result: TrainingResult) -> str | None:
    return result.card if result.card and result.card.endswith(CARD_FILE) else None

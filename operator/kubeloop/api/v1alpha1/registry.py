"""Everything the CRD generator (and anyone listing kinds) needs to know about each kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from kubeloop.api.structural import model_schema
from kubeloop.api.v1alpha1 import batchprediction, modeldeployment, modelmonitor, modelversion, trainingrun
from kubeloop.api.v1alpha1.cel import VALIDATIONS_KEY, CelRule
from kubeloop.api.v1alpha1.common import CustomResource

PrinterColumnType = Literal["string", "integer", "number", "boolean", "date"]


@dataclass(frozen=True)
class PrinterColumn:
    """One column of `kubectl get`."""

    name: str
    type: PrinterColumnType
    json_path: str
    description: str
    priority: int = 0  # 1: only with -o wide

    def as_crd(self) -> dict[str, Any]:
        column: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.priority:
            column["priority"] = self.priority
        return column


AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation.")


@dataclass(frozen=True)
class KindInfo:
    """A kubeloop kind: names, models, printer columns and kind-level CEL rules."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    resource_model: type[CustomResource]
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    printer_columns: tuple[PrinterColumn, ...]
    resource_rules: tuple[CelRule, ...] = ()  # self = the whole object (metadata.name is visible)
    spec_rules: tuple[CelRule, ...] = ()  # self = spec; on top of the rules the spec model carries

    @property
    def description(self) -> str:
        return (self.resource_model.__doc__ or self.kind).strip()

    def cel_rules(self) -> list[tuple[str, CelRule]]:
        """Every CEL rule of the kind with the path it sits on (".", ".spec", ".spec.rollout.steps", ...)."""
        rules = [(".", rule) for rule in self.resource_rules] + [(".spec", rule) for rule in self.spec_rules]
        return rules + _rules_in(model_schema(self.spec_model), ".spec")


def _rules_in(schema: dict[str, Any], path: str) -> list[tuple[str, CelRule]]:
    found = [
        (path, CelRule(raw["rule"], raw["message"], raw.get("fieldPath")))
        for raw in schema.get(VALIDATIONS_KEY, [])
    ]
    for name, sub in schema.get("properties", {}).items():
        found += _rules_in(sub, f"{path}.{name}")
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(schema.get(key), dict):
            found += _rules_in(schema[key], path + suffix)
    return found


TRAINING_RUN = KindInfo(
    kind="TrainingRun",
    plural="trainingruns",
    singular="trainingrun",
    short_names=("tr",),
    resource_model=trainingrun.TrainingRun,
    spec_model=trainingrun.TrainingRunSpec,
    status_model=trainingrun.TrainingRunStatus,
    printer_columns=(
        PrinterColumn("Phase", "string", ".status.phase", "Where the run is."),
        PrinterColumn("Model", "string", ".spec.model", "Registered model name."),
        PrinterColumn(
            "Estimator", "string", ".spec.algorithm.estimator", "scikit-learn estimator.", priority=1
        ),
        PrinterColumn(
            "Trials", "integer", ".status.trials.completed", "Search trials completed.", priority=1
        ),
        PrinterColumn(
            "Best", "number", ".status.trials.best.score", "Best cross-validated score of the search."
        ),
        PrinterColumn("Version", "string", ".status.modelVersion", "ModelVersion registered from the run."),
        AGE,
    ),
    resource_rules=trainingrun.RESOURCE_RULES,
)

MODEL_VERSION = KindInfo(
    kind="ModelVersion",
    plural="modelversions",
    singular="modelversion",
    short_names=("mv",),
    resource_model=modelversion.ModelVersion,
    spec_model=modelversion.ModelVersionSpec,
    status_model=modelversion.ModelVersionStatus,
    printer_columns=(
        PrinterColumn("Model", "string", ".spec.model", "Registered model name."),
        PrinterColumn("Version", "integer", ".spec.version", "Version number."),
        PrinterColumn("Stage", "string", ".status.stage", "Registry stage."),
        PrinterColumn("Metric", "string", ".spec.primaryMetric", "Primary metric.", priority=1),
        PrinterColumn("Score", "number", ".status.score", "Value of the primary metric."),
        PrinterColumn("Phase", "string", ".status.phase", "Artifact validation progress."),
        AGE,
    ),
    resource_rules=modelversion.RESOURCE_RULES,
    spec_rules=modelversion.SPEC_RULES,
)

MODEL_DEPLOYMENT = KindInfo(
    kind="ModelDeployment",
    plural="modeldeployments",
    singular="modeldeployment",
    short_names=("mdep",),
    resource_model=modeldeployment.ModelDeployment,
    spec_model=modeldeployment.ModelDeploymentSpec,
    status_model=modeldeployment.ModelDeploymentStatus,
    printer_columns=(
        PrinterColumn("Phase", "string", ".status.phase", "Serving and rollout state."),
        PrinterColumn("Model", "string", ".spec.model", "Registered model name.", priority=1),
        PrinterColumn("Stable", "integer", ".status.stable.version", "Version answering requests."),
        PrinterColumn("Candidate", "integer", ".status.candidate.version", "Version being rolled out."),
        PrinterColumn(
            "Weight", "integer", ".status.candidate.weight", "Percent of requests on the candidate."
        ),
        PrinterColumn("Endpoint", "string", ".status.endpoint", "In-cluster URL of the router.", priority=1),
        AGE,
    ),
    resource_rules=modeldeployment.RESOURCE_RULES,
)

MODEL_MONITOR = KindInfo(
    kind="ModelMonitor",
    plural="modelmonitors",
    singular="modelmonitor",
    short_names=("mmon",),
    resource_model=modelmonitor.ModelMonitor,
    spec_model=modelmonitor.ModelMonitorSpec,
    status_model=modelmonitor.ModelMonitorStatus,
    printer_columns=(
        PrinterColumn("Phase", "string", ".status.phase", "Verdict of the last run."),
        PrinterColumn("Deployment", "string", ".spec.deployment", "ModelDeployment watched."),
        PrinterColumn(
            "Drift", "number", ".status.driftScore", "Largest feature drift score of the last run."
        ),
        PrinterColumn("Retrains", "integer", ".status.retrainCount", "Retrainings triggered.", priority=1),
        PrinterColumn("Last Run", "date", ".status.lastRun.time", "When the last run finished."),
        AGE,
    ),
    resource_rules=modelmonitor.RESOURCE_RULES,
)

BATCH_PREDICTION = KindInfo(
    kind="BatchPrediction",
    plural="batchpredictions",
    singular="batchprediction",
    short_names=("bp",),
    resource_model=batchprediction.BatchPrediction,
    spec_model=batchprediction.BatchPredictionSpec,
    status_model=batchprediction.BatchPredictionStatus,
    printer_columns=(
        PrinterColumn("Phase", "string", ".status.phase", "Where the BatchPrediction is."),
        PrinterColumn("Model", "string", ".spec.model", "Registered model name.", priority=1),
        PrinterColumn("Version", "integer", ".status.version", "Version the runs score with."),
        PrinterColumn("Schedule", "string", ".spec.schedule", "Cron schedule; empty: one run."),
        PrinterColumn("Rows", "integer", ".status.lastRun.rowsOut", "Rows scored by the latest run."),
        PrinterColumn(
            "Rejects", "integer", ".status.lastRun.rejects", "Rows the latest run rejected.", priority=1
        ),
        PrinterColumn("Last Run", "date", ".status.lastRun.completionTime", "When the latest run ended."),
        AGE,
    ),
    resource_rules=batchprediction.RESOURCE_RULES,
    spec_rules=batchprediction.SPEC_RULES,
)

KINDS: tuple[KindInfo, ...] = (TRAINING_RUN, MODEL_VERSION, MODEL_DEPLOYMENT, MODEL_MONITOR, BATCH_PREDICTION)


def kind_info(kind: str) -> KindInfo:
    """The registry entry of `kind` (e.g. "TrainingRun")."""
    for info in KINDS:
        if info.kind == kind:
            return info
    raise KeyError(f"unknown kubeloop kind {kind!r}")

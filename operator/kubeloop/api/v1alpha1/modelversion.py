"""ModelVersion: an immutable registry entry (artifact, digest, signature, metrics, lineage)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from kubeloop.api.v1alpha1.cel import CelRule, list_map, list_set, validations
from kubeloop.api.v1alpha1.common import (
    ColumnSpec,
    CustomResource,
    KubeModel,
    MetricName,
    ModelArtifact,
    ModelName,
    ObjectReference,
    Sha256,
    StatusBase,
    StorageUri,
)

SPEC_IMMUTABLE = CelRule(
    rule="self == oldSelf",
    message="spec is immutable: a ModelVersion is a registry entry; "
    "create a new version instead of editing it",
)
NAME_IS_MODEL_AND_VERSION = CelRule(
    # Not `name == model + '-v' + string(version)`: the cost estimator sizes a concatenation with
    # string(int) as unbounded and the API server rejects the CRD.
    rule="self.metadata.name.startsWith(self.spec.model + '-v') && "
    "self.metadata.name.substring(size(self.spec.model) + 2) == string(self.spec.version)",
    message="metadata.name must be <spec.model>-v<spec.version>, for example churn-v3",
    field_path=".metadata.name",
)
PRIMARY_METRIC_RECORDED = CelRule(
    rule="!has(self.primaryMetric) || (has(self.metrics) && self.primaryMetric in self.metrics)",
    message="primaryMetric must be one of the keys of metrics",
)


def version_name(model: str, version: int) -> str:
    """Name of the ModelVersion object holding `version` of `model`."""
    return f"{model}-v{version}"


class Signature(KubeModel):
    """Inputs the model expects and outputs it produces, by column."""

    inputs: list[ColumnSpec] = Field(
        min_length=1,
        max_length=2000,
        description="Named input columns with their types; requests must provide them.",
        json_schema_extra=list_map("name"),
    )
    outputs: list[ColumnSpec] = Field(
        default_factory=list,
        max_length=100,
        description="Named outputs (e.g. label, probabilities) with their types.",
        json_schema_extra=list_map("name"),
    )


class DatasetReference(KubeModel):
    """A dataset version, pinned by digest."""

    uri: StorageUri = Field(description="Dataset location.")
    sha256: Sha256 | None = Field(
        default=None, description="SHA-256 of the dataset file when the model was trained."
    )


class Lineage(KubeModel):
    """Where the model came from."""

    training_run: ObjectReference | None = Field(
        default=None, description="TrainingRun that produced the model."
    )
    dataset: DatasetReference | None = Field(default=None, description="Dataset the model was trained on.")
    image: str | None = Field(default=None, max_length=1024, description="Trainer image, ideally by digest.")
    code_version: str | None = Field(
        default=None,
        max_length=256,
        description="Version of the training code (kubeloop version or git commit).",
    )
    parent_version: int | None = Field(
        default=None, ge=1, description="Version this one was retrained from (drift-triggered retraining)."
    )


class ModelVersionSpec(KubeModel):
    """The registry entry. Immutable once created."""

    model_config = ConfigDict(json_schema_extra=validations(PRIMARY_METRIC_RECORDED))

    model: ModelName
    version: int = Field(ge=1, le=999_999, description="Version number N: the object is named <model>-v<N>.")
    artifact: ModelArtifact = Field(description="The ONNX model file and its digest.")
    signature: Signature | None = Field(
        default=None, description="Input and output columns. Omitted for imports: read from the ONNX graph."
    )
    metrics: dict[str, float] = Field(
        default_factory=dict, max_length=50, description="Evaluation metrics recorded at training, by name."
    )
    primary_metric: MetricName | None = Field(
        default=None,
        description="The metric (a key of metrics) that ranks versions and shows in kubectl get.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Estimator parameters the model was fit with."
    )
    lineage: Lineage = Field(
        default_factory=Lineage, description="Provenance: run, dataset, image, code, parent."
    )

    @model_validator(mode="after")
    def _primary_metric_recorded(self) -> ModelVersionSpec:
        PRIMARY_METRIC_RECORDED.require(
            self.primary_metric is None or self.primary_metric.value in self.metrics
        )
        return self

    @property
    def name(self) -> str:
        return version_name(self.model, self.version)


class VersionPhase(StrEnum):
    """Progress of the operator's validation of the artifact."""

    PENDING = "Pending"
    VALIDATING = "Validating"
    READY = "Ready"
    FAILED = "Failed"


class Stage(StrEnum):
    """Lifecycle stage in the registry, derived from deployments and analysis."""

    CANDIDATE = "Candidate"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"
    REJECTED = "Rejected"


class StageTransition(KubeModel):
    """One entry of the audit trail."""

    stage: Stage = Field(description="Stage entered.")
    at: datetime = Field(description="When the stage was entered.")
    reason: str = Field(
        default="", max_length=1024, description="Why, e.g. PromotedByCanary or FailedAnalysis."
    )
    by: str = Field(default="", max_length=256, description="Who: a ModelDeployment, the operator or a user.")


class ModelVersionStatus(StatusBase):
    """Observed state of the version. Condition types: Validated."""

    phase: VersionPhase | None = Field(default=None, description="Pending, Validating, Ready or Failed.")
    stage: Stage | None = Field(
        default=None, description="Candidate, Staging, Production, Archived or Rejected."
    )
    stage_history: list[StageTransition] = Field(
        default_factory=list, max_length=100, description="Every stage change, oldest first (audit trail)."
    )
    deployments: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="ModelDeployments currently serving this version.",
        json_schema_extra=list_set(),
    )
    score: float | None = Field(
        default=None, description="Value of spec.metrics[spec.primaryMetric], copied for kubectl get."
    )


class ModelVersion(CustomResource):
    """An immutable registry entry: the ONNX artifact, digest, signature, metrics and lineage of a version."""

    kind: Literal["ModelVersion"] = "ModelVersion"
    spec: ModelVersionSpec
    status: ModelVersionStatus | None = None

    @model_validator(mode="after")
    def _name_is_model_and_version(self) -> ModelVersion:
        NAME_IS_MODEL_AND_VERSION.require(self.metadata.name in (None, self.spec.name))
        return self


RESOURCE_RULES = (NAME_IS_MODEL_AND_VERSION,)
SPEC_RULES = (SPEC_IMMUTABLE,)
CONDITION_VALIDATED = "Validated"

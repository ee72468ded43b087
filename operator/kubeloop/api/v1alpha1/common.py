"""Types shared by every kubeloop.io/v1alpha1 kind. Each is defined here once."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from kubeloop import API_GROUP, API_VERSION
from kubeloop.api.v1alpha1.cel import CelRule, list_map, validations

API_VERSION_STRING = f"{API_GROUP}/{API_VERSION}"


class KubeModel(BaseModel):
    """Base of every spec type: camelCase in YAML, snake_case in Python, unknown keys rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        protected_namespaces=(),
    )

    def to_dict(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase keys, unset fields left out."""
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


# --- names -------------------------------------------------------------------------------------

DNS1123_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

ModelName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL_PATTERN,
        description=(
            "Registered model name, a DNS-1123 label (lowercase letters, digits and '-', at most 63 "
            "characters). Versions of the model are the ModelVersions named <model>-v<N>."
        ),
    ),
]

ObjectName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=DNS1123_SUBDOMAIN_PATTERN,
        description="Name of a Kubernetes object in the same namespace.",
    ),
]

ColumnName = Annotated[str, Field(min_length=1, max_length=256, description="Name of a dataset column.")]


# --- durations ---------------------------------------------------------------------------------

# RE2 (the API server's regex engine) has no lookahead, so "not empty" is minLength: 2.
DURATION_PATTERN = r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
_DURATION_PARTS = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_SECONDS_PER_UNIT = (86_400, 3_600, 60, 1)

POSITIVE_DURATION = CelRule(
    # The pattern already admits only digits and unit letters, so any non-zero digit means > 0.
    rule="self.matches('[1-9]')",
    message="duration must be greater than zero (for example 30s, 5m, 1h30m or 2d)",
)


def parse_duration(text: str) -> int:
    """Seconds in a kubeloop duration such as `30s`, `5m`, `1h30m` or `2d` (units in d, h, m, s order)."""
    match = _DURATION_PARTS.match(text)
    if not text or match is None:
        raise ValueError(f"invalid duration {text!r}: expected e.g. 30s, 5m, 1h30m or 2d")
    return sum(int(part) * unit for part, unit in zip(match.groups(), _SECONDS_PER_UNIT, strict=True) if part)


def format_duration(seconds: int) -> str:
    """The shortest duration string for `seconds` (inverse of :func:`parse_duration`)."""
    if seconds < 0:
        raise ValueError("durations cannot be negative")
    parts = []
    for unit, suffix in zip(_SECONDS_PER_UNIT, "dhms", strict=True):
        count, seconds = divmod(seconds, unit)
        if count:
            parts.append(f"{count}{suffix}")
    return "".join(parts) or "0s"


def _valid_duration(text: str) -> str:
    parse_duration(text)
    return text


def _positive_duration(text: str) -> str:
    POSITIVE_DURATION.require(parse_duration(text) > 0)
    return text


Duration = Annotated[
    str,
    Field(min_length=2, max_length=32, pattern=DURATION_PATTERN),
    AfterValidator(_valid_duration),
]
PositiveDuration = Annotated[
    Duration,
    AfterValidator(_positive_duration),
    Field(json_schema_extra=validations(POSITIVE_DURATION)),
]


# --- resources ---------------------------------------------------------------------------------

# The pattern Kubernetes itself puts on resource.Quantity.
_DECIMAL = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
QUANTITY_PATTERN = rf"^(\+|-)?{_DECIMAL}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?{_DECIMAL}))?$"


def _integer_quantity_to_string(value: object) -> object:
    # `cpu: 2` arrives as an int from YAML; the API server accepts it (int-or-string), so do we.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Quantity = Annotated[
    str,
    BeforeValidator(_integer_quantity_to_string),
    Field(pattern=QUANTITY_PATTERN),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]


class ResourceRequirements(KubeModel):
    """Compute resources of a container, exactly as in a Pod spec (quantities like 500m, 2Gi)."""

    requests: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description="Minimum resources the scheduler reserves, by resource name (cpu, memory, ...).",
    )
    limits: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description="Maximum resources the container may use, by resource name (cpu, memory, ...).",
    )


# --- references and storage --------------------------------------------------------------------

StorageUri = Annotated[
    str,
    Field(
        max_length=2048,
        pattern=r"^(s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]/.+|file:///.+)$",
        description="Location in the artifact store: s3://<bucket>/<key>, or file:///<path> for tests.",
    ),
]

Sha256 = Annotated[
    str,
    Field(
        min_length=64,
        max_length=64,
        pattern=r"^[a-f0-9]{64}$",
        description="SHA-256 digest as 64 lowercase hexadecimal characters.",
    ),
]


class ObjectReference(KubeModel):
    """Points at another Kubernetes object; the uid pins one incarnation of a reused name."""

    name: ObjectName = Field(description="Name of the referenced object.")
    namespace: str | None = Field(
        default=None,
        max_length=63,
        pattern=DNS1123_LABEL_PATTERN,
        description="Namespace of the referenced object; defaults to the namespace of the referrer.",
    )
    uid: str | None = Field(
        default=None,
        max_length=64,
        description="UID of the referenced object when it was recorded.",
    )


class ColumnType(StrEnum):
    """Logical type of a tabular column."""

    INTEGER = "integer"
    FLOAT = "float"
    STRING = "string"
    BOOLEAN = "boolean"


class ColumnSpec(KubeModel):
    """A named, typed column."""

    name: ColumnName = Field(description="Column name, exactly as in the dataset header.")
    type: ColumnType = Field(description="Logical type: integer, float, string or boolean.")


class ModelArtifact(KubeModel):
    """The serialized model in the artifact store."""

    uri: StorageUri = Field(
        description="Location of the model file, e.g. s3://kubeloop/runs/ns/run/uid/model.onnx."
    )
    format: Literal["onnx"] = Field(
        default="onnx",
        description="Serialization format. Only onnx: the graph holds the whole preprocessing pipeline.",
    )
    sha256: Sha256 = Field(description="SHA-256 of the model file; checked before every load.")
    size: int | None = Field(default=None, ge=0, description="Size of the model file in bytes.")


class MetricName(StrEnum):
    """Evaluation metric, named as in scikit-learn where it has a name."""

    ACCURACY = "accuracy"
    BALANCED_ACCURACY = "balanced_accuracy"
    PRECISION = "precision"
    RECALL = "recall"
    F1 = "f1"
    ROC_AUC = "roc_auc"
    LOG_LOSS = "log_loss"
    R2 = "r2"
    MAE = "mae"
    MSE = "mse"
    RMSE = "rmse"

    @property
    def higher_is_better(self) -> bool:
        return self not in _LOWER_IS_BETTER

    @property
    def for_regression(self) -> bool:
        return self in REGRESSION_METRICS


_LOWER_IS_BETTER = frozenset({MetricName.LOG_LOSS, MetricName.MAE, MetricName.MSE, MetricName.RMSE})
REGRESSION_METRICS = (MetricName.R2, MetricName.MAE, MetricName.MSE, MetricName.RMSE)
Metrics = dict[str, float]


# --- status ------------------------------------------------------------------------------------


class ConditionStatus(StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(KubeModel):
    """One aspect of the resource's state, in the shape of metav1.Condition."""

    type: str = Field(
        min_length=1,
        max_length=316,
        pattern=r"^[A-Z][A-Za-z0-9]*$",
        description="Aspect this condition describes, in CamelCase (e.g. Succeeded, Available).",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Z][A-Za-z0-9]*$",
        description="Machine-readable CamelCase cause of the last transition (e.g. DatasetMissing).",
    )
    message: str = Field(
        default="", max_length=32768, description="Human-readable details of the transition."
    )
    last_transition_time: datetime = Field(
        description="When status last changed; unchanged while status stays the same."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation of the spec this condition was computed from."
    )


class StatusBase(BaseModel):
    """Fields every kubeloop status has. Written only by the operator."""

    # Status is read back from the API server; tolerate fields other writers (kopf) may leave.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", protected_namespaces=()
    )

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation of the spec the operator last acted on."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=32,
        description="Current conditions, one per type.",
        json_schema_extra=list_map("type"),
    )

    def condition(self, condition_type: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == condition_type), None)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


# --- whole resources (Python only; the CRD root schema is built by crdgen) ---------------------


class ObjectMeta(BaseModel):
    """The parts of metav1.ObjectMeta kubeloop reads; everything else is kept as is."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class CustomResource(BaseModel):
    """A whole kubeloop object as stored by the API server; subclasses add kind, spec and status."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    # A literal so that other versions fail to parse; test_api_models checks it equals API_VERSION_STRING.
    api_version: Literal["kubeloop.io/v1alpha1"] = "kubeloop.io/v1alpha1"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

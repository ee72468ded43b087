"""ModelMonitor: scheduled drift and performance checks on a ModelDeployment, with retraining."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from kubeloop.api.v1alpha1.cel import CelRule, list_set, validations
from kubeloop.api.v1alpha1.common import (
    ColumnName,
    CustomResource,
    Duration,
    KubeModel,
    MetricName,
    ObjectName,
    ObjectReference,
    PositiveDuration,
    StatusBase,
    StorageUri,
)
from kubeloop.api.v1alpha1.trainingrun import TrainingRunSpec

RETRAIN_NEEDS_TRAINING_RUN = CelRule(
    rule="!self.enabled || has(self.trainingRun)",
    message="retrain.trainingRun is required when retrain.enabled is true",
)
TRAINING_RUN_NAME_XOR_TEMPLATE = CelRule(
    rule="has(self.name) != has(self.template)",
    message="retrain.trainingRun must set exactly one of name (copy an existing TrainingRun) or template",
)


class DriftMethod(StrEnum):
    """Statistic comparing live inputs with the training reference, per feature."""

    PSI = "psi"
    KS = "ks"
    JS = "js"
    WASSERSTEIN = "wasserstein"
    CHI2 = "chi2"


class DriftSpec(KubeModel):
    """Input drift: each feature's live distribution against the one recorded at training."""

    method: DriftMethod = Field(
        default=DriftMethod.PSI,
        description="psi (population stability index on the training quantile bins), ks (two-sample "
        "Kolmogorov-Smirnov statistic against the training sample), js (Jensen-Shannon distance, base 2), "
        "wasserstein (on the binned histograms, in training standard deviations) or chi2 (1 - p-value of "
        "Pearson's test). Categorical features use chi2 or js when chosen, psi otherwise.",
    )
    threshold: float = Field(
        default=0.2, gt=0, description="A feature drifts when its score exceeds this (> 0)."
    )
    categorical_threshold: float | None = Field(
        default=None,
        gt=0,
        description="Threshold for categorical features. Default: threshold when they use the chosen "
        "method, else 0.2 (psi).",
    )
    max_missing_rate_change: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="A feature also drifts when its missing rate moves more than this from training.",
    )
    features: list[ColumnName] = Field(
        default_factory=list,
        max_length=1000,
        description="Features to check. Empty: every input of the model's signature.",
        json_schema_extra=list_set(),
    )


class PerformanceSpec(KubeModel):
    """Live performance from feedback labels, against the metric recorded in the ModelVersion."""

    metric: MetricName = Field(description="Metric computed on requests that received feedback labels.")
    max_drop: float = Field(
        default=0.05,
        gt=0,
        description="Largest allowed worsening versus the ModelVersion's recorded value, in metric units.",
    )
    label_delay: Duration = Field(
        default="0s", description="Requests younger than this are not scored (labels arrive late)."
    )
    min_labeled: int = Field(
        default=100, ge=1, description="Fewest labelled predictions needed to judge performance."
    )


class RetrainTrainingRun(KubeModel):
    """The TrainingRun to create when retraining: a copy of an existing one, or an inline template."""

    model_config = ConfigDict(json_schema_extra=validations(TRAINING_RUN_NAME_XOR_TEMPLATE))

    name: ObjectName | None = Field(default=None, description="Existing TrainingRun whose spec is copied.")
    template: TrainingRunSpec | None = Field(default=None, description="Inline TrainingRun spec.")
    dataset_uri: StorageUri | None = Field(
        default=None,
        description="Train on this dataset instead of the one in the copied spec (e.g. fresh data).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> RetrainTrainingRun:
        TRAINING_RUN_NAME_XOR_TEMPLATE.require((self.name is None) != (self.template is None))
        return self


class RetrainSpec(KubeModel):
    """Create a TrainingRun when the model drifts or degrades; a better model rolls out by the usual rules."""

    model_config = ConfigDict(json_schema_extra=validations(RETRAIN_NEEDS_TRAINING_RUN))

    enabled: bool = Field(default=False, description="Turn automatic retraining on.")
    training_run: RetrainTrainingRun | None = Field(default=None, description="What to train.")
    cooldown: PositiveDuration = Field(default="6h", description="Least time between two retrainings (> 0).")
    max_per_day: int = Field(default=2, ge=1, le=24, description="Most retrainings in any 24 hours.")
    consecutive: int = Field(
        default=2, ge=1, le=100, description="Consecutive drifting or degraded runs needed to retrain."
    )

    @model_validator(mode="after")
    def _has_training_run(self) -> RetrainSpec:
        RETRAIN_NEEDS_TRAINING_RUN.require(not self.enabled or self.training_run is not None)
        return self


class ModelMonitorSpec(KubeModel):
    """Desired monitoring. Never written by the operator."""

    deployment: ObjectName = Field(description="ModelDeployment to watch, in the same namespace.")
    schedule: PositiveDuration = Field(default="1h", description="Interval between runs, e.g. 15m or 1h.")
    window: PositiveDuration = Field(default="24h", description="How far back each run reads request logs.")
    min_samples: int = Field(
        default=500, ge=1, description="Fewest logged requests in the window; fewer gives InsufficientData."
    )
    drift: DriftSpec = Field(default_factory=DriftSpec, description="Input drift check.")
    performance: PerformanceSpec | None = Field(
        default=None, description="Live performance check from feedback labels; omitted: drift only."
    )
    retrain: RetrainSpec = Field(default_factory=RetrainSpec, description="Automatic retraining.")


class MonitorPhase(StrEnum):
    """Verdict of the last run."""

    HEALTHY = "Healthy"
    DRIFTING = "Drifting"
    DEGRADED = "Degraded"
    INSUFFICIENT_DATA = "InsufficientData"


class LastRun(KubeModel):
    """The most recent monitor run."""

    time: datetime = Field(description="When the run finished.")
    samples: int = Field(default=0, ge=0, description="Logged rows in the window.")
    version: int | None = Field(default=None, ge=1, description="Model version the requests were served by.")
    job: str | None = Field(default=None, max_length=253, description="The Job of the run.")
    created: datetime | None = Field(
        default=None, description="When that Job was created (runs are read in this order)."
    )
    succeeded: bool = Field(default=True, description="False when the run failed (see RunSucceeded).")


class FeatureScore(KubeModel):
    """Drift score of one feature."""

    name: str = Field(max_length=256, description="Feature name.")
    score: float = Field(description="Drift statistic of the feature.")
    drifted: bool = Field(default=False, description="Score exceeds the threshold.")


class PerformanceStatus(KubeModel):
    """Live performance measured from feedback."""

    metric: MetricName = Field(description="Metric computed.")
    value: float | None = Field(default=None, description="Live value.")
    baseline: float | None = Field(default=None, description="Value recorded in the ModelVersion.")
    labeled_samples: int = Field(
        default=0, ge=0, description="Predictions with feedback labels in the window."
    )
    degraded: bool = Field(default=False, description="Worse than the baseline by more than maxDrop.")


class RetrainRecord(KubeModel):
    """The most recent retraining."""

    time: datetime = Field(description="When the TrainingRun was created.")
    training_run: ObjectReference = Field(description="The TrainingRun created.")
    reason: str = Field(
        default="", max_length=1024, description="Why, e.g. DriftDetected or PerformanceDropped."
    )


class ModelMonitorStatus(StatusBase):
    """Observed model health. Condition types: Healthy (summary), Drifting, Degraded, Scheduled,
    RunSucceeded, Retraining."""

    phase: MonitorPhase | None = Field(
        default=None, description="Healthy, Drifting, Degraded or InsufficientData."
    )
    last_run: LastRun | None = Field(default=None, description="The most recent run.")
    drift_score: float | None = Field(
        default=None, description="Largest feature drift score of the last run."
    )
    features: list[FeatureScore] = Field(
        default_factory=list, max_length=10, description="Top feature scores of the last run, highest first."
    )
    drifted_features: list[str] = Field(
        default_factory=list, max_length=1000, description="Features above the threshold in the last run."
    )
    performance: PerformanceStatus | None = Field(
        default=None, description="Live performance of the last run."
    )
    consecutive: int = Field(default=0, ge=0, description="Consecutive drifting or degraded runs so far.")
    last_retrain: RetrainRecord | None = Field(default=None, description="The most recent retraining.")
    retrain_count: int = Field(default=0, ge=0, description="Retrainings triggered by this monitor so far.")
    recent_retrains: list[datetime] = Field(
        default_factory=list, max_length=24, description="When the retrainings of the last 24 hours started."
    )
    run_now: str | None = Field(
        default=None, max_length=253, description="The kubeloop.io/run-now annotation value last acted on."
    )
    report_uri: StorageUri | None = Field(default=None, description="HTML report of the last run.")


class ModelMonitor(CustomResource):
    """Checks a ModelDeployment for input drift and performance loss on a schedule; can trigger retraining."""

    kind: Literal["ModelMonitor"] = "ModelMonitor"
    spec: ModelMonitorSpec
    status: ModelMonitorStatus | None = None


RESOURCE_RULES: tuple[CelRule, ...] = ()
CONDITION_DRIFTING = "Drifting"
CONDITION_DEGRADED = "Degraded"
RUN_NOW_ANNOTATION = "kubeloop.io/run-now"  # any new value: one run now, from the CronJob's template

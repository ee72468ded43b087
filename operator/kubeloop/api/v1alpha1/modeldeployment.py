"""ModelDeployment: online serving of a model with a stable and a candidate version."""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from kubeloop.api.v1alpha1.cel import CelRule, validations
from kubeloop.api.v1alpha1.common import (
    CustomResource,
    KubeModel,
    MetricName,
    ModelName,
    PositiveDuration,
    ResourceRequirements,
    StatusBase,
)

VERSION_XOR_TRACK = CelRule(
    rule="has(self.version) != has(self.track)",
    message="exactly one of version or track must be set",
)
REPLICAS_XOR_AUTOSCALING = CelRule(
    rule="!(has(self.replicas) && has(self.autoscaling))",
    message="replicas and autoscaling are mutually exclusive: set at most one of them",
)
BEST_METRIC_NEEDS_METRIC = CelRule(
    rule="self.policy != 'BestMetric' || has(self.metric)",
    message="track.metric is required when track.policy is BestMetric",
)
AUTOSCALING_BOUNDS = CelRule(
    rule="self.minReplicas <= self.maxReplicas",
    message="autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas",
)
STEPS_INCREASING = CelRule(
    rule="self.map(s, s.weight).isSorted() && self.all(s, self.exists_one(t, t.weight == s.weight))",
    message="canary steps must have strictly increasing weights (for example 10, 25, 50, 100)",
)
CANARY_NEEDS_STEPS = CelRule(
    rule="!(self.strategy in ['Canary', 'ShadowThenCanary']) || (has(self.steps) && size(self.steps) > 0)",
    message="rollout.steps needs at least one step when rollout.strategy is Canary or ShadowThenCanary",
)
DNS1035_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
NAME_IS_SERVICE_PREFIX = CelRule(
    rule=f"size(self.metadata.name) <= 50 && self.metadata.name.matches('{DNS1035_LABEL_PATTERN}')",
    message="ModelDeployment names must be DNS-1035 labels (lowercase letters, digits and '-', starting with "
    "a letter) of at most 50 characters: they prefix the Service names <name>-v<N>",
    field_path=".metadata.name",
)


class TrackPolicy(StrEnum):
    """Which registered version a tracking deployment follows."""

    LATEST = "Latest"
    BEST_METRIC = "BestMetric"


class Track(KubeModel):
    """Follow the registry instead of pinning a version: every new match is rolled out."""

    model_config = ConfigDict(json_schema_extra=validations(BEST_METRIC_NEEDS_METRIC))

    policy: TrackPolicy = Field(
        default=TrackPolicy.LATEST,
        description="Latest: the highest validated version. "
        "BestMetric: the validated version with the best metric.",
    )
    metric: MetricName | None = Field(default=None, description="Metric compared by BestMetric.")

    @model_validator(mode="after")
    def _metric_for_best(self) -> Track:
        BEST_METRIC_NEEDS_METRIC.require(self.policy != TrackPolicy.BEST_METRIC or self.metric is not None)
        return self


class Autoscaling(KubeModel):
    """HorizontalPodAutoscaler for the model-server pods of each version."""

    model_config = ConfigDict(json_schema_extra=validations(AUTOSCALING_BOUNDS))

    min_replicas: int = Field(default=1, ge=1, le=1000, description="Fewest server pods.")
    max_replicas: int = Field(ge=1, le=1000, description="Most server pods.")
    target_cpu_utilization: int = Field(
        default=70, ge=1, le=100, description="Average CPU utilization (percent of requests) to aim for."
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        AUTOSCALING_BOUNDS.require(self.min_replicas <= self.max_replicas)
        return self


class RolloutStrategy(StrEnum):
    """How a new version replaces the stable one."""

    DIRECT = "Direct"
    CANARY = "Canary"
    SHADOW = "Shadow"
    SHADOW_THEN_CANARY = "ShadowThenCanary"


class CanaryStep(KubeModel):
    """Hold a share of live traffic on the candidate while analysis runs."""

    weight: int = Field(
        ge=1, le=100, description="Percent of requests answered by the candidate during this step."
    )
    duration: PositiveDuration = Field(
        default="5m", description="How long the step lasts before analysis decides."
    )


def _default_steps() -> list[CanaryStep]:
    return [CanaryStep(weight=10, duration="5m"), CanaryStep(weight=50, duration="10m")]


class ShadowSpec(KubeModel):
    """Mirror requests to the candidate; its answers are compared, never returned."""

    percent: int = Field(
        default=100, ge=1, le=100, description="Percent of requests mirrored to the candidate."
    )
    duration: PositiveDuration = Field(
        default="15m", description="How long shadowing lasts before analysis decides."
    )


class Analysis(KubeModel):
    """Gates a candidate must pass at the end of the shadow phase and of every canary step."""

    min_requests: int = Field(
        default=100, ge=1, description="Requests the candidate must have seen before judging."
    )
    max_error_rate: float = Field(
        default=0.01, ge=0, le=1, description="Largest allowed candidate error rate (0..1)."
    )
    max_latency_ratio: float = Field(
        default=1.5,
        gt=0,
        description="Largest allowed candidate p99 latency as a multiple of the stable p99.",
    )
    min_agreement: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Smallest fraction of requests where candidate and stable agree.",
    )
    max_probability_delta: float | None = Field(
        default=None, ge=0, le=1, description="Largest mean absolute difference of predicted probabilities."
    )


class Rollout(KubeModel):
    """How a new version reaches production. A failed analysis rolls back and marks the version Rejected."""

    model_config = ConfigDict(json_schema_extra=validations(CANARY_NEEDS_STEPS))

    strategy: RolloutStrategy = Field(
        default=RolloutStrategy.CANARY,
        description="Direct, Canary, Shadow (then promote) or ShadowThenCanary. "
        "The first version is always Direct.",
    )
    steps: list[CanaryStep] = Field(
        default_factory=_default_steps,
        max_length=10,
        description="Canary steps in order; after the last the candidate is promoted to stable.",
        json_schema_extra=validations(STEPS_INCREASING),
    )
    shadow: ShadowSpec = Field(
        default_factory=ShadowSpec, description="Shadow phase (Shadow and ShadowThenCanary)."
    )
    analysis: Analysis = Field(default_factory=Analysis, description="Pass/fail gates for the candidate.")
    require_approval: bool = Field(
        default=False, description="Wait in AwaitingApproval before promoting (kubeloop approve)."
    )
    abort: bool = Field(
        default=False,
        description="Set true to abort the current rollout: the stable version keeps all traffic.",
    )

    @model_validator(mode="after")
    def _steps(self) -> Rollout:
        weights = [step.weight for step in self.steps]
        STEPS_INCREASING.require(all(a < b for a, b in itertools.pairwise(weights)))
        canary = self.strategy in (RolloutStrategy.CANARY, RolloutStrategy.SHADOW_THEN_CANARY)
        CANARY_NEEDS_STEPS.require(not canary or bool(self.steps))
        return self


class RequestLogging(KubeModel):
    """Request logs feed the ModelMonitor and the rollout comparison."""

    sample_rate: float = Field(
        default=1.0, ge=0, le=1, description="Fraction of requests written to the log (0..1)."
    )
    feedback: bool = Field(default=True, description="Accept ground-truth labels at /v1/feedback.")


def _serving_resources() -> ResourceRequirements:
    return ResourceRequirements(requests={"cpu": "250m", "memory": "512Mi"}, limits={"memory": "1Gi"})


class ModelDeploymentSpec(KubeModel):
    """Desired serving. Never written by the operator."""

    model_config = ConfigDict(json_schema_extra=validations(VERSION_XOR_TRACK, REPLICAS_XOR_AUTOSCALING))

    model: ModelName
    version: int | None = Field(
        default=None,
        ge=1,
        description="Pinned version N (ModelVersion <model>-v<N>); changing it starts a rollout.",
    )
    track: Track | None = Field(default=None, description="Follow the registry instead of pinning a version.")
    replicas: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="Server pods per version. Default 1 unless autoscaling is set.",
    )
    autoscaling: Autoscaling | None = Field(
        default=None, description="Scale server pods on CPU instead of replicas."
    )
    resources: ResourceRequirements = Field(
        default_factory=_serving_resources, description="Compute resources of each model-server pod."
    )
    rollout: Rollout = Field(
        default_factory=Rollout, description="Strategy for replacing the stable version."
    )
    logging: RequestLogging = Field(
        default_factory=RequestLogging, description="Request and feedback logging."
    )
    review_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Predictions whose confidence is below this value are marked for human review.",
    )

    @model_validator(mode="after")
    def _exclusive_fields(self) -> ModelDeploymentSpec:
        VERSION_XOR_TRACK.require((self.version is None) != (self.track is None))
        REPLICAS_XOR_AUTOSCALING.require(self.replicas is None or self.autoscaling is None)
        return self

    @property
    def desired_replicas(self) -> int:
        """Server pods per version when autoscaling is off."""
        return 1 if self.replicas is None else self.replicas


class DeploymentPhase(StrEnum):
    """Where the deployment is."""

    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    SHADOWING = "Shadowing"
    CANARY = "Canary"
    AWAITING_APPROVAL = "AwaitingApproval"
    ROLLED_BACK = "RolledBack"
    DEGRADED = "Degraded"


class StableStatus(KubeModel):
    """The version answering requests."""

    version: int = Field(ge=1, description="Stable version number.")
    ready: int = Field(default=0, ge=0, description="Ready model-server pods of the stable version.")


class CandidateStatus(KubeModel):
    """The version being rolled out. All progress lives here so a restarted operator resumes."""

    version: int = Field(ge=1, description="Candidate version number.")
    step: int | None = Field(
        default=None, ge=0, description="Index into spec.rollout.steps; absent while shadowing."
    )
    weight: int = Field(
        default=0, ge=0, le=100, description="Percent of live requests the candidate answers now."
    )
    ready: int = Field(default=0, ge=0, description="Ready model-server pods of the candidate.")
    start_time: datetime | None = Field(
        default=None, description="When the rollout of this candidate started."
    )
    step_start_time: datetime | None = Field(
        default=None, description="When the current step or shadow phase started."
    )


class PerSide(KubeModel):
    """A count for the stable and the candidate side."""

    stable: int = Field(default=0, ge=0, description="Stable side.")
    candidate: int = Field(default=0, ge=0, description="Candidate side.")


class Latency(KubeModel):
    """Latency percentiles in milliseconds."""

    p50_ms: float | None = Field(default=None, ge=0, description="Median latency in milliseconds.")
    p99_ms: float | None = Field(default=None, ge=0, description="99th percentile latency in milliseconds.")


class LatencyPerSide(KubeModel):
    """Latency of both sides."""

    stable: Latency = Field(default_factory=Latency, description="Stable side.")
    candidate: Latency = Field(default_factory=Latency, description="Candidate side.")


class Comparison(KubeModel):
    """Statistics of the current step or shadow phase, from the router."""

    requests: PerSide = Field(
        default_factory=PerSide, description="Requests answered (or shadowed) per side."
    )
    errors: PerSide = Field(default_factory=PerSide, description="Failed requests per side.")
    compared: int = Field(default=0, ge=0, description="Requests answered by both versions and compared.")
    agreement: float | None = Field(
        default=None, ge=0, le=1, description="Fraction of requests where both sides agree."
    )
    probability_delta: float | None = Field(
        default=None, ge=0, le=1, description="Mean absolute difference of predicted probabilities."
    )
    latency: LatencyPerSide = Field(default_factory=LatencyPerSide, description="Latency per side.")


class RolloutOutcome(StrEnum):
    """How a rollout ended."""

    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"


class RolloutRecord(KubeModel):
    """One finished rollout."""

    version: int = Field(ge=1, description="Candidate version.")
    strategy: RolloutStrategy = Field(description="Strategy used.")
    outcome: RolloutOutcome = Field(description="Promoted, RolledBack or Aborted.")
    reason: str = Field(
        default="", max_length=1024, description="Why, e.g. ErrorRateExceeded or AllStepsPassed."
    )
    start_time: datetime | None = Field(default=None, description="When the rollout started.")
    completion_time: datetime | None = Field(default=None, description="When it ended.")
    generation: int | None = Field(
        default=None,
        description="metadata.generation when it ended: a rolled-back version is retried "
        "only after the spec changes.",
    )
    approved_by: str | None = Field(default=None, max_length=256, description="Who approved the promotion.")


class ModelDeploymentStatus(StatusBase):
    """Observed state of serving. Condition types: Available, Progressing, Degraded."""

    phase: DeploymentPhase | None = Field(
        default=None,
        description="Available, Progressing, Shadowing, Canary, AwaitingApproval, RolledBack or Degraded.",
    )
    stable: StableStatus | None = Field(default=None, description="The version answering requests.")
    candidate: CandidateStatus | None = Field(
        default=None, description="The version being rolled out, if any."
    )
    comparison: Comparison | None = Field(default=None, description="Candidate versus stable, current step.")
    endpoint: str | None = Field(default=None, max_length=1024, description="In-cluster URL of the router.")
    history: list[RolloutRecord] = Field(
        default_factory=list, max_length=20, description="Finished rollouts, newest last (the last 20)."
    )


class ModelDeployment(CustomResource):
    """Serves a model online behind the kubeloop router, rolling new versions out by canary and/or shadow."""

    kind: Literal["ModelDeployment"] = "ModelDeployment"
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None

    @model_validator(mode="after")
    def _name_is_service_prefix(self) -> ModelDeployment:
        name = self.metadata.name
        NAME_IS_SERVICE_PREFIX.require(name is None or _is_service_prefix(name))
        return self


def _is_service_prefix(name: str) -> bool:
    return len(name) <= 50 and re.fullmatch(DNS1035_LABEL_PATTERN, name) is not None


RESOURCE_RULES = (NAME_IS_SERVICE_PREFIX,)
CONDITION_AVAILABLE = "Available"
CONDITION_PROGRESSING = "Progressing"
CONDITION_DEGRADED = "Degraded"

"""The monitor workload's contract: the task the operator gives it, the report it writes, the summary
it leaves in its termination message.

KUBELOOP_TASK holds a MonitorTask (JSON), rendered by the operator into the CronJob's pod template.
Each run writes report.json (a MonitorReport) and report.html to
monitors/<ns>/<monitor>/<time>/ and a MonitorSummary (<= 4 KiB) to its termination message.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Literal

from pydantic import Field

from kubeloop.contracts.model import Wire
from kubeloop.contracts.tasks import RESULT_LIMIT, TASK_ENV, termination_log_path

REPORT_FORMAT = 1
Phase = Literal["Healthy", "Drifting", "Degraded", "InsufficientData"]
Method = Literal["psi", "ks", "js", "wasserstein", "chi2"]
Kind = Literal["numeric", "categorical"]


class DriftRule(Wire):
    """ModelMonitor spec.drift, as the workload applies it."""

    method: Method = "psi"
    threshold: float = Field(default=0.2, gt=0)
    features: list[str] = Field(default_factory=list)  # empty: every input of the signature
    max_missing_rate_change: float = Field(default=0.1, gt=0)  # absolute change that also counts as drift
    categorical_threshold: float | None = Field(default=None, gt=0)  # default: threshold, or 0.2 for psi


class PerformanceRule(Wire):
    """ModelMonitor spec.performance: the live metric against the one recorded at training."""

    metric: str
    max_drop: float = Field(gt=0)
    label_delay_seconds: int = Field(default=0, ge=0)
    min_labeled: int = Field(default=100, ge=1)


class MonitorTask(Wire):
    """One run's work; the run's own start time ends the window unless `until` is set."""

    namespace: str
    monitor: str
    deployment: str
    model: str
    version: int = Field(ge=1)
    model_folder: str  # store folder holding profile.json and model.json, with a trailing slash
    store_root: str  # s3://<bucket>/: logs/, feedback/ and monitors/ live under it
    window_seconds: int = Field(ge=1)
    min_samples: int = Field(default=500, ge=1)
    drift: DriftRule = Field(default_factory=DriftRule)
    performance: PerformanceRule | None = None
    until: datetime | None = None
    max_feedback: int = Field(default=2_000_000, ge=1)  # feedback items held for the join (memory bound)

    @classmethod
    def from_env(cls) -> MonitorTask:
        raw = os.environ.get(TASK_ENV)
        if not raw:
            raise ValueError(f"{TASK_ENV} is not set: the operator passes the monitor task as JSON in it")
        return cls.model_validate_json(raw)


# --- the report --------------------------------------------------------------------------------------


class Histogram(Wire):
    """Reference against current, as fractions of each side's non-missing values, bucket by bucket.

    Numeric: `edges` (len(buckets) + 1); the first and last bucket also hold the values beyond the
    training range. Categorical: `buckets` name the categories (plus the unseen bucket)."""

    buckets: list[str]
    edges: list[float] = Field(default_factory=list)
    reference: list[float]
    current: list[float]


class FeatureDrift(Wire):
    name: str
    kind: Kind
    method: Method  # the statistic `score` is (categorical features use psi or chi2)
    score: float | None  # None: nothing to compare (no values on one side)
    threshold: float
    drifted: bool = False
    reason: str = ""  # Score | MissingRate, when drifted
    statistics: dict[str, float] = Field(default_factory=dict)  # every statistic computed
    samples: int = 0  # current non-missing values
    missing_rate: float = 0.0
    reference_missing_rate: float = 0.0
    out_of_range: int = 0  # numeric values outside the training range
    unseen: int = 0  # categorical values not seen at training
    histogram: Histogram | None = None


class DataQuality(Wire):
    """Problems in the logged inputs themselves, counted over the window."""

    rows: int = 0
    missing_columns: dict[str, int] = Field(default_factory=dict)  # signature column absent: rows
    unexpected_columns: list[str] = Field(default_factory=list)
    invalid_values: dict[str, int] = Field(default_factory=dict)  # not a number in a numeric column
    out_of_range: dict[str, int] = Field(default_factory=dict)
    unseen_categories: dict[str, int] = Field(default_factory=dict)
    bad_records: int = 0  # log lines that could not be read
    bad_files: int = 0


class PerformancePoint(Wire):
    start: datetime  # the hour of the requests
    labeled: int
    value: float | None


class PerformanceReport(Wire):
    metric: str
    status: Literal["Measured", "InsufficientLabels", "NoBaseline", "NotApplicable"]
    value: float | None = None
    baseline: float | None = None
    drop: float | None = None  # worsening versus the baseline, in metric units (> 0 is worse)
    max_drop: float
    degraded: bool = False
    labeled: int = 0  # predictions in the window that had feedback
    eligible: int = 0  # predictions old enough for their label to be due (labelDelay)
    feedback_items: int = 0
    message: str = ""
    over_time: list[PerformancePoint] = Field(default_factory=list)


class MonitorReport(Wire):
    format: int = REPORT_FORMAT
    namespace: str
    monitor: str
    deployment: str
    model: str
    version: int
    time: datetime
    window_start: datetime
    window_end: datetime
    phase: Phase
    reason: str
    message: str
    samples: int  # rows in the window
    requests: int
    files: int
    min_samples: int
    rule: DriftRule
    drift_score: float | None = None
    drifted_features: list[str] = Field(default_factory=list)
    features: list[FeatureDrift] = Field(default_factory=list)  # highest score first
    prediction: FeatureDrift | None = None
    data_quality: DataQuality = Field(default_factory=DataQuality)
    performance: PerformanceReport | None = None
    unknown_features: list[str] = Field(default_factory=list)  # in spec.drift.features, not in the model
    report_uri: str = ""  # report.html
    json_uri: str = ""


# --- the termination message ---------------------------------------------------------------------------


class ScoreSummary(Wire):
    name: str
    score: float
    drifted: bool = False


class PerformanceSummary(Wire):
    metric: str
    status: str
    value: float | None = None
    baseline: float | None = None
    labeled: int = 0
    degraded: bool = False


class MonitorSummary(Wire):
    """What the operator reads from the run's Pod: enough for the ModelMonitor's status."""

    outcome: Literal["Succeeded", "Failed"] = "Succeeded"
    phase: Phase | None = None
    reason: str
    message: str
    time: datetime
    version: int
    samples: int = 0
    drift_score: float | None = None
    features: list[ScoreSummary] = Field(default_factory=list)  # top scores, highest first
    drifted: list[str] = Field(default_factory=list)
    drifted_count: int = 0
    prediction_drifted: bool = False
    performance: PerformanceSummary | None = None
    report_uri: str = ""
    json_uri: str = ""

    @classmethod
    def of(cls, report: MonitorReport, top: int = 10) -> MonitorSummary:
        scored = [ScoreSummary(name=f.name, score=f.score, drifted=f.drifted)
                  for f in report.features if f.score is not None]  # fmt: skip
        performance = report.performance
        return cls(
            phase=report.phase,
            reason=report.reason,
            message=report.message,
            time=report.time,
            version=report.version,
            samples=report.samples,
            drift_score=report.drift_score,
            features=scored[:top],
            drifted=report.drifted_features,
            drifted_count=len(report.drifted_features),
            prediction_drifted=bool(report.prediction and report.prediction.drifted),
            performance=PerformanceSummary(
                metric=performance.metric,
                status=performance.status,
                value=performance.value,
                baseline=performance.baseline,
                labeled=performance.labeled,
                degraded=performance.degraded,
            )
            if performance
            else None,
            report_uri=report.report_uri,
            json_uri=report.json_uri,
        )

    def fitted(self) -> str:
        """The JSON, shortened until it fits a termination message: long lists go first."""
        summary = self
        for keep in (len(self.drifted), 50, 10, 0):
            summary = summary.model_copy(update={"drifted": self.drifted[:keep]})
            text = summary.to_json()
            if len(text.encode()) <= RESULT_LIMIT:
                return text
        summary = summary.model_copy(update={"features": self.features[:3], "message": self.message[:300]})
        return summary.to_json().encode()[:RESULT_LIMIT].decode("utf-8", "ignore")

    def write(self) -> str:
        text = self.fitted()
        with open(termination_log_path(), "w") as handle:
            handle.write(text)
        return text

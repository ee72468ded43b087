"""Batch scoring: what the operator tells the scoring and notification pods, and what they leave behind.

A run is one Job (`<bp>-score`, or `<bp>-score-<n>` started by the CronJob). Its folder is
`<output.uri>/<job>/`, holding:

    part-<shard>-<seq>.<csv|parquet>        predictions, one part per chunk
    rejects/part-<shard>-<seq>.csv          rejected rows, with the reason
    manifests/shard-<shard>.json            what each shard read, wrote and rejected, and timings
    manifest.json                           the run: its summary and every shard's manifest
    notifications.json                      channels already delivered (a retried pod skips them)

Each scoring pod writes a ShardResult to its termination message; the notification pod a NotifyResult.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field

from kubeloop.contracts.model import Wire
from kubeloop.contracts.tasks import TASK_ENV

JOB_NAME_ENV = "KUBELOOP_JOB_NAME"  # the run's Job, from the pod's batch.kubernetes.io/job-name label
INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by the Job controller in every pod of an Indexed Job
THREADS_ENV = "KUBELOOP_INTRA_OP_THREADS"
WEBHOOK_URL_ENV = "KUBELOOP_WEBHOOK_URL"  # the webhook URL when it comes from a Secret
# The SMTP server and credentials, from the Secret named in spec.notify.email.smtpSecret.
SMTP_ENV = {
    "host": "KUBELOOP_SMTP_HOST",
    "port": "KUBELOOP_SMTP_PORT",
    "username": "KUBELOOP_SMTP_USERNAME",
    "password": "KUBELOOP_SMTP_PASSWORD",
    "security": "KUBELOOP_SMTP_SECURITY",
}
MANIFEST_FILE, NOTIFICATIONS_FILE = "manifest.json", "notifications.json"
# Output columns besides the copied input ones: the label (or a regressor's value), then one
# probability per class.
PREDICTION_COLUMN, PROBABILITY_PREFIX = "prediction", "probability_"
Format = Literal["csv", "parquet"]


# --- the scoring task ------------------------------------------------------------------------------


class ModelRef(Wire):
    """The version a run scores with, pinned by digest."""

    name: str
    version: int
    uri: str  # model.onnx
    sha256: str
    card_uri: str  # model.json


class InputRef(Wire):
    uri: str  # a file, or a folder ending with '/'
    format: Format = "csv"


class OutputRef(Wire):
    uri: str  # the folder holding one folder per run
    format: Format = "csv"
    include_input_columns: bool = False
    key_columns: list[str] = Field(default_factory=list)


class BatchTask(Wire):
    """Every scoring pod of a run gets the same task; its shard is the Job's completion index."""

    batch_prediction: str  # <namespace>/<name>
    model: ModelRef
    input: InputRef
    output: OutputRef
    shards: int = Field(ge=1)
    chunk_rows: int = Field(ge=1)
    max_reject_fraction: float = Field(ge=0, le=1)

    @classmethod
    def from_env(cls) -> BatchTask:
        raw = os.environ.get(TASK_ENV)
        if not raw:
            raise ValueError(f"{TASK_ENV} is not set: the operator passes the task as JSON in it")
        return cls.model_validate_json(raw)


def run_folder(output_uri: str, run: str) -> str:
    return f"{output_uri.rstrip('/')}/{run}/"


def part_name(shard: int, seq: int, file_format: str) -> str:
    return f"part-{shard:05d}-{seq:05d}.{file_format}"


def rejects_name(shard: int, seq: int) -> str:
    return f"rejects/part-{shard:05d}-{seq:05d}.csv"


def shard_manifest_name(shard: int) -> str:
    return f"manifests/shard-{shard:05d}.json"


# --- what a shard leaves -------------------------------------------------------------------------


class StoredPart(Wire):
    uri: str
    rows: int
    bytes: int
    sha256: str


class UnitReport(Wire):
    """One piece of input a shard read: a whole file, or a byte or row-group range of one."""

    uri: str
    range: str | None = None  # e.g. "bytes 0-1048575" or "row groups 2-3"; None: the whole file
    rows_in: int = 0
    rows_out: int = 0
    rejects: int = 0


class Timings(Wire):
    """Seconds spent per stage; reading and writing overlap scoring, so they do not add up to total."""

    read: float = 0.0
    validation: float = 0.0
    score: float = 0.0
    write: float = 0.0
    total: float = 0.0


class ModelUsed(Wire):
    name: str
    version: int
    sha256: str


class ShardManifest(Wire):
    batch_prediction: str
    run: str
    shard: int
    shards: int
    model: ModelUsed
    inputs: list[UnitReport] = Field(default_factory=list)
    parts: list[StoredPart] = Field(default_factory=list)
    rejects_files: list[StoredPart] = Field(default_factory=list)
    rows_in: int = 0
    rows_out: int = 0
    rejects: int = 0
    reject_reasons: dict[str, int] = Field(default_factory=dict)  # the most frequent reasons, counted
    timings: Timings = Field(default_factory=Timings)
    started_at: str = ""
    finished_at: str = ""


ShardOutcome = Literal["Succeeded", "Failed"]


class ShardResult(Wire):
    """A scoring pod's termination message (<= 4 KiB)."""

    shard: int
    outcome: ShardOutcome
    # Scored | InputMissing | InputInvalid | TooManyRejects | StoreUnavailable | DigestMismatch | LoadFailed
    reason: str
    message: str = ""
    rows_in: int = 0
    rows_out: int = 0
    rejects: int = 0
    version: int | None = None
    sha256: str | None = None
    manifest: str | None = None  # location of the shard's manifest
    seconds: float = 0.0


# --- the run and its notification -------------------------------------------------------------------


class RunSummary(Wire):
    """A finished run as the operator saw it; the webhook's JSON body and the email's content."""

    kind: Literal["BatchPredictionRun"] = "BatchPredictionRun"
    namespace: str
    batch_prediction: str
    run: str
    phase: ShardOutcome
    model: str
    version: int | None = None
    sha256: str | None = None
    rows_in: int = 0
    rows_out: int = 0
    rejects: int = 0
    output_uri: str
    manifest_uri: str
    start_time: str | None = None
    completion_time: str | None = None
    duration_seconds: float | None = None
    failed_shards: list[int] = Field(default_factory=list)
    message: str = ""


class EmailTarget(Wire):
    to: list[str]
    sender: str


class NotifyTask(Wire):
    """The notification pod's work: write the run manifest, then tell whoever `spec.notify` names."""

    summary: RunSummary
    shards: int
    notify: bool  # the outcome is one spec.notify.on lists
    webhook_url: str | None = None  # inline URL; from WEBHOOK_URL_ENV when webhook_from_secret
    webhook_from_secret: bool = False
    email: EmailTarget | None = None

    @classmethod
    def from_env(cls) -> NotifyTask:
        raw = os.environ.get(TASK_ENV)
        if not raw:
            raise ValueError(f"{TASK_ENV} is not set: the operator passes the task as JSON in it")
        return cls.model_validate_json(raw)


class RunManifest(Wire):
    summary: RunSummary
    shards: list[ShardManifest] = Field(default_factory=list)
    missing_shards: list[int] = Field(default_factory=list)  # no manifest: the shard failed first


class NotifyResult(Wire):
    """The notification pod's termination message."""

    ok: bool
    reason: str  # Sent | Skipped | DeliveryFailed | StoreUnavailable | BadConfiguration
    message: str = ""
    manifest: str | None = None
    webhook: str | None = None  # e.g. "HTTP 200", or what went wrong
    email: str | None = None

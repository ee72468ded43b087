"""BatchPrediction: scheduled or one-off batch scoring of a dataset, results in the store, people notified."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from kubeloop.api.v1alpha1.cel import CelRule, list_set, validations
from kubeloop.api.v1alpha1.common import (
    ColumnName,
    CustomResource,
    KubeModel,
    ModelName,
    ObjectName,
    PositiveDuration,
    ResourceRequirements,
    StatusBase,
    StorageUri,
)

# --- rules -------------------------------------------------------------------------------------

VERSION_XOR_DEPLOYMENT = CelRule(
    rule="has(self.version) != has(self.fromDeployment)",
    message="exactly one of version or fromDeployment must be set",
)
OUTPUT_OUTSIDE_INPUT = CelRule(
    rule="!self.input.uri.startsWith(self.output.uri.endsWith('/') ? self.output.uri : self.output.uri + '/')"
    " && !(self.input.uri.endsWith('/') && (self.output.uri + '/').startsWith(self.input.uri))",
    message="output.uri must not overlap input.uri: a later run would read the predictions back as input",
)
PARALLELISM_WITHIN_SHARDS = CelRule(
    rule="!has(self.parallelism) || self.parallelism <= self.shards",
    message="parallelism must be less than or equal to shards",
)
SUSPEND_NEEDS_SCHEDULE = CelRule(
    rule="!self.suspend || has(self.schedule)",
    message="suspend applies to scheduled runs only: set schedule too",
)
TIME_ZONE_NEEDS_SCHEDULE = CelRule(
    rule="!has(self.timeZone) || has(self.schedule)",
    message="timeZone applies to scheduled runs only: set schedule too",
)
SCHEDULE_FIXED = CelRule(
    rule="has(self.schedule) == has(oldSelf.schedule)",
    message="schedule cannot be added or removed: a one-off and a scheduled BatchPrediction are different "
    "objects; create a new one instead",
)
NOTIFY_HAS_CHANNEL = CelRule(
    rule="has(self.webhook) || has(self.email)",
    message="notify needs at least one of webhook or email",
)
WEBHOOK_URL_XOR_SECRET = CelRule(
    rule="has(self.url) != has(self.urlSecret)",
    message="webhook must set exactly one of url or urlSecret",
)
NAME_FITS_JOB_NAMES = CelRule(
    rule="size(self.metadata.name) <= 40",
    message="BatchPrediction names are limited to 40 characters so that the names of its Jobs "
    "(<name>-score-<time>, <name>-notify-<time>) fit in 63",
    field_path=".metadata.name",
)

# Five fields (minute hour day-of-month month day-of-week) or a macro, as a CronJob takes them.
CRON_PATTERN = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[0-9*?/,A-Za-z-]+( +[0-9*?/,A-Za-z-]+){4})$"
)
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+/-]*$"


def outputs_overlap_input(input_uri: str, output_uri: str) -> bool:
    """The input lies in the output folder, or the output folder in the input folder."""
    folder = output_uri if output_uri.endswith("/") else output_uri + "/"
    return input_uri.startswith(folder) or (
        input_uri.endswith("/") and (output_uri + "/").startswith(input_uri)
    )


# --- input and output --------------------------------------------------------------------------


class BatchInput(KubeModel):
    """The rows to score: one file, or every file under a folder."""

    uri: StorageUri = Field(
        description="A file, or a folder ending with '/': every file under it whose name ends with the "
        "format's extension (.csv or .parquet), in name order."
    )
    format: Literal["csv", "parquet"] = Field(
        default="csv", description="File format: csv (with a header line) or parquet."
    )


class BatchOutput(KubeModel):
    """Where predictions go: each run writes its own folder <uri>/<run>/ with parts and a manifest."""

    uri: StorageUri = Field(description="Folder of the runs' outputs (a trailing '/' is implied).")
    format: Literal["csv", "parquet"] = Field(default="csv", description="Format of the output parts.")
    include_input_columns: bool = Field(
        default=False, description="Copy every input column next to the predictions."
    )
    key_columns: list[ColumnName] = Field(
        default_factory=list,
        max_length=20,
        description="Input columns copied next to the predictions even without includeInputColumns "
        "(e.g. a customer id to join on).",
        json_schema_extra=list_set(),
    )


# --- notification ------------------------------------------------------------------------------

EmailAddress = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]


class SecretKeyReference(KubeModel):
    """One key of a Secret in the same namespace (read by the notification pod only, never the operator)."""

    name: ObjectName = Field(description="Secret name.")
    key: str = Field(
        min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Key in the Secret."
    )


class WebhookNotify(KubeModel):
    """An HTTP POST of the run summary as JSON."""

    model_config = ConfigDict(json_schema_extra=validations(WEBHOOK_URL_XOR_SECRET))

    url: str | None = Field(
        default=None, max_length=2048, pattern=r"^https?://\S+$", description="Where to POST (http or https)."
    )
    url_secret: SecretKeyReference | None = Field(
        default=None, description="The URL from a Secret instead, for URLs that carry a token."
    )

    @model_validator(mode="after")
    def _one_source(self) -> WebhookNotify:
        WEBHOOK_URL_XOR_SECRET.require((self.url is None) != (self.url_secret is None))
        return self


class EmailNotify(KubeModel):
    """A plain-text email with the summary and the output location."""

    to: list[EmailAddress] = Field(
        min_length=1, max_length=20, description="Recipients.", json_schema_extra=list_set()
    )
    sender: EmailAddress = Field(alias="from", description="Sender address.")
    smtp_secret: ObjectName = Field(
        description="Secret with the SMTP server and its credentials: host, port (default 587), username "
        "and password (optional), security (starttls (default), tls or none)."
    )


class NotifyOutcome(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class NotifySpec(KubeModel):
    """Who is told when a run ends. Delivery is retried; its result is recorded in the run's status."""

    model_config = ConfigDict(json_schema_extra=validations(NOTIFY_HAS_CHANNEL))

    webhook: WebhookNotify | None = Field(default=None, description="POST the summary as JSON.")
    email: EmailNotify | None = Field(default=None, description="Email the summary.")
    on: list[NotifyOutcome] = Field(
        default_factory=lambda: [NotifyOutcome.SUCCEEDED, NotifyOutcome.FAILED],
        min_length=1,
        max_length=2,
        description="Outcomes that notify: Succeeded, Failed or both.",
        json_schema_extra=list_set(),
    )

    @model_validator(mode="after")
    def _has_channel(self) -> NotifySpec:
        NOTIFY_HAS_CHANNEL.require(self.webhook is not None or self.email is not None)
        return self


# --- spec --------------------------------------------------------------------------------------


def _batch_resources() -> ResourceRequirements:
    return ResourceRequirements(requests={"cpu": "1", "memory": "1Gi"}, limits={"memory": "2Gi"})


class BatchPredictionSpec(KubeModel):
    """Desired batch scoring. Never written by the operator."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            VERSION_XOR_DEPLOYMENT,
            OUTPUT_OUTSIDE_INPUT,
            PARALLELISM_WITHIN_SHARDS,
            SUSPEND_NEEDS_SCHEDULE,
            TIME_ZONE_NEEDS_SCHEDULE,
        )
    )

    model: ModelName
    version: int | None = Field(
        default=None, ge=1, le=999_999, description="Score with version N (ModelVersion <model>-v<N>)."
    )
    from_deployment: ObjectName | None = Field(
        default=None,
        description="Score with whatever version is stable in this ModelDeployment when a run starts.",
    )
    input: BatchInput = Field(description="The rows to score.")
    output: BatchOutput = Field(description="Where the predictions go.")
    schedule: str | None = Field(
        default=None,
        max_length=128,
        pattern=CRON_PATTERN,
        description="Cron schedule (e.g. '0 2 * * *' or @daily) of a CronJob; omitted: one run, now.",
    )
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        pattern=TIME_ZONE_PATTERN,
        description="Time zone of the schedule (e.g. Europe/Paris); default: the controller manager's.",
    )
    suspend: bool = Field(default=False, description="Pause a scheduled BatchPrediction (no new runs).")
    shards: int = Field(
        default=1,
        ge=1,
        le=100,
        description="Pods of each run (an Indexed Job): the input files, or parts of them, are split "
        "between them.",
    )
    parallelism: int | None = Field(
        default=None, ge=1, le=100, description="Shards running at the same time. Default: all of them."
    )
    chunk_rows: int = Field(
        default=50_000,
        ge=100,
        le=1_000_000,
        description="Rows read, scored and written at a time: bounds each pod's memory whatever the "
        "input size.",
    )
    max_reject_fraction: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Largest fraction of a shard's rows that may be rejected (written to the rejects "
        "files with the reason) before the run fails.",
    )
    notify: NotifySpec | None = Field(default=None, description="Who is told when a run ends.")
    resources: ResourceRequirements = Field(
        default_factory=_batch_resources, description="Compute resources of each scoring pod."
    )
    deadline: PositiveDuration = Field(default="2h", description="Wall-clock limit of each run.")
    history_limit: int = Field(
        default=10, ge=1, le=50, description="Finished runs kept in status.history, newest first."
    )

    @model_validator(mode="after")
    def _consistent(self) -> BatchPredictionSpec:
        VERSION_XOR_DEPLOYMENT.require((self.version is None) != (self.from_deployment is None))
        OUTPUT_OUTSIDE_INPUT.require(not outputs_overlap_input(self.input.uri, self.output.uri))
        PARALLELISM_WITHIN_SHARDS.require(self.parallelism is None or self.parallelism <= self.shards)
        SUSPEND_NEEDS_SCHEDULE.require(not self.suspend or self.schedule is not None)
        TIME_ZONE_NEEDS_SCHEDULE.require(self.time_zone is None or self.schedule is not None)
        return self


# --- status ------------------------------------------------------------------------------------


class BatchPhase(StrEnum):
    """Where the BatchPrediction is. One-off: Pending, Running, Succeeded or Failed. Scheduled: Pending
    (no usable version yet), Scheduled (waiting for the next run), Running, Suspended or Failed."""

    PENDING = "Pending"
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class RunPhase(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class NotificationPhase(StrEnum):
    PENDING = "Pending"
    SENT = "Sent"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class NotificationStatus(KubeModel):
    """What became of a run's notification."""

    phase: NotificationPhase = Field(description="Pending, Sent, Failed (after every retry) or Skipped.")
    attempts: int = Field(default=0, ge=0, description="Delivery attempts (pods) so far.")
    webhook: str | None = Field(default=None, max_length=1024, description="Webhook result, e.g. HTTP 200.")
    email: str | None = Field(default=None, max_length=1024, description="Email result.")
    message: str = Field(default="", max_length=4096, description="Why it failed, or what was sent.")


class RunStatus(KubeModel):
    """One run: a Job whose pods score the shards."""

    name: str = Field(max_length=63, description="The run's Job.")
    phase: RunPhase = Field(description="Running, Succeeded or Failed.")
    version: int | None = Field(default=None, ge=1, description="Model version the run scored with.")
    start_time: datetime | None = Field(default=None, description="When the Job started.")
    completion_time: datetime | None = Field(default=None, description="When the Job ended.")
    duration_seconds: float | None = Field(default=None, ge=0, description="Wall-clock time of the run.")
    rows_in: int = Field(default=0, ge=0, description="Rows read.")
    rows_out: int = Field(default=0, ge=0, description="Rows scored and written.")
    rejects: int = Field(
        default=0, ge=0, description="Rows rejected (in the rejects files, with the reason)."
    )
    output_uri: StorageUri | None = Field(default=None, description="Folder of the run's outputs.")
    manifest_uri: StorageUri | None = Field(default=None, description="The run's manifest.")
    failed_shards: list[int] = Field(
        default_factory=list, max_length=100, description="Shards (completion indexes) that failed."
    )
    message: str = Field(default="", max_length=4096, description="What happened.")
    notification: NotificationStatus | None = Field(default=None, description="The run's notification.")


class BatchPredictionStatus(StatusBase):
    """Observed state. Condition types: Succeeded (the latest finished run), VersionResolved, Notified."""

    phase: BatchPhase | None = Field(
        default=None, description="Pending, Scheduled, Running, Suspended, Succeeded or Failed."
    )
    version: int | None = Field(default=None, ge=1, description="Version the next (or current) run uses.")
    last_run: RunStatus | None = Field(default=None, description="The latest run.")
    history: list[RunStatus] = Field(
        default_factory=list, max_length=50, description="Finished runs, newest first (spec.historyLimit)."
    )
    runs: int = Field(default=0, ge=0, description="Runs finished so far.")


class BatchPrediction(CustomResource):
    """Scores a dataset with a registered model, once or on a schedule: results in the store, people told."""

    kind: Literal["BatchPrediction"] = "BatchPrediction"
    spec: BatchPredictionSpec
    status: BatchPredictionStatus | None = None

    @model_validator(mode="after")
    def _name_fits_job_names(self) -> BatchPrediction:
        NAME_FITS_JOB_NAMES.require(self.metadata.name is None or len(self.metadata.name) <= 40)
        return self


RESOURCE_RULES = (NAME_FITS_JOB_NAMES,)
SPEC_RULES = (SCHEDULE_FIXED,)
CONDITION_SUCCEEDED = "Succeeded"
CONDITION_VERSION_RESOLVED = "VersionResolved"
CONDITION_NOTIFIED = "Notified"

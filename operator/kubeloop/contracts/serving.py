"""The model server's contract with the operator: its environment, and the records it writes.

The operator renders the server pod's env from `ServingSettings.to_env()`'s names; the server
reads them with `from_env`. Plain pydantic on purpose: the server image has no pydantic-settings.
The record models document the JSON lines the server writes to the store for the monitor and the
rollout analysis (the server builds them as plain dicts off the request path; tests check them
against these models).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kubeloop.contracts.environment import validate_env
from kubeloop.contracts.model import Wire

DEFAULT_PORT = 8080
SHA256_PATTERN = r"^[0-9a-f]{64}$"

# Field name -> environment variable. One table, so the operator and the server cannot disagree.
ENV: dict[str, str] = {
    "model_name": "KUBELOOP_MODEL_NAME",  # the name served under /v2/models/{name}
    "model_version": "KUBELOOP_MODEL_VERSION",  # N of ModelVersion <model>-v<N>
    "model_uri": "KUBELOOP_MODEL_URI",  # location of model.onnx
    "model_sha256": "KUBELOOP_MODEL_SHA256",  # registered digest of model.onnx
    "card_uri": "KUBELOOP_CARD_URI",  # location of model.json (default: next to model.onnx)
    "port": "KUBELOOP_PORT",
    "bind_host": "KUBELOOP_BIND_HOST",
    "namespace": "KUBELOOP_NAMESPACE",
    "deployment": "KUBELOOP_DEPLOYMENT",  # the ModelDeployment's name
    "pod_name": "KUBELOOP_POD_NAME",
    "store_root": "KUBELOOP_STORE_ROOT",  # where logs/, feedback/ and review/ go
    "log_sample_rate": "KUBELOOP_LOG_SAMPLE_RATE",
    "log_flush_records": "KUBELOOP_LOG_FLUSH_RECORDS",
    "log_flush_seconds": "KUBELOOP_LOG_FLUSH_SECONDS",
    "log_buffer_limit": "KUBELOOP_LOG_BUFFER_LIMIT",
    "review_threshold": "KUBELOOP_REVIEW_THRESHOLD",
    "feedback_enabled": "KUBELOOP_FEEDBACK",
    "max_body_bytes": "KUBELOOP_MAX_BODY_BYTES",
    "max_rows": "KUBELOOP_MAX_ROWS",
    "intra_op_threads": "KUBELOOP_INTRA_OP_THREADS",
    "inference_threads": "KUBELOOP_INFERENCE_THREADS",
    "inline_budget_ms": "KUBELOOP_INLINE_BUDGET_MS",
    "shutdown_delay_seconds": "KUBELOOP_SHUTDOWN_DELAY_SECONDS",
    "log_level": "KUBELOOP_LOG_LEVEL",
    "access_log": "KUBELOOP_ACCESS_LOG",
}


class ArtifactSettings(BaseModel):
    """What both the server and the validation Job need: the artifact and its registered digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_uri: str = Field(min_length=1)
    model_sha256: str = Field(pattern=SHA256_PATTERN)
    card_uri: str = ""

    @model_validator(mode="after")
    def _card_next_to_model(self) -> Self:
        if not self.card_uri:
            if not self.model_uri.endswith("/model.onnx"):
                raise ValueError("KUBELOOP_CARD_URI is required when the model URI is not .../model.onnx")
            object.__setattr__(self, "card_uri", self.model_uri.removesuffix("model.onnx") + "model.json")
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Self:
        """Read the settings; a bad or missing variable is reported by its variable name."""
        raw = {field: env[var] for field, var in ENV.items() if field in cls.model_fields and env.get(var)}
        return validate_env(cls, raw, ENV, "server")

    def to_env(self) -> dict[str, str]:
        """The variables that reproduce these settings (what the operator puts in the pod template)."""
        values = self.model_dump(exclude_none=True)
        return {ENV[k]: _env_text(v) for k, v in values.items()}


def _env_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class ServingSettings(ArtifactSettings):
    """The model server's whole configuration."""

    model_name: str = Field(min_length=1, max_length=253)
    model_version: int = Field(ge=1)
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    bind_host: str = "0.0.0.0"
    namespace: str = "default"
    deployment: str = ""  # defaults to model_name
    pod_name: str = Field(default_factory=socket.gethostname)
    store_root: str = ""  # defaults to s3://<KUBELOOP_S3_BUCKET>/
    # Request logging (ModelDeployment spec.logging): records are rows; a request's rows stay together.
    log_sample_rate: float = Field(default=1.0, ge=0, le=1)
    # Flush once this many rows are buffered (fewer, larger objects: at 80k rows/s 2,000 meant 40
    # uploads a second and a gzip on the CPU every 20 requests)...
    log_flush_records: int = Field(default=20_000, ge=1)
    log_flush_seconds: float = Field(default=10.0, gt=0)  # ...or this often
    log_buffer_limit: int = Field(default=100_000, ge=1)  # rows held while the store is down, then dropped
    review_threshold: float | None = Field(default=None, ge=0, le=1)
    feedback_enabled: bool = True
    # Input limits: larger requests get 413 before any work is done.
    max_body_bytes: int = Field(default=8 << 20, ge=1024)
    max_rows: int = Field(default=10_000, ge=1)
    # onnxruntime: threads per run, and the pool that runs batches too costly for the event loop.
    intra_op_threads: int = Field(default=1, ge=1, le=64)
    inference_threads: int = Field(default=2, ge=1, le=64)
    inline_budget_ms: float = Field(default=0.25, ge=0)  # runs estimated below this stay on the loop
    shutdown_delay_seconds: float = Field(default=0.0, ge=0, le=300)  # unready but serving after SIGTERM
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: bool = False

    @model_validator(mode="after")
    def _defaults_from_others(self) -> Self:
        if not self.deployment:
            object.__setattr__(self, "deployment", self.model_name)
        return self

    def resolved_store_root(self, env: Mapping[str, str] = os.environ) -> str:
        """The folder request logs, feedback and review records go under (with a trailing slash)."""
        root = self.store_root or f"s3://{env.get('KUBELOOP_S3_BUCKET', 'kubeloop')}/"
        return root if root.endswith("/") else root + "/"


# --- What the server writes to the store (one JSON object per line, gzip) --------------------------


class RequestLogRecord(Wire):
    """logs/<ns>/<mdep>/v<N>/dt=/hr=/<pod>-<seq>.jsonl.gz: one line per sampled request, columnar.

    `inputs` maps each column to its values (one per row); `outputs` holds `label` and
    `probabilities` (rows x classes) for a classifier, `value` for a regressor.
    """

    request_id: str
    time: str  # ISO 8601, UTC
    model: str
    version: int
    pod: str
    protocol: Literal["v1", "v2"]
    latency_ms: float
    rows: int
    inputs: dict[str, list[Any]]
    outputs: dict[str, list[Any]]
    review: list[bool] | None = None


class FeedbackItem(Wire):
    """What a client posts to /v1/feedback (one object or a list): the truth about one prediction."""

    request_id: str = Field(min_length=1, max_length=256)
    actual: str | int | float | bool
    row: int = Field(default=0, ge=0)  # which row of a multi-row request
    source: Literal["user", "review"] = "user"  # "review": a human reviewer's label


class FeedbackRecord(FeedbackItem):
    """feedback/<ns>/<mdep>/dt=/hr=/<pod>-<seq>.jsonl.gz: one line per item, as received."""

    time: str
    model: str
    version: int  # the version of the server that received the feedback


class ReviewRecord(Wire):
    """review/<ns>/<mdep>/v<N>/dt=/hr=/<pod>-<seq>.jsonl.gz: one line per low-confidence row."""

    request_id: str
    row: int
    time: str
    model: str
    version: int
    inputs: dict[str, Any]
    label: Any
    probabilities: dict[str, float]
    confidence: float
    threshold: float

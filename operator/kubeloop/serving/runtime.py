"""Everything a request needs, built once per process: model state, metrics, logs, health and metadata."""

from __future__ import annotations

import gc
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

import numpy as np
from fastapi import Response

from kubeloop.contracts.serving import ServingSettings
from kubeloop.serving import protocol as p
from kubeloop.serving.decoding import BadInput
from kubeloop.serving.feedback import FeedbackSink
from kubeloop.serving.inference import OnnxModel
from kubeloop.serving.loading import ModelState, load_in_background, prepare
from kubeloop.serving.metrics import ServerMetrics
from kubeloop.serving.requestlog import Limits, Logged, RecordWriter, request_lines, review_lines
from kubeloop.store import layout
from kubeloop.store.client import RetryPolicy, Store

log = logging.getLogger("kubeloop.serving")
JSON = "application/json"


class Runtime:
    def __init__(self, settings: ServingSettings, store: Store | None = None) -> None:
        self.settings = s = settings
        self.store = store if store is not None else Store.from_env(RetryPolicy(attempts=4, first_delay=0.5))
        self.state = ModelState()
        self.metrics = ServerMetrics(s.model_name, s.model_version)
        self.version = str(s.model_version)
        self.root = s.resolved_store_root()
        self.executor = ThreadPoolExecutor(s.inference_threads, thread_name_prefix="onnxruntime")
        self.inline_ms = s.inline_budget_ms
        # Open client connections, for runs_inline; the server sets it (unknown: assume several).
        self.connections: Callable[[], int] = lambda: 2
        self.requests_log: RecordWriter | None = None
        self.review_log: RecordWriter | None = None
        self.feedback = FeedbackSink(
            self._quick_store(), self._feedback_folder, s.model_name, s.model_version, s.pod_name
        )
        self.server_version = _kubeloop_version()

    def _quick_store(self) -> Store:
        """A store client for writers: few, short retries (a writer retries later by itself)."""
        return Store(self.store.settings, RetryPolicy(attempts=2, first_delay=0.2))

    def _versioned(self, prefix: Callable[[str, str, int, datetime], str]) -> Callable[[datetime], str]:
        """The folder of a per-version stream (request logs, review) for the hour `at`."""
        s = self.settings
        return lambda at: self.root + prefix(s.namespace, s.deployment, s.model_version, at)

    def _feedback_folder(self, at: datetime) -> str:
        return self.root + layout.feedback_prefix(self.settings.namespace, self.settings.deployment, at)

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        load_in_background(self.state, lambda: prepare(self.store, s, s.intra_op_threads), self._on_ready)

    def _on_ready(self, model: OnnxModel) -> None:
        s = self.settings
        self.metrics.bind_model(model, s.model_sha256)
        limits = Limits(s.log_flush_records, s.log_flush_seconds, s.log_buffer_limit)
        self.requests_log = RecordWriter(
            self._quick_store(),
            "requests",
            prefix=self._versioned(layout.request_log_prefix),
            encode=request_lines(s.model_name, s.model_version, s.pod_name, model.text_columns),
            pod=s.pod_name,
            limits=limits,
            counters=self.metrics.stream("requests"),
        ).start()
        if s.review_threshold is not None and model.classification:
            self.review_log = RecordWriter(
                self._quick_store(),
                "review",
                prefix=self._versioned(layout.review_prefix),
                encode=review_lines(s.model_name, s.model_version, model.classes, s.review_threshold),
                pod=s.pod_name,
                limits=limits,
                counters=self.metrics.stream("review"),
            ).start()
        self.state.model = model
        # Everything loaded so far lives as long as the process: keep it out of every future
        # garbage collection, whose full passes would otherwise walk it while requests wait.
        gc.freeze()
        self.state.set("Ready", "Ready", f"serving {s.model_name} v{s.model_version}")

    def drain(self) -> None:
        """SIGTERM with a shutdown delay: stop being ready so traffic moves away, keep serving."""
        if self.state.ready:
            self.state.set("Draining", "ShuttingDown", "the server is shutting down")

    def stop(self) -> None:
        for writer in (self.requests_log, self.review_log):
            if writer is not None:
                writer.close()
        self.executor.shutdown(wait=True)

    # --- health and metadata ------------------------------------------------------------------------

    def readiness(self) -> Response:
        body = p.Readiness.model_validate(self.state.describe()).model_dump_json()
        return Response(body, 200 if self.state.ready else 503, media_type=JSON)

    def model_readiness(self, name: str, version: str | None) -> Response:
        try:
            self._check_name(name, version)
        except BadInput as error:
            return self.problem(error, "metadata")
        return self.readiness()

    def server_metadata(self) -> Response:
        body = p.ServerMetadata(name="kubeloop", version=self.server_version, extensions=[])
        return Response(body.model_dump_json(), media_type=JSON)

    def model_metadata(self, name: str, version: str | None) -> Response:
        try:
            model = self._model(name, version)
        except BadInput as error:
            return self.problem(error, "metadata")
        return Response(_metadata(model, self.settings).model_dump_json(), media_type=JSON)

    def classes(self) -> list[str] | None:
        """The loaded classifier's classes (None for a regressor); 503 while nothing is loaded."""
        model = self._model(self.settings.model_name, None)
        return model.classes if model.classification else None

    def _check_name(self, name: str, version: str | None) -> None:
        if name != self.settings.model_name:
            raise BadInput(
                f"model '{name}' is not served here (this server serves '{self.settings.model_name}')",
                field="name",
                status=404,
            )
        if version is not None and version != self.version:
            raise BadInput(
                f"version '{version}' is not served here (this server serves version {self.version})",
                field="version",
                status=404,
            )

    def _model(self, name: str, version: str | None) -> OnnxModel:
        self._check_name(name, version)
        model = self.state.model
        if model is None or self.state.phase not in ("Ready", "Draining"):
            raise BadInput(f"model not ready ({self.state.reason}): {self.state.message}", status=503)
        return model

    def model_for(self, name: str, version: str | None) -> OnnxModel:
        """The model serving requests for `name` (and `version`), or a 404/503 BadInput."""
        return self._model(name, version)

    def offer_log(self, item: Logged, rows: int) -> None:
        """Hand a scored request to the request log (sampled) and its low-confidence rows to review."""
        rate = self.settings.log_sample_rate
        sampled = rate >= 1.0 or (rate > 0.0 and random.random() < rate)  # noqa: S311 - sampling, not security
        if sampled and self.requests_log is not None:
            self.requests_log.offer(item, rows)
        if item.flagged is not None and self.review_log is not None:
            flagged_rows = int(np.count_nonzero(item.flagged))
            if flagged_rows:
                self.review_log.offer(item, flagged_rows)

    def output_names(self) -> list[str]:
        return _output_names(self.state.model, self.settings)

    def failure(self, error: BadInput, endpoint: str, started: float | None = None) -> bytes:
        """Count a refused request; the error body says what is wrong and with which field."""
        elapsed = 0.0 if started is None else time.perf_counter() - started
        self.metrics.observe_request(endpoint, error.status, elapsed, 0)
        return p.encode_error(error.message, error.field)

    def problem(self, error: BadInput, endpoint: str, started: float | None = None) -> Response:
        return Response(self.failure(error, endpoint, started), error.status, media_type=JSON)


def _output_names(model: OnnxModel | None, settings: ServingSettings) -> list[str]:
    names = list(model.output_names) if model is not None else []
    if settings.review_threshold is not None and model is not None and model.classification:
        names.append("review")
    return names


def _metadata(model: OnnxModel, settings: ServingSettings) -> p.ModelMetadata:
    inputs = [p.TensorMetadata(name=s.name, datatype=s.datatype, shape=[-1, 1]) for s in model.specs.values()]
    outputs = []
    for name in _output_names(model, settings):
        datatype = {"label": model.label_datatype, "review": "BOOL"}.get(name, "FP32")
        shape = [-1, len(model.classes)] if name == "probabilities" else [-1]
        outputs.append(p.TensorMetadata(name=name, datatype=datatype, shape=shape))
    parameters = {
        "task": model.signature.task,
        "classes": model.classes or None,
        "review_threshold": settings.review_threshold,
        "estimator": model.card.estimator,
    }
    return p.ModelMetadata(
        name=settings.model_name,
        versions=[str(settings.model_version)],
        platform="onnxruntime_onnx",
        inputs=inputs,
        outputs=outputs,
        parameters={k: v for k, v in parameters.items() if v is not None},
    )


def _kubeloop_version() -> str:
    try:
        return package_version("kubeloop")
    except PackageNotFoundError:
        return "dev"

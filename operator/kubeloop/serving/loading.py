"""Getting the registered model into memory, or refusing to: digest first, then the graph, then golden rows.

Every refusal carries a CamelCase reason shared with the validation Job's ValidationResult:
DigestMismatch | ArtifactMissing | LoadFailed | GoldenMismatch (permanent) and StoreUnavailable
(transient: the server keeps retrying, the validation Job exits 1 for the Job to retry).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import ValidationError

from kubeloop.contracts.model import ModelCard
from kubeloop.contracts.serving import ArtifactSettings
from kubeloop.serving.decoding import BadInput
from kubeloop.serving.golden import GoldenReport, compare, golden_feeds
from kubeloop.serving.inference import OnnxModel, SignatureMismatch
from kubeloop.store.client import ObjectMissing, Store, StoreUnavailable
from kubeloop.store.digest import DigestMismatch, verify
from kubeloop.store.layout import MODEL_FILE

log = logging.getLogger("kubeloop.serving.loading")


class LoadError(Exception):
    """The artifact cannot be served; `reason` says why in one CamelCase word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


@dataclass(frozen=True)
class Artifact:
    onnx: bytes
    card: ModelCard


def fetch(store: Store, settings: ArtifactSettings) -> Artifact:
    """Download model.onnx and model.json; verify the digest before anything reads the bytes."""
    onnx = _get(store, settings.model_uri)
    try:
        verify(MODEL_FILE, onnx, settings.model_sha256)
    except DigestMismatch as error:
        raise LoadError("DigestMismatch", str(error)) from None
    try:
        card = ModelCard.model_validate_json(_get(store, settings.card_uri))
    except ValidationError as error:
        raise LoadError("LoadFailed", f"model.json is not a valid model card: {error}") from None
    recorded = card.files.get(MODEL_FILE)
    if recorded is not None and recorded.sha256 != settings.model_sha256:
        raise LoadError(
            "DigestMismatch",
            f"model.json describes a model.onnx with sha256 {recorded.sha256}, "
            f"not the registered {settings.model_sha256}",
        )
    return Artifact(onnx, card)


def _get(store: Store, location: str) -> bytes:
    try:
        return store.get_bytes(location)
    except ObjectMissing as error:
        raise LoadError("ArtifactMissing", f"{location} does not exist ({error})") from None
    except ValueError as error:  # a malformed location or no S3 settings: retrying would not help
        raise LoadError("ArtifactMissing", str(error)) from None


def load(artifact: Artifact, intra_op_threads: int = 1) -> OnnxModel:
    try:
        return OnnxModel(artifact.onnx, artifact.card, intra_op_threads)
    except SignatureMismatch as error:
        raise LoadError("LoadFailed", str(error)) from None
    except Exception as error:  # onnxruntime raises its own unrelated exception types for bad graphs
        raise LoadError("LoadFailed", f"onnxruntime cannot load model.onnx: {error}") from None


def replay_golden(model: OnnxModel) -> GoldenReport:
    """Run the golden rows through the graph and compare; any failure is a LoadError."""
    try:
        feeds = golden_feeds(model)
    except BadInput as error:
        raise LoadError(
            "GoldenMismatch", f"golden inputs do not fit the signature: {error.message}"
        ) from None
    try:
        prediction = model.run(feeds)
    except Exception as error:
        raise LoadError("LoadFailed", f"the graph fails on the golden rows: {error}") from None
    report = compare(model.card.golden, prediction)
    if not report.ok:
        raise LoadError("GoldenMismatch", report.message)
    return report


# --- the server's view: a state that readiness reports ---------------------------------------------

Phase = Literal["Loading", "Ready", "Failed", "Draining"]


class ModelState:
    """What /v2/health/ready answers: Ready only once the model is loaded, checked and warm."""

    def __init__(self) -> None:
        self.phase: Phase = "Loading"
        self.reason, self.message = "Loading", "downloading the model"
        self.model: OnnxModel | None = None

    @property
    def ready(self) -> bool:
        return self.phase == "Ready"

    def set(self, phase: Phase, reason: str, message: str) -> None:
        self.phase, self.reason, self.message = phase, reason, message

    def describe(self) -> dict[str, object]:
        return {"ready": self.ready, "phase": self.phase, "reason": self.reason, "message": self.message}


def prepare(store: Store, settings: ArtifactSettings, intra_op_threads: int) -> OnnxModel:
    """Fetch, verify, load, replay the golden rows, then warm up and calibrate the cost model."""
    model = load(fetch(store, settings), intra_op_threads)
    replay_golden(model)
    feeds = golden_feeds(model)
    model.calibrate(_widen(feeds, 64))
    return model


def _widen(feeds: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    """Repeat the golden rows up to `rows` so calibration sees a realistic batch."""
    return {name: np.resize(array, (rows, 1)) for name, array in feeds.items()}


def load_in_background(
    state: ModelState,
    attempt: Callable[[], OnnxModel],
    on_ready: Callable[[OnnxModel], None],
    max_delay: float = 30.0,
) -> threading.Thread:
    """Keep trying while the store is unavailable; stop for good on a permanent failure (fail closed)."""

    def run() -> None:
        delay = 1.0
        while state.phase == "Loading":
            started = time.monotonic()
            try:
                model = attempt()
            except StoreUnavailable as error:
                state.set("Loading", "StoreUnavailable", f"{error}; retrying in {delay:.0f}s")
                log.warning(
                    "model store unavailable; retrying", extra={"retryIn": delay, "error": str(error)}
                )
                time.sleep(delay)
                delay = min(delay * 2, max_delay)
                continue
            except LoadError as error:
                state.set("Failed", error.reason, error.message)
                log.error(
                    "refusing to serve the model", extra={"reason": error.reason, "detail": error.message}
                )
                return
            except Exception as error:  # never leave the state at Loading forever without a word
                state.set("Failed", "LoadFailed", f"{type(error).__name__}: {error}")
                log.exception("model load failed")
                return
            on_ready(model)
            log.info("model ready", extra={"seconds": round(time.monotonic() - started, 3)})
            return

    thread = threading.Thread(target=run, name="model-loader", daemon=True)
    thread.start()
    return thread

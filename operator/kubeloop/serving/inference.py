"""One onnxruntime session for the whole process, tuned for a server that shares its CPUs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from kubeloop.contracts.model import ModelCard
from kubeloop.serving.columns import ELEMENTS, InputSpec

_V2_LABEL = {
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}


class SignatureMismatch(Exception):
    """model.json's signature does not describe the graph in model.onnx."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the model said for a batch: labels and probabilities, or values for a regressor."""

    labels: np.ndarray | None = None  # (rows,)
    probabilities: np.ndarray | None = None  # (rows, classes), columns in signature.classes order
    values: np.ndarray | None = None  # (rows,)

    @property
    def rows(self) -> int:
        first = self.labels if self.labels is not None else self.values
        return 0 if first is None else int(first.shape[0])

    def confidence(self) -> np.ndarray | None:
        """The top class probability of each row (what reviewThreshold is compared with)."""
        return None if self.probabilities is None else self.probabilities.max(axis=1)


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # a pipeline graph has little to overlap
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    # Spinning worker threads would burn the CPU the event loop and the other requests need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


class OnnxModel:
    """The exported pipeline: named column inputs in, label/probabilities (or value) out."""

    def __init__(self, onnx: bytes, card: ModelCard, intra_op_threads: int = 1) -> None:
        self.card = card
        self.signature = card.signature
        self.session = ort.InferenceSession(onnx, session_options(intra_op_threads), ["CPUExecutionProvider"])
        self.specs = input_specs(card, {i.name: i.type for i in self.session.get_inputs()})
        self.text_columns = frozenset(name for name, spec in self.specs.items() if spec.element == "string")
        self.classes = list(self.signature.classes or [])
        self.classification = self.signature.task == "classification"
        graph_outputs = {o.name: o.type for o in self.session.get_outputs()}
        self._outputs = self._output_names(set(graph_outputs))
        self.label_datatype = _V2_LABEL.get(graph_outputs.get(self.signature.label_output, ""), "BYTES")
        self._fixed_ms, self._per_row_ms = 0.0, 0.0

    def _output_names(self, graph: set[str]) -> list[str]:
        sig = self.signature
        wanted = (
            [sig.label_output, sig.probability_output]
            if self.classification
            else [sig.value_output or sig.label_output]
        )
        names = [name for name in wanted if name]
        if self.classification and not self.classes:
            raise SignatureMismatch("a classifier's signature must list its classes")
        absent = [name for name in names if name not in graph]
        if not names or absent:
            raise SignatureMismatch(
                f"outputs {absent or wanted} are not in the graph (it has {sorted(graph)})"
            )
        return names

    @property
    def output_names(self) -> list[str]:
        return ["label", "probabilities"] if self.classification else ["value"]

    def run(self, feeds: dict[str, np.ndarray]) -> Prediction:
        results = self.session.run(self._outputs, feeds)
        if not self.classification:
            return Prediction(values=np.asarray(results[0], dtype=np.float32).reshape(-1))
        labels = np.asarray(results[0]).reshape(-1)
        probabilities = np.asarray(results[1], dtype=np.float32) if len(results) > 1 else None
        return Prediction(labels=labels, probabilities=probabilities)

    # --- cost model: decides whether a run may stay on the event loop ---------------------------------

    def calibrate(self, feeds: dict[str, np.ndarray], repeats: int = 20) -> None:
        """Time runs of 1 row and of the whole batch `feeds`; also warms the session's allocations."""
        rows = next(iter(feeds.values())).shape[0]
        one = {name: array[:1] for name, array in feeds.items()}
        single = _best_ms(lambda: self.run(one), repeats)
        batch = _best_ms(lambda: self.run(feeds), max(3, repeats // 4))
        self._per_row_ms = max(batch - single, 0.0) / max(rows - 1, 1)
        self._fixed_ms = single

    def estimate_ms(self, rows: int) -> float:
        return self._fixed_ms + self._per_row_ms * (rows - 1)


def _best_ms(action: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def input_specs(card: ModelCard, graph_inputs: dict[str, str]) -> dict[str, InputSpec]:
    """Pair each card column with the graph input of the same name; they must match one to one."""
    columns = {column.name: column for column in card.signature.inputs}
    if set(columns) != set(graph_inputs):
        only_card, only_graph = (
            sorted(set(columns) - set(graph_inputs)),
            sorted(set(graph_inputs) - set(columns)),
        )
        raise SignatureMismatch(
            f"model.json and model.onnx disagree on the inputs: only in model.json {only_card}, "
            f"only in the graph {only_graph}"
        )
    specs: dict[str, InputSpec] = {}
    for name, column in columns.items():
        element = ELEMENTS.get(graph_inputs[name])
        if element is None:
            raise SignatureMismatch(
                f"input '{name}' has type {graph_inputs[name]}, which the server cannot feed"
            )
        specs[name] = InputSpec.of(column, element)
    return specs

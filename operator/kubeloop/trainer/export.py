"""The whole fitted Pipeline to ONNX, then proof that onnxruntime answers what scikit-learn answers.

One graph input per column (float32, int64 or string, shape [N, 1]); outputs `label` and
`probabilities` (zipmap off) for classifiers, `value` for regressors. An export that does not
reproduce scikit-learn on the test split is refused: serving must not drift from training.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
from onnx import ModelProto
from skl2onnx import to_onnx
from skl2onnx.common.data_types import DataType, FloatTensorType, Int64TensorType, StringTensorType
from sklearn.pipeline import Pipeline

import kubeloop
from kubeloop.contracts.model import Golden, InputColumn, Signature
from kubeloop.trainer.columns import MISSING_TEXT, Column, json_values, onnx_feeds
from kubeloop.trainer.errors import TrainerFailure

TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}  # what onnxruntime >= 1.18 (the server's floor) runs
TOLERANCE = 1e-4
LABEL, PROBABILITIES, VALUE = "label", "probabilities", "value"
_TENSOR_TYPES: dict[str, type[DataType]] = {"float": FloatTensorType, "integer": Int64TensorType}


@dataclass(frozen=True)
class Fidelity:
    rows: int
    label_agreement: float | None  # classification: fraction of equal labels
    max_abs_diff: float  # largest |probability| (or |value|) difference
    max_rel_diff: float | None  # regression: largest difference relative to the values' scale

    @property
    def ok(self) -> bool:
        if self.label_agreement is not None:
            return self.label_agreement == 1.0 and self.max_abs_diff <= TOLERANCE
        return (self.max_rel_diff or 0.0) <= TOLERANCE


def input_types(columns: list[Column]) -> list[tuple[str, DataType]]:
    return [(c.name, _TENSOR_TYPES.get(c.kind, StringTensorType)([None, 1])) for c in columns]


def convert(pipeline: Pipeline, columns: list[Column], regression: bool, name: str) -> bytes:
    """The serialized ONNX model of the fitted `pipeline` (preprocessing included)."""
    model = pipeline.steps[-1][1]
    options = None if regression else {id(model): {"zipmap": False}}
    final_types = [(VALUE, FloatTensorType([None, 1]))] if regression else None
    try:
        with warnings.catch_warnings():
            # The int64 imputer's unused NaN marker is cast to an integer: harmless, and noisy.
            warnings.simplefilter("ignore", RuntimeWarning)
            onx = to_onnx(
                pipeline,
                initial_types=input_types(columns),
                options=options,
                target_opset=TARGET_OPSET,
                final_types=final_types,
            )
    except Exception as error:  # skl2onnx raises many types for what it cannot convert
        raise TrainerFailure(
            "ExportFailed", f"skl2onnx cannot convert the pipeline: {error}"[:2000]
        ) from error
    assert isinstance(onx, ModelProto)
    onx.producer_name, onx.producer_version = "kubeloop", kubeloop.__version__
    onx.doc_string = f"kubeloop model {name}: scikit-learn pipeline exported by skl2onnx"
    return bytes(onx.SerializeToString())


def run(model: bytes, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


class OnnxPredictor:
    """The exported graph behind scikit-learn's predict/predict_proba, so that scikit-learn tools
    (permutation importance) score exactly what will be served, at onnxruntime's speed."""

    def __init__(self, model: bytes, columns: list[Column], classes: list[Any]) -> None:
        self.session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        self.columns, self.classes_ = columns, np.asarray(classes)

    def fit(self, *_: Any) -> OnnxPredictor:
        return self  # already trained; scikit-learn checks that estimators have fit

    def _outputs(self, x: pd.DataFrame) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, onnx_feeds(x, self.columns)), strict=True))

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        outputs = self._outputs(x)
        return (outputs[VALUE] if VALUE in outputs else outputs[LABEL]).reshape(-1)

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        return self._outputs(x)[PROBABILITIES]


def fidelity(
    pipeline: Pipeline, outputs: dict[str, np.ndarray], x: pd.DataFrame, regression: bool
) -> Fidelity:
    if regression:
        expected = np.asarray(pipeline.predict(x), dtype=np.float64)
        got = outputs[VALUE].reshape(-1).astype(np.float64)
        error = np.abs(got - expected)
        # Relative to each value, but never to less than the typical magnitude (values near 0).
        scale = np.maximum(np.abs(expected), max(float(np.mean(np.abs(expected))), 1e-12))
        return Fidelity(len(x), None, float(error.max(initial=0.0)), float((error / scale).max(initial=0.0)))
    labels = np.asarray(pipeline.predict(x))
    proba = np.asarray(pipeline.predict_proba(x), dtype=np.float64)
    agreement = float(np.mean(outputs[LABEL].reshape(-1) == labels)) if len(x) else 1.0
    diff = float(np.abs(outputs[PROBABILITIES].astype(np.float64) - proba).max(initial=0.0))
    return Fidelity(len(x), agreement, diff, None)


def check(
    pipeline: Pipeline,
    model: bytes,
    x: pd.DataFrame,
    columns: list[Column],
    *,
    regression: bool,
    hint: str = "",
) -> Fidelity:
    """Fidelity on `x` (the test split); ExportMismatch when onnxruntime disagrees."""
    found = fidelity(pipeline, run(model, onnx_feeds(x, columns)), x, regression)
    if not found.ok:
        agreement = "" if regression else f"label agreement {found.label_agreement:.4f}, "
        relative = f", max relative diff {found.max_rel_diff:.3g}" if regression else ""
        raise TrainerFailure(
            "ExportMismatch",
            (
                f"the ONNX export does not reproduce scikit-learn on {found.rows} test rows: {agreement}"
                f"max |diff| {found.max_abs_diff:.3g}{relative} (tolerance {TOLERANCE}). {hint}"
            ).strip(),
        )
    return found


def golden(model: bytes, x: pd.DataFrame, columns: list[Column], regression: bool, rows: int = 20) -> Golden:
    """Up to `rows` test rows (those with missing values first, to exercise the imputers) and what
    the exported model answered for them: the ModelVersion validation replays these."""
    text = [c.name for c in columns if c.categorical]
    incomplete = x.isna().any(axis=1) | (x[text] == MISSING_TEXT).any(axis=1)
    order = list(x.index[incomplete][: rows // 2]) + list(x.index[~incomplete])
    chosen = x.loc[order[:rows]]
    outputs = run(model, onnx_feeds(chosen, columns))
    inputs = {c.name: json_values(chosen[c.name]) for c in columns}
    if regression:
        return Golden(
            inputs=inputs, values=[float(v) for v in outputs[VALUE].reshape(-1)], tolerance=TOLERANCE
        )
    labels: list[Any] = json_values(pd.Series(outputs[LABEL].reshape(-1)))
    return Golden(
        inputs=inputs,
        labels=labels,
        probabilities=outputs[PROBABILITIES].astype(float).tolist(),
        tolerance=TOLERANCE,
    )


def signature(columns: list[Column], regression: bool, classes: list[Any]) -> Signature:
    inputs = [
        InputColumn(name=c.name, type=c.kind, categorical=c.categorical, nullable=c.kind != "integer")
        for c in columns
    ]
    if regression:
        return Signature(
            inputs=inputs, task="regression", label_output=VALUE, probability_output=None, value_output=VALUE
        )
    return Signature(inputs=inputs, task="classification", classes=[str(c) for c in classes])

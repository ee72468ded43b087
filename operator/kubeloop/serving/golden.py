"""Replaying the rows recorded at training: proves the exported graph answers as the trained model did."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kubeloop.contracts.model import Golden
from kubeloop.serving.decoding import BadInput, decode_records
from kubeloop.serving.inference import OnnxModel, Prediction


@dataclass(frozen=True)
class GoldenReport:
    ok: bool
    message: str
    rows: int
    max_abs_diff: float | None = None


def golden_feeds(model: OnnxModel) -> dict[str, np.ndarray]:
    """The golden rows decoded exactly as a request's would be (raises BadInput if they do not fit)."""
    golden = model.card.golden
    lengths = {len(values) for values in golden.inputs.values()}
    if len(lengths) != 1:
        raise BadInput(f"golden inputs have columns of different lengths {sorted(lengths)}")
    rows = lengths.pop()
    instances = [{name: values[row] for name, values in golden.inputs.items()} for row in range(rows)]
    return decode_records({"instances": instances}, model.specs, max(rows, 1)).feeds


def compare(golden: Golden, prediction: Prediction) -> GoldenReport:
    """Labels must be equal; probabilities and values within golden.tolerance (relative above 1)."""
    rows = prediction.rows
    problems: list[str] = []
    diffs: list[float] = []
    if golden.labels is not None:
        got = [] if prediction.labels is None else [str(v) for v in prediction.labels.tolist()]
        want = [str(v) for v in golden.labels]
        wrong = [i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b]
        if len(got) != len(want) or wrong:
            first = wrong[0] if wrong else min(len(got), len(want))
            problems.append(f"labels differ at row {first} ({len(wrong)} of {len(want)} rows)")
    for what, expected, actual in (
        ("probabilities", golden.probabilities, prediction.probabilities),
        ("values", golden.values, prediction.values),
    ):
        if expected is None:
            continue
        diff = _max_scaled_diff(np.asarray(expected, dtype=np.float64), actual)
        diffs.append(diff)
        if not diff <= golden.tolerance:  # NaN (shape mismatch) fails too
            problems.append(f"{what} differ by up to {diff:.3g} (tolerance {golden.tolerance:g})")
    max_diff = max(diffs) if diffs else None
    if problems:
        return GoldenReport(False, "; ".join(problems), rows, max_diff)
    return GoldenReport(True, f"{rows} golden rows reproduced", rows, max_diff)


def _max_scaled_diff(expected: np.ndarray, actual: np.ndarray | None) -> float:
    if actual is None or expected.shape != actual.shape:
        return float("nan")
    if expected.size == 0:
        return 0.0
    scale = np.maximum(np.abs(expected), 1.0)
    return float(np.max(np.abs(actual.astype(np.float64) - expected) / scale))

"""Trainer overhead and ONNX export fidelity (a benchmark, not a test).

Times `python -m kubeloop.trainer` end to end (process start, load, validation, fit, metrics,
permutation importance, ONNX export and check, artifacts) against the bare scikit-learn fit +
predict of the same pipeline on the same split, in this process. Then replays every row of the
dataset through the trainer's model.onnx and compares it with that scikit-learn pipeline.

    .venv/bin/python bench/trainer_bench.py [--rows 50000] [--columns 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))

from kubeloop.contracts.model import DatasetRef  # noqa: E402
from kubeloop.contracts.tasks import TrainerTask  # noqa: E402
from kubeloop.trainer.columns import normalize, onnx_feeds  # noqa: E402
from kubeloop.trainer.dataset import Dataset  # noqa: E402
from kubeloop.trainer.estimators import effective_params  # noqa: E402
from kubeloop.trainer.prepare import encode_and_split, parse_spec  # noqa: E402
from kubeloop.trainer.train import make_pipeline  # noqa: E402
from kubeloop.trainer.validation import validate  # noqa: E402

ESTIMATOR = "HistGradientBoostingClassifier"


def dataset(rows: int, columns: int, seed: int = 0) -> pd.DataFrame:
    """`columns` features: mostly floats (some missing), a few integers, two texts and a boolean."""
    rng = np.random.default_rng(seed)
    n_text, n_int = 2, 3
    n_float = columns - n_text - n_int - 1
    data: dict[str, Any] = {f"f{i}": rng.normal(0, 1 + i % 3, rows) for i in range(n_float)}
    data |= {f"i{i}": rng.integers(0, 20, rows) for i in range(n_int)}
    data |= {f"t{i}": rng.choice(["a", "b", "c", "d", "e"], rows) for i in range(n_text)}
    data["flag"] = rng.random(rows) < 0.3
    frame = pd.DataFrame(data)
    logit = frame["f0"] - 0.5 * frame["f1"] + 0.1 * frame["i0"] + (frame["t0"] == "a") - frame["flag"]
    frame["label"] = np.where(logit + rng.normal(0, 1, rows) > 0.5, "yes", "no")
    for i in range(0, n_float, 3):
        frame.loc[rng.random(rows) < 0.02, f"f{i}"] = np.nan
    return frame


def spec_for(path: Path) -> dict[str, Any]:
    dataset = {"uri": f"file://{path}", "format": "parquet", "target": "label"}
    return {
        "model": "bench",
        "dataset": dataset,
        "algorithm": {"estimator": ESTIMATOR},
        "split": {"seed": 42},
    }


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # user + system of every thread: steadier than wall time on a shared machine


def run_trainer(spec: dict[str, Any], work: Path) -> tuple[Timing, list[dict[str, Any]], dict[str, Any]]:
    task = TrainerTask(mode="train", spec=spec, output=f"file://{work}/run/", training_run="bench/run",
                       training_run_uid="bench")  # fmt: skip
    result = work / "result.json"
    env = {**os.environ, "KUBELOOP_TASK": task.to_json(), "KUBELOOP_TERMINATION_LOG": str(result),
           "PYTHONPATH": str(REPO / "operator")}  # fmt: skip
    env.pop("KUBELOOP_S3_ENDPOINT", None)
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "kubeloop.trainer"], env=env, capture_output=True, text=True,
                          check=False)  # fmt: skip
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"trainer failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return Timing(wall, cpu), lines, json.loads(result.read_text())


def bare_sklearn(frame: pd.DataFrame, spec: dict[str, Any]) -> tuple[Timing, Timing, Any, Any]:
    """The same pipeline on the same split, fitted and used for prediction in-process."""
    parsed, estimator = parse_spec(spec)
    data = normalize(frame)
    report = validate(data, parsed.dataset, regression=False)
    ref = DatasetRef(uri=parsed.dataset.uri, sha256="0" * 64, rows=len(data), columns=len(data.columns))
    prepared = encode_and_split(parsed, estimator, Dataset(data, ref), report)
    pipeline = make_pipeline(prepared, effective_params(estimator, {}, parsed.split.seed))
    wall, cpu = time.perf_counter(), time.process_time()
    pipeline.fit(prepared.x_train, prepared.y_train)
    fit = Timing(time.perf_counter() - wall, time.process_time() - cpu)
    wall, cpu = time.perf_counter(), time.process_time()
    pipeline.predict_proba(prepared.x_test)
    predict = Timing(time.perf_counter() - wall, time.process_time() - cpu)
    return fit, predict, pipeline, prepared


def fidelity(model_path: Path, pipeline: Any, prepared: Any) -> dict[str, float]:
    """Every row (train and test) through onnxruntime and through scikit-learn."""
    x = pd.concat([prepared.x_train, prepared.x_test])
    session = ort.InferenceSession(model_path.read_bytes(), providers=["CPUExecutionProvider"])
    feeds = onnx_feeds(x, prepared.columns)
    started = time.perf_counter()
    labels, proba = session.run(["label", "probabilities"], feeds)
    onnx_seconds = time.perf_counter() - started
    started = time.perf_counter()
    expected = pipeline.predict_proba(x)
    sklearn_seconds = time.perf_counter() - started
    return {
        "rows": len(x),
        "label_agreement": float(np.mean(labels.ravel() == pipeline.classes_[expected.argmax(axis=1)])),
        "max_abs_prob_diff": float(np.abs(proba - expected).max()),
        "onnx_predict_seconds": onnx_seconds,
        "sklearn_predict_seconds": sklearn_seconds,
    }


def stage_seconds(lines: list[dict[str, Any]]) -> dict[str, float]:
    stages: dict[str, float] = {}  # summed: artifact-written appears once per file
    for line in lines:
        if "seconds" in line and line["stage"] != "finished":
            stages[line["stage"]] = stages.get(line["stage"], 0.0) + float(line["seconds"])
    return stages


def median(values: list[float]) -> float:
    return float(np.median(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each side; medians are reported")
    args = parser.parse_args()
    trainer: list[Timing] = []
    bare: list[tuple[Timing, Timing]] = []
    stages: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="kubeloop-bench-") as tmp:
        work = Path(tmp)
        frame = dataset(args.rows, args.columns)
        frame.to_parquet(work / "data.parquet", index=False)
        spec = spec_for(work / "data.parquet")
        for _ in range(args.repeat):  # alternate the two sides so that load changes hit both alike
            timing, lines, result = run_trainer(spec, work)
            trainer.append(timing)
            stages.append(stage_seconds(lines))
            fit, predict, pipeline, prepared = bare_sklearn(frame, spec)
            bare.append((fit, predict))
        figures = fidelity(work / "run" / "model.onnx", pipeline, prepared)
    checked = next(line for line in lines if line["stage"] == "export-fidelity")
    print(f"{args.rows} rows, {args.columns} feature columns, {ESTIMATOR}, {os.cpu_count()} CPUs, "
          f"median of {args.repeat} runs\n")  # fmt: skip
    rows = [
        *timing_rows(trainer, bare),
        *((f"trainer stage `{name}` (wall)", f"{median([s.get(name, 0.0) for s in stages]):.3f} s")
          for name in stages[0]),
        ("trainer outside the stages: interpreter start, imports, golden rows, report (wall)",
         f"{median([t.wall - sum(s.values()) for t, s in zip(trainer, stages, strict=True)]):.2f} s"),
        (f"export check in the trainer ({checked['rows']} test rows)",
         f"label agreement {checked['label_agreement']}, max abs prob diff {checked['max_abs_diff']:.2e}"),
        (f"replay of all {figures['rows']} rows: label agreement", f"{figures['label_agreement']}"),
        ("replay of all rows: max abs prob diff", f"{figures['max_abs_prob_diff']:.2e}"),
        ("predict_proba on all rows: onnxruntime / scikit-learn",
         f"{figures['onnx_predict_seconds']:.3f} s / {figures['sklearn_predict_seconds']:.3f} s"),
        ("trainer metrics (test split)", json.dumps({k: round(v, 4) for k, v in result["metrics"].items()})),
    ]  # fmt: skip
    print("| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows))


def timing_rows(trainer: list[Timing], bare: list[tuple[Timing, Timing]]) -> list[tuple[str, str]]:
    rows = []
    for kind in ("wall", "cpu"):
        ours = median([getattr(t, kind) for t in trainer])
        fit = median([getattr(f, kind) for f, _ in bare])
        predict = median([getattr(p, kind) for _, p in bare])
        rows += [
            (f"trainer, `python -m kubeloop.trainer` start to exit ({kind})", f"{ours:.2f} s"),
            (f"bare scikit-learn fit + predict_proba, same pipeline and split ({kind})",
             f"{fit + predict:.2f} s (fit {fit:.2f} s, predict {predict:.3f} s)"),
            (f"**ratio trainer / bare ({kind})**", f"**{ours / (fit + predict):.2f}x**"),
        ]  # fmt: skip
    return rows


if __name__ == "__main__":
    main()

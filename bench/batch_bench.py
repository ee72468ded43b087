"""Batch scoring end to end (MinIO -> score -> MinIO) vs onnxruntime in-process on the same rows.

    .venv/bin/python bench/batch_bench.py [--rows 1000000] [--files 4] [--rounds 3] [--threads 1]
                                          [--models rf,logreg] [--formats csv,parquet]

Data: make_classification-like rows, 20 float features, split into `--files` files and uploaded to a
real MinIO (started here, from the test binaries). Models: trained by `python -m kubeloop.trainer`
on 50k rows of the same distribution (rf: RandomForestClassifier 100 trees depth 10, the serving
bench's model; logreg: LogisticRegression, the cheapest graph, where I/O weighs most).

End to end: `python -m kubeloop.batch score` as a subprocess, one shard, exactly as a pod runs it:
interpreter start, digest check, golden replay, listing, streaming read, validation, scoring, writing
the parts and the manifest back to MinIO. Wall time from start to exit.
Floor: the same model.onnx in one onnxruntime session in this process (same session options and
threads), fed the same rows as ready float32 arrays, in chunks of the same size; only session.run is
timed. Ratio = end-to-end rows/s divided by floor rows/s. Medians over the rounds.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "operator")]

from kubeloop.contracts.batch import BatchTask, InputRef, ModelRef, OutputRef, ShardResult  # noqa: E402
from kubeloop.serving.inference import session_options  # noqa: E402
from tests.infra.minio_server import MinioServer  # noqa: E402

PYTHON = sys.executable
FEATURES = [f"f{i}" for i in range(20)]
ALGORITHMS = {
    "rf": {"estimator": "RandomForestClassifier", "params": {"n_estimators": 100, "max_depth": 10}},
    "logreg": {"estimator": "LogisticRegression", "params": {}},
}
CHUNK = 50_000


def make_rows(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(rows, len(FEATURES))).astype(np.float32).round(4)
    frame = pd.DataFrame(data, columns=FEATURES)
    weights = np.linspace(-1, 1, len(FEATURES))
    frame["label"] = (data @ weights + rng.normal(0, 0.5, rows) > 0).astype(int)
    return frame


def train(work: Path, name: str) -> Path:
    output = work / f"model-{name}"
    if (output / "model.json").exists():
        return output
    make_rows(50_000, 0).to_csv(work / "train.csv", index=False)
    spec = {"model": "bench",
            "dataset": {"uri": f"file://{work}/train.csv", "format": "csv", "target": "label"},
            "algorithm": ALGORITHMS[name], "split": {"testFraction": 0.2, "seed": 0}}  # fmt: skip
    task = {"mode": "train", "spec": spec, "output": f"file://{output}/", "trainingRun": "bench/b",
            "trainingRunUid": "bench"}  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "operator"), "KUBELOOP_TASK": json.dumps(task),
           "KUBELOOP_TERMINATION_LOG": str(work / "train.result")}  # fmt: skip
    subprocess.run([PYTHON, "-m", "kubeloop.trainer"], env=env, check=True, stdout=subprocess.DEVNULL)
    return output


def upload_model(minio: MinioServer, folder: Path, name: str) -> ModelRef:
    client = minio.client()
    for file in ("model.onnx", "model.json"):
        data = (folder / file).read_bytes()
        client.put_object(minio.bucket, f"models/{name}/{file}", io.BytesIO(data), len(data))
    sha = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    base = f"s3://{minio.bucket}/models/{name}/"
    return ModelRef(
        name="bench", version=1, uri=base + "model.onnx", sha256=sha, card_uri=base + "model.json"
    )


def upload_input(minio: MinioServer, frame: pd.DataFrame, files: int, file_format: str) -> str:
    client = minio.client()
    for index, part in enumerate(np.array_split(np.arange(len(frame)), files)):
        table = pa.Table.from_pandas(frame.iloc[part][FEATURES], preserve_index=False)
        sink = io.BytesIO()
        if file_format == "parquet":
            pq.write_table(table, sink)
        else:
            import pyarrow.csv as pacsv  # noqa: PLC0415

            pacsv.write_csv(table, sink)
        data = sink.getvalue()
        client.put_object(
            minio.bucket, f"input/{file_format}/part-{index}.{file_format}", io.BytesIO(data), len(data)
        )
    return f"s3://{minio.bucket}/input/{file_format}/"


def end_to_end(minio: MinioServer, work: Path, model: ModelRef, source: str, file_format: str, *,
               threads: int, run: str) -> tuple[float, ShardResult]:  # fmt: skip
    task = BatchTask(batch_prediction="bench/b", model=model, input=InputRef(uri=source, format=file_format),
                     output=OutputRef(uri=f"s3://{minio.bucket}/output/", format=file_format), shards=1,
                     chunk_rows=CHUNK, max_reject_fraction=0.0)  # fmt: skip
    result = work / f"{run}.result"
    env = {**os.environ, "PYTHONPATH": str(REPO / "operator"), "KUBELOOP_TASK": task.to_json(),
           "KUBELOOP_JOB_NAME": run, "JOB_COMPLETION_INDEX": "0", "KUBELOOP_TERMINATION_LOG": str(result),
           "KUBELOOP_INTRA_OP_THREADS": str(threads), "KUBELOOP_S3_ENDPOINT": minio.url,
           "KUBELOOP_S3_ACCESS_KEY": minio.access_key, "KUBELOOP_S3_SECRET_KEY": minio.secret_key,
           "KUBELOOP_S3_BUCKET": minio.bucket}  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "-m", "kubeloop.batch", "score"], env=env, capture_output=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode()[-3000:])
    return seconds, ShardResult.model_validate_json(result.read_text())


def floor(model_file: Path, frame: pd.DataFrame, threads: int) -> float:
    """Seconds of session.run alone over every chunk, the inputs ready as float32 [n, 1] arrays."""
    import onnxruntime as ort  # noqa: PLC0415

    session = ort.InferenceSession(str(model_file), session_options(threads), ["CPUExecutionProvider"])
    outputs = ["label", "probabilities"]
    chunks = [
        {name: frame[name].to_numpy(np.float32)[start : start + CHUNK].reshape(-1, 1) for name in FEATURES}
        for start in range(0, len(frame), CHUNK)
    ]
    session.run(outputs, chunks[0])  # warm up, as the batch pod does with the golden rows
    started = time.perf_counter()
    for feeds in chunks:
        session.run(outputs, feeds)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads, both sides")
    parser.add_argument("--models", default="rf,logreg")
    parser.add_argument("--formats", default="csv,parquet")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kubeloop-batch-bench-"))
    minio = MinioServer().start()
    rows: list[dict[str, Any]] = []
    try:
        frame = make_rows(options.rows, 1)
        sources = {fmt: upload_input(minio, frame, options.files, fmt) for fmt in options.formats.split(",")}
        for name in options.models.split(","):
            folder = train(work, name)
            model = upload_model(minio, folder, name)
            for fmt, source in sources.items():
                e2e, ort_seconds, stages = [], [], []
                for round_ in range(options.rounds):
                    seconds, result = end_to_end(
                        minio, work, model, source, fmt, threads=options.threads, run=f"{name}-{fmt}-{round_}"
                    )
                    assert result.rows_out == options.rows, result
                    e2e.append(seconds)
                    ort_seconds.append(floor(folder / "model.onnx", frame, options.threads))
                    manifest = (
                        minio.client().get_object(minio.bucket, result.manifest.split("/", 3)[3]).read()
                    )
                    stages.append(json.loads(manifest)["timings"])
                e2e_rate = options.rows / statistics.median(e2e)
                floor_rate = options.rows / statistics.median(ort_seconds)
                timing = {k: round(statistics.median(s[k] for s in stages), 2) for k in stages[0]}
                rows.append({"model": name, "format": fmt, "e2e": statistics.median(e2e),
                             "e2e_rate": e2e_rate, "floor": statistics.median(ort_seconds),
                             "floor_rate": floor_rate, "ratio": e2e_rate / floor_rate,
                             "stages": timing})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    finally:
        minio.stop()
    print(f"\n{options.rows:,} rows x {len(FEATURES)} float features, {options.files} files, "
          f"chunks of {CHUNK:,}, {options.threads} onnxruntime thread(s), "
          f"median of {options.rounds}\n")  # fmt: skip
    print("| model | in/out format | end to end (MinIO -> MinIO) | onnxruntime in-process | ratio | "
          "shard stages: read / validation / score / write (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for row in rows:
        stages = row["stages"]
        print(f"| {row['model']} | {row['format']} | {row['e2e']:.2f} s = {row['e2e_rate']:,.0f} rows/s | "
              f"{row['floor']:.2f} s = {row['floor_rate']:,.0f} rows/s | **{row['ratio']:.2f}x** | "
              f"{stages['read']} / {stages['validation']} / {stages['score']} / "
              f"{stages['write']} |")  # fmt: skip


if __name__ == "__main__":
    main()

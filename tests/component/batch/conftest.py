"""Batch scoring as its Job runs it: `python -m kubeloop.batch` as a real process, against the session's
MinIO, with models trained by the project's trainer (tests/component/serving/conftest.py)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from kubeloop.contracts.batch import BatchTask, InputRef, ModelRef, OutputRef, ShardManifest, ShardResult
from kubeloop.store.client import Store
from tests.component.serving.conftest import TrainedModel, churn_frame, price_frame, s3_env, train
from tests.infra.minio_server import MinioServer

REPO = Path(__file__).resolve().parents[3]
PEAK_RSS = Path(__file__).with_name("peak_rss.py")


@pytest.fixture(scope="session")
def batch_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("batch-models")


@pytest.fixture(scope="session")
def classifier(minio: MinioServer, batch_models: Path) -> TrainedModel:
    """A RandomForest on integer, float (with gaps), string (with gaps) and boolean columns."""
    algorithm = {"estimator": "RandomForestClassifier", "params": {"n_estimators": 30, "max_depth": 6}}
    return train(minio, batch_models, "churn", churn_frame(), target="churned", algorithm=algorithm)


@pytest.fixture(scope="session")
def regressor(minio: MinioServer, batch_models: Path) -> TrainedModel:
    return train(
        minio, batch_models, "price", price_frame(), target="price", algorithm={"estimator": "Ridge"}
    )


def folder(minio: MinioServer, what: str) -> str:
    """A fresh folder in the bucket."""
    return f"s3://{minio.bucket}/batch-tests/{what}-{uuid.uuid4().hex[:8]}/"


def task_for(model: TrainedModel, input_uri: str, output_uri: str, **options: Any) -> BatchTask:
    input_format = options.pop("input_format", "csv")
    output = {"uri": output_uri, **options.pop("output", {})}
    return BatchTask(
        batch_prediction="test/batch",
        model=ModelRef(
            name=model.name, version=1, uri=model.model_uri, sha256=model.sha256, card_uri=model.card_uri
        ),
        input=InputRef(uri=input_uri, format=input_format),
        output=OutputRef.model_validate(output),
        shards=options.pop("shards", 1),
        chunk_rows=options.pop("chunk_rows", 1000),
        max_reject_fraction=options.pop("max_reject_fraction", 0.5),
    )


@dataclass
class Finished:
    code: int
    result: ShardResult
    max_rss_mib: float  # peak resident memory of the process
    log: str


def run_score(minio: MinioServer, work: Path, task: BatchTask, *, shard: int = 0, run: str = "run-1",
              **env: str) -> Finished:  # fmt: skip
    """One scoring pod, as the Job runs it; its peak RSS is the kernel's (see peak_rss.py)."""
    tag = f"{run}-{shard}-{uuid.uuid4().hex[:6]}"
    termination, log, peak = work / f"{tag}.result", work / f"{tag}.log", work / f"{tag}.rss"
    full = {
        "PATH": os.environ["PATH"], "PYTHONPATH": str(REPO / "operator"), **s3_env(minio),
        "KUBELOOP_TASK": task.to_json(), "KUBELOOP_JOB_NAME": run, "JOB_COMPLETION_INDEX": str(shard),
        "KUBELOOP_TERMINATION_LOG": str(termination), "KUBELOOP_INTRA_OP_THREADS": "1", **env,
    }  # fmt: skip
    argv = [sys.executable, str(PEAK_RSS), str(peak), sys.executable, "-m", "kubeloop.batch", "score"]
    with log.open("w") as output:
        done = subprocess.run(
            argv, env=full, stdout=output, stderr=subprocess.STDOUT, timeout=600, check=False
        )
    text = log.read_text()
    assert termination.exists(), f"no termination message; exit {done.returncode}:\n{text[-3000:]}"
    result = ShardResult.model_validate_json(termination.read_text())
    return Finished(done.returncode, result, int(peak.read_text()) / 1024, text)


def upload_csv(store: Store, location: str, frame: pd.DataFrame) -> None:
    store.put_bytes(location, frame.to_csv(index=False).encode(), "text/csv")


def upload_parquet(
    store: Store, location: str, frame: pd.DataFrame, row_group_size: int | None = None
) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, row_group_size=row_group_size)
    store.put_bytes(location, sink.getvalue())


def read_parts(store: Store, manifests: list[ShardManifest]) -> pd.DataFrame:
    """Every output part the manifests list, in order, as one frame."""
    frames = []
    for manifest in manifests:
        for part in manifest.parts:
            data = store.get_bytes(part.uri)
            table = (
                pq.read_table(io.BytesIO(data))
                if part.uri.endswith(".parquet")
                else pacsv.read_csv(
                    io.BytesIO(data), convert_options=pacsv.ConvertOptions(strings_can_be_null=True)
                )
            )
            frames.append(table.to_pandas())
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def shard_manifest(store: Store, result: ShardResult) -> ShardManifest:
    assert result.manifest is not None, result
    return ShardManifest.model_validate_json(store.get_bytes(result.manifest))

"""Scoring for real: files in MinIO -> `python -m kubeloop.batch score` -> parts and manifests in MinIO."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kubeloop.contracts.batch import PREDICTION_COLUMN, PROBABILITY_PREFIX
from kubeloop.store.client import Store
from tests.component.batch.conftest import (
    folder,
    read_parts,
    run_score,
    shard_manifest,
    task_for,
    upload_csv,
    upload_parquet,
)
from tests.component.serving.conftest import TrainedModel
from tests.infra.minio_server import MinioServer

pytestmark = pytest.mark.minio


def golden_frame(model: TrainedModel) -> pd.DataFrame:
    """The golden rows of model.json as a table, with a row id to find each row in the output."""
    frame = pd.DataFrame(model.card.golden.inputs)
    frame.insert(0, "row_id", [f"r{i:02d}" for i in range(len(frame))])
    return frame


def test_multi_file_csv_input_scores_exactly_like_the_trainers_golden_rows(
    minio: MinioServer, store: Store, classifier: TrainedModel, tmp_path: Path
) -> None:
    rows, source, out = golden_frame(classifier), folder(minio, "in"), folder(minio, "out")
    for index, (start, stop) in enumerate([(0, 7), (7, 14), (14, len(rows))]):
        upload_csv(store, f"{source}day-{index}.csv", rows.iloc[start:stop])
    store.put_bytes(f"{source}_SUCCESS", b"")  # markers and other formats are not input
    store.put_bytes(f"{source}readme.txt", b"not a table")
    task = task_for(classifier, source, out, shards=2, chunk_rows=3, output={"includeInputColumns": True})
    finished = [run_score(minio, tmp_path, task, shard=shard) for shard in (0, 1)]
    assert [f.code for f in finished] == [0, 0], [f.log[-2000:] for f in finished]
    manifests = [shard_manifest(store, f.result) for f in finished]
    assert sorted(len(m.inputs) for m in manifests) == [1, 2]  # three files over two shards
    assert sum(m.rows_in for m in manifests) == sum(m.rows_out for m in manifests) == len(rows)
    assert all(m.model.sha256 == classifier.sha256 and m.model.version == 1 for m in manifests)
    assert all(part.rows <= 3 for m in manifests for part in m.parts)  # one part per chunk of 3 rows

    scored = read_parts(store, manifests).set_index("row_id").loc[rows.row_id]
    golden = classifier.card.golden
    assert [str(v) for v in scored[PREDICTION_COLUMN]] == [str(v) for v in golden.labels or []]
    classes = classifier.card.signature.classes or []
    probabilities = scored[[f"{PROBABILITY_PREFIX}{c}" for c in classes]].to_numpy(np.float64)
    assert np.abs(probabilities - np.asarray(golden.probabilities)).max() <= golden.tolerance
    assert list(scored.columns[: len(rows.columns) - 1]) == list(rows.columns[1:])  # input columns kept


def test_parquet_input_split_by_row_groups_scores_like_the_golden_rows(
    minio: MinioServer, store: Store, regressor: TrainedModel, tmp_path: Path
) -> None:
    """One file, three shards: each shard reads its own row groups."""
    rows, source, out = golden_frame(regressor), folder(minio, "in"), folder(minio, "out")
    upload_parquet(store, f"{source}prices.parquet", rows, row_group_size=4)
    task = task_for(regressor, source, out, input_format="parquet", shards=3,
                    output={"format": "parquet", "keyColumns": ["row_id"]})  # fmt: skip
    finished = [run_score(minio, tmp_path, task, shard=shard) for shard in range(3)]
    assert [f.code for f in finished] == [0, 0, 0], [f.log[-2000:] for f in finished]
    manifests = [shard_manifest(store, f.result) for f in finished]
    assert sorted(m.inputs[0].range or "" for m in manifests) == [
        "row groups 0-0", "row groups 1-2", "row groups 3-4"]  # fmt: skip
    scored = read_parts(store, manifests)
    assert list(scored.columns) == ["row_id", PREDICTION_COLUMN]
    scored = scored.set_index("row_id").loc[rows.row_id]
    expected = np.asarray(regressor.card.golden.values, dtype=np.float64)
    scale = np.maximum(np.abs(expected), 1.0)
    assert np.max(np.abs(scored[PREDICTION_COLUMN].to_numpy(np.float64) - expected) / scale) <= 1e-4


def test_one_large_csv_is_split_in_byte_ranges_that_cover_each_row_once(
    minio: MinioServer, store: Store, classifier: TrainedModel, tmp_path: Path
) -> None:
    rows, source, out = golden_frame(classifier), folder(minio, "in"), folder(minio, "out")
    big = pd.concat([rows] * 6000, ignore_index=True)  # 120 000 rows, over 3 MiB: three 1 MiB+ pieces
    big["row_id"] = [f"r{i}" for i in range(len(big))]
    upload_csv(store, f"{source}all.csv", big)
    task = task_for(classifier, f"{source}all.csv", out, shards=3, chunk_rows=5000,
                    output={"keyColumns": ["row_id"]})  # fmt: skip
    finished = [
        run_score(minio, tmp_path, task, shard=shard, KUBELOOP_BATCH_MIN_PIECE_BYTES="65536")
        for shard in range(3)
    ]
    assert [f.code for f in finished] == [0, 0, 0], [f.log[-2000:] for f in finished]
    manifests = [shard_manifest(store, f.result) for f in finished]
    assert all((m.inputs[0].range or "").startswith("bytes ") for m in manifests)
    assert all(m.rows_in > 20_000 for m in manifests)  # each shard did its share
    scored = read_parts(store, manifests)
    assert sorted(scored.row_id) == sorted(big.row_id)  # every row once, none twice

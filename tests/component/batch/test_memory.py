"""Memory stays bounded by the chunk size, not the input size: the peak RSS of the real scoring process
on an input 400 chunks long stays within a few MiB of its peak on an input of one chunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kubeloop.store.client import Store
from tests.component.batch.conftest import folder, run_score, task_for
from tests.component.serving.conftest import TrainedModel
from tests.infra.minio_server import MinioServer

pytestmark = [pytest.mark.minio, pytest.mark.timeout(600)]
CHUNK = 5_000
BIG_ROWS = 2_000_000  # 400 chunks
# Holding the whole big input would cost more than its 40+ MiB of text (as Arrow strings, then numpy
# object arrays of str for the text columns: 1.3 GiB measured); streaming costs a few chunks, a few
# more when a loaded machine lets the bounded queues fill (243 vs 213 MiB seen under load 5).
ALLOWED_GROWTH_MIB = 100


def customers(rows: int, seed: int = 11) -> bytes:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "tenure": rng.integers(0, 72, rows),
        "charges": np.round(rng.normal(70, 25, rows), 2),
        "contract": rng.choice(["monthly", "yearly", "two-year"], rows),
        "senior": rng.choice(["true", "false"], rows),
    })  # fmt: skip
    return frame.to_csv(index=False).encode()


def test_peak_memory_does_not_grow_with_the_input(
    minio: MinioServer, store: Store, classifier: TrainedModel, tmp_path: Path
) -> None:
    small, big = folder(minio, "small"), folder(minio, "big")
    store.put_bytes(f"{small}customers.csv", customers(CHUNK))
    data = customers(BIG_ROWS)
    assert len(data) > 40 << 20
    store.put_bytes(f"{big}customers.csv", data)
    del data

    baseline = run_score(minio, tmp_path, task_for(classifier, small, folder(minio, "out"), chunk_rows=CHUNK))
    assert baseline.code == 0, baseline.log[-3000:]
    large = run_score(minio, tmp_path, task_for(classifier, big, folder(minio, "out"), chunk_rows=CHUNK))
    assert large.code == 0, large.log[-3000:]
    assert large.result.rows_out == BIG_ROWS and large.result.rejects == 0
    growth = large.max_rss_mib - baseline.max_rss_mib
    assert growth < ALLOWED_GROWTH_MIB, (
        f"peak RSS {large.max_rss_mib:.0f} MiB on {BIG_ROWS} rows vs {baseline.max_rss_mib:.0f} MiB on "
        f"{CHUNK}: the input is not streamed"
    )

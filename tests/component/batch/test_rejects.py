"""Bad rows are set aside with their reason; a run fails only over the declared fraction, or on input
or an artifact that no retry can fix."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from kubeloop.contracts.tasks import EXIT_PERMANENT, EXIT_TRANSIENT
from kubeloop.store.client import Store
from tests.component.batch.conftest import folder, read_parts, run_score, shard_manifest, task_for, upload_csv
from tests.component.batch.test_scoring import golden_frame
from tests.component.serving.conftest import TrainedModel
from tests.infra.minio_server import MinioServer
from tests.infra.processes import free_port

pytestmark = pytest.mark.minio
# Row id -> (the CSV line after the id, the reason it must be rejected with).
BAD_ROWS = {
    "bad-tenure": ("abc,50.5,monthly,true", "tenure: expected a number, got 'abc'"),
    "no-tenure": (",50.5,monthly,true", "tenure: missing value: an integer column cannot be missing"),
    "half-tenure": ("3.5,50.5,monthly,true", "tenure: expected an integer, got 3.5"),
    "bad-charges": ("12,twelve,yearly,false", "charges: expected a number, got 'twelve'"),
    "huge-charges": ("12,1e400,yearly,false", "charges: number out of range for FP32: inf"),
    "bad-senior": ("12,50.5,yearly,maybe", "senior: expected true or false, got 'maybe'"),
}


def dirty_csv(model: TrainedModel) -> bytes:
    good = golden_frame(model).to_csv(index=False)
    bad = "".join(f"{row},{line}\n" for row, (line, _) in BAD_ROWS.items())
    return (good + bad + "extra,1,2.0,monthly,true,surplus\n").encode()


def test_rejected_rows_carry_their_reason_and_values(
    minio: MinioServer, store: Store, classifier: TrainedModel, tmp_path: Path
) -> None:
    source, out = folder(minio, "in"), folder(minio, "out")
    store.put_bytes(f"{source}dirty.csv", dirty_csv(classifier))
    task = task_for(classifier, source, out, chunk_rows=7, max_reject_fraction=0.3,
                    output={"keyColumns": ["row_id"]})  # fmt: skip
    finished = run_score(minio, tmp_path, task)
    assert finished.code == 0, finished.log[-3000:]
    assert (finished.result.rows_in, finished.result.rows_out, finished.result.rejects) == (27, 20, 7)
    manifest = shard_manifest(store, finished.result)
    assert sorted(read_parts(store, [manifest]).row_id) == sorted(golden_frame(classifier).row_id)

    (rejects_file,) = manifest.rejects_files
    rejects = pd.read_csv(io.BytesIO(store.get_bytes(rejects_file.uri)), keep_default_na=False)
    assert rejects_file.rows == len(rejects) == 7
    values = [json.loads(v) for v in rejects["values"]]
    by_reason = {reason: value for reason, value in zip(rejects.reason, values, strict=True)}
    for row_id, (line, reason) in BAD_ROWS.items():
        assert reason in by_reason, f"{row_id}: no reject with {reason!r} in {list(by_reason)}"
        assert by_reason[reason]["tenure"] == (line.split(",")[0] or None)  # the value as read
    (malformed,) = [r for r in rejects.reason if r.startswith("malformed CSV row")]
    assert "expected 5 fields, got 6" in malformed and "surplus" in malformed
    assert set(rejects.file) == {f"{source}dirty.csv"}
    assert manifest.reject_reasons["tenure: expected a number"] == 1
    assert sum(manifest.reject_reasons.values()) == 7


def test_more_rejects_than_declared_fail_the_shard_with_the_count_and_the_rejects_kept(
    minio: MinioServer, store: Store, classifier: TrainedModel, tmp_path: Path
) -> None:
    source, out = folder(minio, "in"), folder(minio, "out")
    store.put_bytes(f"{source}dirty.csv", dirty_csv(classifier))
    task = task_for(classifier, source, out, max_reject_fraction=0.1)
    finished = run_score(minio, tmp_path, task, run="strict")
    assert finished.code == EXIT_PERMANENT
    assert (finished.result.outcome, finished.result.reason) == ("Failed", "TooManyRejects")
    assert "rejected 7 of 27 rows (25.93%, allowed 10.00%)" in finished.result.message
    assert store.list(f"{out}strict/rejects/")  # what was rejected stays available to look at
    assert store.exists(f"{out}strict/manifests/shard-00000.json")


def test_a_file_without_a_model_column_is_refused_naming_file_and_column(
    minio: MinioServer, store: Store, classifier: TrainedModel, tmp_path: Path
) -> None:
    source, out = folder(minio, "in"), folder(minio, "out")
    upload_csv(store, f"{source}a.csv", golden_frame(classifier))
    upload_csv(store, f"{source}b.csv", golden_frame(classifier).drop(columns=["contract"]))
    finished = run_score(minio, tmp_path, task_for(classifier, source, out))
    assert finished.code == EXIT_PERMANENT
    assert finished.result.reason == "InputInvalid"
    assert f"{source}b.csv lacks the column(s) contract" in finished.result.message


def test_a_tampered_artifact_is_refused_before_any_row_is_read(
    minio: MinioServer, store: Store, classifier: TrainedModel, tmp_path: Path
) -> None:
    source, out = folder(minio, "in"), folder(minio, "out")
    upload_csv(store, f"{source}a.csv", golden_frame(classifier))
    task = task_for(classifier, source, out)
    task.model.sha256 = "0" * 64
    finished = run_score(minio, tmp_path, task)
    assert (finished.code, finished.result.reason) == (EXIT_PERMANENT, "DigestMismatch")
    assert store.list(out) == []


def test_no_input_files_is_a_clear_permanent_failure(
    minio: MinioServer, classifier: TrainedModel, tmp_path: Path
) -> None:
    source, out = folder(minio, "empty"), folder(minio, "out")
    finished = run_score(minio, tmp_path, task_for(classifier, source, out))
    assert (finished.code, finished.result.reason) == (EXIT_PERMANENT, "InputMissing")
    assert f"no .csv files under {source}" in finished.result.message


def test_an_unreachable_store_is_retried_then_reported_as_transient(
    minio: MinioServer, classifier: TrainedModel, tmp_path: Path
) -> None:
    task = task_for(classifier, folder(minio, "in"), folder(minio, "out"))
    finished = run_score(minio, tmp_path, task, KUBELOOP_S3_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    assert (finished.code, finished.result.reason) == (EXIT_TRANSIENT, "StoreUnavailable")
    assert "did not answer after 5 attempts" in finished.result.message

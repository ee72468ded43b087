"""Request logs land in MinIO with the documented layout and content: after a flush and after SIGTERM."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubeloop.contracts.serving import RequestLogRecord
from kubeloop.store.client import Store
from tests.component.serving.conftest import Server, TrainedModel, read_jsonl_gz, v2_body, v2_output
from tests.infra.minio_server import MinioServer
from tests.infra.processes import wait_until


def log_files(store: Store, minio: MinioServer, server: Server) -> list[str]:
    return store.list(f"s3://{minio.bucket}/logs/test/{server.env['KUBELOOP_DEPLOYMENT']}/")


def records(store: Store, files: list[str]) -> list[RequestLogRecord]:
    return [RequestLogRecord.model_validate(line) for f in files for line in read_jsonl_gz(store, f)]


def same(sent: Any, logged: Any) -> bool:
    if isinstance(sent, float) and isinstance(logged, float):
        return math.isclose(sent, logged, rel_tol=1e-6)
    return bool(sent == logged)


def test_records_are_flushed_after_n_rows_with_layout_and_content(
    serve: Callable[..., Server], classifier: TrainedModel, store: Store, minio: MinioServer
) -> None:
    server = serve(classifier, KUBELOOP_LOG_FLUSH_RECORDS="10", KUBELOOP_LOG_FLUSH_SECONDS="3600")
    rows = classifier.golden_rows
    sent: dict[str, tuple[list[dict[str, Any]], Any]] = {}
    for start in range(0, 12, 3):  # 4 requests of 3 rows: the 4th crosses 10 rows and wakes the writer
        batch = rows[start : start + 3]
        response = server.infer(v2_body(server, batch))
        assert response.status_code == 200
        sent[response.json()["id"]] = (batch, response)
    wait_until(lambda: bool(log_files(store, minio, server)), 20, "a request log file in MinIO")
    files = log_files(store, minio, server)
    deployment, pod = server.env["KUBELOOP_DEPLOYMENT"], server.env["KUBELOOP_POD_NAME"]
    pattern = (
        rf"s3://{minio.bucket}/logs/test/{deployment}/v1/dt=(\d{{4}}-\d\d-\d\d)/hr=(\d\d)/"
        rf"{pod}-\d+-\d{{6}}\.jsonl\.gz"
    )
    logged = records(store, files)
    assert {r.request_id for r in logged} == set(sent)
    for path in files:
        match = re.fullmatch(pattern, path)
        assert match, path
    for record in logged:
        at = datetime.fromisoformat(record.time)
        assert re.fullmatch(pattern, files[0]) is not None
        assert f"dt={at.astimezone(UTC):%Y-%m-%d}/hr={at.astimezone(UTC):%H}/" in " ".join(files)
        batch, response = sent[record.request_id]
        assert (record.model, record.version, record.pod, record.protocol, record.rows) == (
            "churn",
            1,
            pod,
            "v2",
            3,
        )
        assert record.latency_ms > 0
        for name, values in record.inputs.items():
            assert all(same(row[name], value) for row, value in zip(batch, values, strict=True)), name
        assert record.outputs["label"] == v2_output(response, "label")
        flat = [p for row in record.outputs["probabilities"] for p in row]
        assert all(
            math.isclose(a, b, rel_tol=1e-6)
            for a, b in zip(flat, v2_output(response, "probabilities"), strict=True)
        )
    assert server.metric("kubeloop_server_log_records_written_total", stream="requests") == 12


def test_sigterm_flushes_what_is_buffered(
    serve: Callable[..., Server], classifier: TrainedModel, store: Store, minio: MinioServer
) -> None:
    server = serve(classifier, KUBELOOP_LOG_FLUSH_RECORDS="100000", KUBELOOP_LOG_FLUSH_SECONDS="3600")
    ids = []
    for row in classifier.golden_rows[:5]:
        response = server.predict({"instances": [row]})
        assert response.status_code == 200
        ids.append(response.json()["requestId"])
    assert log_files(store, minio, server) == []  # nothing due yet: all of it is in memory
    server.terminate()
    logged = records(store, log_files(store, minio, server))
    assert [r.request_id for r in logged] == ids
    assert {r.protocol for r in logged} == {"v1"} and all(r.rows == 1 for r in logged)
    assert "flushing the logs" in server.process.log.read_text()


def test_sampling_follows_the_rate(
    serve: Callable[..., Server], classifier: TrainedModel, store: Store, minio: MinioServer
) -> None:
    never = serve(classifier, KUBELOOP_LOG_SAMPLE_RATE="0")
    half = serve(classifier, KUBELOOP_LOG_SAMPLE_RATE="0.5", KUBELOOP_LOG_FLUSH_SECONDS="3600")
    row = classifier.golden_rows[:1]
    for _ in range(200):
        assert never.infer(v2_body(never, row)).status_code == 200
        assert half.infer(v2_body(half, row)).status_code == 200
    never.terminate()
    half.terminate()
    assert log_files(store, minio, never) == []
    count = len(records(store, log_files(store, minio, half)))
    assert 60 <= count <= 140, count  # Binomial(200, 0.5): outside is a > 5 sigma event

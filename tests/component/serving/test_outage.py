"""A MinIO outage (a dedicated server, stopped mid-test): no prediction is lost or slowed into failure;
log rows beyond the buffer are dropped and counted, the rest are written once the store is back."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from kubeloop.store.client import RetryPolicy, Store
from tests.component.conftest import settings_for
from tests.component.serving.conftest import Server, TrainedModel, read_jsonl_gz, v2_body, v2_output
from tests.component.serving.test_loading import copy_model
from tests.infra.minio_server import MinioServer
from tests.infra.processes import http_ok, wait_until

BUFFER = 30


@pytest.fixture
def own_minio() -> Iterator[MinioServer]:
    server = MinioServer().start()
    yield server
    server.stop()


def stop(minio: MinioServer) -> None:
    assert minio.process is not None
    minio.process.stop()


def restart(minio: MinioServer) -> None:
    """The same binary, address and data directory: the store comes back with its data."""
    assert minio.process is not None
    minio.process.start()
    wait_until(lambda: http_ok(f"{minio.url}/minio/health/ready", minio.process), 60, "MinIO back")


def test_outage_during_traffic_loses_no_prediction(
    serve: Callable[..., Server], classifier: TrainedModel, store: Store, own_minio: MinioServer
) -> None:
    own = Store(settings_for(own_minio), RetryPolicy(attempts=3, first_delay=0.1))
    folder = copy_model(own, own_minio, classifier, onnx=store.get_bytes(classifier.model_uri))
    server = serve(
        classifier,
        store=own_minio,
        KUBELOOP_MODEL_URI=folder + "model.onnx",
        KUBELOOP_CARD_URI=folder + "model.json",
        KUBELOOP_LOG_FLUSH_RECORDS="5",
        KUBELOOP_LOG_FLUSH_SECONDS="0.3",
        KUBELOOP_LOG_BUFFER_LIMIT=str(BUFFER),
    )
    rows, labels = classifier.golden_rows, classifier.card.golden.labels or []
    written = "kubeloop_server_log_records_written_total"
    dropped = "kubeloop_server_log_records_dropped_total"

    def predict_all(count: int) -> None:
        for index in range(count):
            response = server.infer(v2_body(server, [rows[index % len(rows)]]))
            assert response.status_code == 200, response.text
            assert v2_output(response, "label") == [labels[index % len(rows)]]

    predict_all(10)
    wait_until(lambda: server.metric(written) == 10, 20, "the first 10 log rows written")

    stop(own_minio)
    predict_all(100)  # every prediction answered, and right, while the store is down
    wait_until(lambda: server.metric(dropped) >= 100 - BUFFER, 20, "rows beyond the buffer dropped")
    assert server.metric("kubeloop_server_log_flush_failures_total", stream="requests") >= 1
    assert server.metric("kubeloop_server_log_records_buffered", stream="requests") <= BUFFER
    assert server.metric(written) == 10
    assert server.get("/v2/health/ready").status_code == 200  # the log's store is not the model's health

    restart(own_minio)
    wait_until(lambda: server.metric(written) + server.metric(dropped) == 110, 30, "held rows written")
    assert server.metric(written) > 10  # what the buffer held survived the outage
    files = own.list(f"s3://{own_minio.bucket}/logs/test/{server.env['KUBELOOP_DEPLOYMENT']}/")
    assert sum(len(read_jsonl_gz(own, f)) for f in files) == server.metric(written)


def test_model_load_waits_for_the_store(
    serve: Callable[..., Server], classifier: TrainedModel, store: Store, own_minio: MinioServer
) -> None:
    """Started while the store is down: not ready (StoreUnavailable), then ready once it is back."""
    own = Store(settings_for(own_minio), RetryPolicy(attempts=3, first_delay=0.1))
    folder = copy_model(own, own_minio, classifier, onnx=store.get_bytes(classifier.model_uri))
    stop(own_minio)
    server = serve(
        classifier,
        wait="live",
        store=own_minio,
        KUBELOOP_MODEL_URI=folder + "model.onnx",
        KUBELOOP_CARD_URI=folder + "model.json",
    )
    wait_until(lambda: server.get("/v2/health/ready").json()["reason"] == "StoreUnavailable", 30, "the retry")
    assert server.get("/v2/health/ready").status_code == 503
    restart(own_minio)
    server.wait_ready(60)
    assert server.infer(v2_body(server, rows=classifier.golden_rows[:1])).status_code == 200

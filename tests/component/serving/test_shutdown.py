"""SIGTERM: in-flight requests finish, the pod can turn unready before the listener closes, logs flush."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import requests

from kubeloop.store.client import Store
from tests.component.serving.conftest import Server, TrainedModel, read_jsonl_gz
from tests.infra.minio_server import MinioServer
from tests.infra.processes import wait_until


def test_a_request_in_flight_at_sigterm_is_answered_and_logged(
    serve: Callable[..., Server], classifier: TrainedModel, store: Store, minio: MinioServer
) -> None:
    server = serve(classifier, KUBELOOP_LOG_FLUSH_SECONDS="3600")
    body = json.dumps({"instances": classifier.golden_rows[:2]}).encode()
    started = threading.Event()

    def slow_body() -> Iterator[bytes]:  # the body arrives over ~1 s; SIGTERM lands in the middle
        for index in range(0, len(body), len(body) // 4 + 1):
            yield body[index : index + len(body) // 4 + 1]
            started.set()
            time.sleep(0.25)

    def sigterm_when_started() -> None:
        started.wait(10)
        os.killpg(server.process.pid, signal.SIGTERM)

    threading.Thread(target=sigterm_when_started, daemon=True).start()
    response = requests.post(
        f"{server.url}/v1/models/churn:predict",
        data=slow_body(),
        timeout=30,
        headers={"content-type": "application/json", "x-request-id": "in-flight"},
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 2
    assert server.process.popen is not None and server.process.popen.wait(30) == -signal.SIGTERM
    files = store.list(f"s3://{minio.bucket}/logs/test/{server.env['KUBELOOP_DEPLOYMENT']}/")
    assert [line["requestId"] for f in files for line in read_jsonl_gz(store, f)] == ["in-flight"]


def test_shutdown_delay_turns_unready_but_keeps_serving(
    serve: Callable[..., Server], classifier: TrainedModel
) -> None:
    server = serve(classifier, KUBELOOP_SHUTDOWN_DELAY_SECONDS="3")
    os.killpg(server.process.pid, signal.SIGTERM)
    wait_until(lambda: server.get("/v2/health/ready").status_code == 503, 2, "readiness to drop")
    assert server.get("/v2/health/ready").json()["reason"] == "ShuttingDown"
    assert server.predict({"instances": classifier.golden_rows[:1]}).status_code == 200  # still serving
    assert server.process.alive()
    wait_until(lambda: not server.process.alive(), 20, "the server to exit after the delay")
    assert server.process.popen is not None and server.process.popen.returncode == -signal.SIGTERM

"""The FastAPI routes (which document the inference paths) answer exactly as the raw ASGI front that
serves them in the server process: one scoring function behind both."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi.testclient import TestClient

from kubeloop.contracts.serving import ServingSettings
from kubeloop.serving.app import create_app
from kubeloop.store.client import Store
from tests.component.serving.conftest import Server, TrainedModel, v2_body
from tests.infra.minio_server import MinioServer
from tests.infra.processes import wait_until


def test_fastapi_routes_answer_like_the_fast_path(
    serve: Callable[..., Server], classifier: TrainedModel, store: Store, minio: MinioServer
) -> None:
    server = serve(classifier)
    settings = ServingSettings(
        model_name="churn",
        model_version=1,
        model_uri=classifier.model_uri,
        model_sha256=classifier.sha256,
        card_uri=classifier.card_uri,
        store_root=f"s3://{minio.bucket}/",
        log_sample_rate=0,
    )
    rows = classifier.golden_rows[:4]
    with TestClient(create_app(settings, store)) as client:
        wait_until(lambda: client.get("/v2/health/ready").status_code == 200, 30, "in-process model ready")
        requests = [
            ("/v2/models/churn/infer", v2_body(server, rows)),
            ("/v1/models/churn:predict", {"instances": rows}),
            ("/v1/models/churn:predict", {"instances": [{**rows[0], "tenure": "x"}]}),
            ("/v2/models/churn/versions/7/infer", v2_body(server, rows)),
        ]
        for path, body in requests:
            headers = {"x-request-id": "same", "content-type": "application/json"}
            in_process = client.post(path, content=json.dumps(body), headers=headers)
            over_http = server.post(path, body, headers={"x-request-id": "same"})
            assert in_process.status_code == over_http.status_code, path
            assert in_process.json() == over_http.json(), path
            assert in_process.headers["x-request-id"] == over_http.headers["x-request-id"] == "same"

"""Bad requests over real HTTP: a 4xx naming the field and the problem, never a 500, never a dead worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.component.serving.conftest import Launcher, Server, TrainedModel, v2_body
from tests.infra.minio_server import MinioServer

MAX_BODY, MAX_ROWS = 8192, 40


@pytest.fixture(scope="module")
def churn(launcher: Launcher, classifier: TrainedModel, minio: MinioServer) -> Server:
    return launcher.start(
        classifier, minio, KUBELOOP_MAX_BODY_BYTES=str(MAX_BODY), KUBELOOP_MAX_ROWS=str(MAX_ROWS)
    )


@pytest.fixture(scope="module")
def row(classifier: TrainedModel) -> dict[str, Any]:
    return {**classifier.golden_rows[0], "charges": 12.5}


def records(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"instances": list(rows)}


def v2_with(server: Server, row: dict[str, Any], **data: list[Any]) -> dict[str, Any]:
    body = v2_body(server, [row])
    for tensor in body["inputs"]:
        if tensor["name"] in data:
            tensor["data"] = data[tensor["name"]]
            tensor["shape"] = [len(data[tensor["name"]])]
    return body


RECORD_CASES: list[tuple[str, Any, int, str, str]] = [
    ("missing column", {"drop": "tenure"}, 400, "tenure", "missing column 'tenure'"),
    ("unknown column", {"set": {"colour": "red"}}, 400, "colour", "unknown column 'colour'"),
    ("string for a float", {"set": {"charges": "cheap"}}, 400, "charges", "charges: expected a number"),
    ("fraction for an integer", {"set": {"tenure": 3.5}}, 400, "tenure", "tenure: expected an integer"),
    ("null for an integer", {"set": {"tenure": None}}, 400, "tenure", "null is not allowed"),
    ("too big for float32", {"set": {"charges": 1e300}}, 400, "charges", "out of range for FP32"),
    ("object for a category", {"set": {"contract": {"x": 1}}}, 400, "contract", "expected a string"),
]


@pytest.mark.parametrize("case", RECORD_CASES, ids=[c[0] for c in RECORD_CASES])
def test_bad_records(churn: Server, row: dict[str, Any], case: tuple[str, Any, int, str, str]) -> None:
    _, change, status, field, fragment = case
    bad = {k: v for k, v in row.items() if k != change.get("drop")} | change.get("set", {})
    response = churn.predict(records(row, bad))
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert fragment in response.json()["error"] and "instances[1]" in response.json()["error"]


def test_bad_v2_tensors(churn: Server, row: dict[str, Any]) -> None:
    cases = [
        (v2_with(churn, row, charges=["12"]), "charges", "input 'charges': expected a number, got a string"),
        (v2_with(churn, row, contract=[[1, 2]]), "contract", "shape says 1 values, data has 2"),
        (v2_with(churn, row, tenure=[1.5]), "tenure", "input 'tenure': expected an integer"),
    ]
    body = v2_body(churn, [row])
    body["inputs"][0]["datatype"] = "BYTES"
    cases.append((body, body["inputs"][0]["name"], "does not fit"))
    body = v2_body(churn, [row])
    body["inputs"] = body["inputs"][1:]
    cases.append((body, "tenure", "missing input column(s): tenure"))
    body = v2_body(churn, [row])
    body["outputs"] = [{"name": "explanation"}]
    cases.append((body, "outputs", "unknown output 'explanation'"))
    for payload, field, fragment in cases:
        response = churn.infer(payload)
        assert response.status_code == 400, response.text
        assert response.json()["field"] == field and fragment in response.json()["error"], response.text


def test_json_that_cannot_carry_the_value(churn: Server, row: dict[str, Any]) -> None:
    """NaN is not JSON: Python's json writes it anyway, and the server says the body is malformed."""
    text = json.dumps(records({**row, "charges": float("nan")}))
    response = churn.predict(text)
    assert response.status_code == 400 and "malformed JSON" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"instances": [', "malformed JSON"),
        (b"", "body is empty"),
        (b"[1, 2, 3]", '{"instances"'),
        (b'{"instances": {"tenure": 1}}', '{"instances"'),
        (b'{"instances": []}', "empty batch"),
    ],
)
def test_malformed_and_empty_bodies(churn: Server, body: bytes, fragment: str) -> None:
    response = churn.predict(body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_empty_v2_batch(churn: Server, row: dict[str, Any]) -> None:
    body = v2_body(churn, [row])
    for tensor in body["inputs"]:
        tensor["shape"], tensor["data"] = [0], []
    response = churn.infer(body)
    assert response.status_code == 400 and "empty batch" in response.json()["error"]


def test_too_many_rows(churn: Server, row: dict[str, Any]) -> None:
    response = churn.predict(records(*[row] * (MAX_ROWS + 1)))
    assert response.status_code == 413
    assert f"{MAX_ROWS + 1} rows is over the limit of {MAX_ROWS}" in response.json()["error"]
    assert churn.predict(records(*[row] * MAX_ROWS)).status_code == 200  # the limit itself is fine


def test_bodies_over_the_size_limit(churn: Server, row: dict[str, Any]) -> None:
    padded = records(row) | {"padding": "x" * MAX_BODY}
    response = churn.predict(padded)
    assert response.status_code == 413 and f"limit of {MAX_BODY} bytes" in response.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading the stream
        for _ in range(MAX_BODY // 1000 + 2):
            yield b" " * 1000

    chunked = requests.post(
        f"{churn.url}/v1/models/churn:predict",
        data=chunks(),
        timeout=10,
        headers={"content-type": "application/json"},
    )
    assert chunked.status_code == 413


def test_unknown_model_and_wrong_method(churn: Server, row: dict[str, Any]) -> None:
    response = churn.post("/v1/models/other:predict", records(row))
    assert response.status_code == 404 and response.json()["field"] == "name"
    assert churn.get("/v2/models/churn/infer").status_code == 405


def test_the_worker_survives_and_counts_every_error(churn: Server, row: dict[str, Any]) -> None:
    before = churn.metric("kubeloop_server_errors_total", code="400")
    for _ in range(5):
        assert churn.predict(b"{").status_code == 400
    assert churn.metric("kubeloop_server_errors_total", code="400") == before + 5
    assert churn.metric("kubeloop_server_requests_total", code="500") == 0
    assert churn.get("/v2/health/live").status_code == 200
    assert churn.predict(records(row)).status_code == 200
    churn.process.check_alive()

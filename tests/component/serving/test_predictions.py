"""Predictions over real HTTP equal what the trainer recorded (golden rows), in both request forms."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from kubeloop.store.client import Store
from tests.component.serving.conftest import Launcher, Server, TrainedModel, v2_body, v2_output
from tests.infra.minio_server import MinioServer


@pytest.fixture(scope="module")
def churn(launcher: Launcher, classifier: TrainedModel, minio: MinioServer) -> Server:
    return launcher.start(classifier, minio)


@pytest.fixture(scope="module")
def price(launcher: Launcher, regressor: TrainedModel, minio: MinioServer) -> Server:
    return launcher.start(regressor, minio)


def close(got: list[float], want: list[float], tolerance: float) -> bool:
    return bool(np.allclose(np.asarray(got), np.asarray(want), atol=tolerance, rtol=tolerance))


def test_v2_columnar_answers_the_golden_outputs(churn: Server, classifier: TrainedModel) -> None:
    golden = classifier.card.golden
    assert golden.labels and golden.probabilities and len(golden.labels) >= 10
    response = churn.infer(v2_body(churn, classifier.golden_rows))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "churn" and body["model_version"] == "1"
    assert body["id"] == response.headers["x-request-id"] and len(body["id"]) >= 16
    assert v2_output(response, "label") == golden.labels
    probabilities = v2_output(response, "probabilities")
    classes = classifier.card.signature.classes
    assert classes is not None
    shape = next(o["shape"] for o in body["outputs"] if o["name"] == "probabilities")
    assert shape == [len(golden.labels), len(classes)]
    assert close(probabilities, [p for row in golden.probabilities for p in row], golden.tolerance)


def test_v1_records_answer_the_golden_outputs(churn: Server, classifier: TrainedModel) -> None:
    golden = classifier.card.golden
    assert golden.labels and golden.probabilities
    classes = classifier.card.signature.classes or []
    response = churn.predict({"instances": classifier.golden_rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["modelName"] == "churn" and body["modelVersion"] == "1"
    assert body["requestId"] == response.headers["x-request-id"]
    predictions = body["predictions"]
    assert [p["label"] for p in predictions] == golden.labels
    for prediction, expected in zip(predictions, golden.probabilities, strict=True):
        assert list(prediction["probabilities"]) == classes
        assert close(list(prediction["probabilities"].values()), expected, golden.tolerance)
        assert "review" not in prediction  # no reviewThreshold on this deployment


@pytest.mark.parametrize("form", ["v2", "v1"])
def test_regressor_answers_the_golden_values(price: Server, regressor: TrainedModel, form: str) -> None:
    golden = regressor.card.golden
    assert golden.values and regressor.card.signature.task == "regression"
    if form == "v2":
        response = price.infer(v2_body(price, regressor.golden_rows))
        assert response.status_code == 200, response.text
        values = v2_output(response, "value")
        assert [o["name"] for o in response.json()["outputs"]] == ["value"]
    else:
        response = price.predict({"instances": regressor.golden_rows})
        assert response.status_code == 200, response.text
        values = [p["value"] for p in response.json()["predictions"]]
    assert close(values, golden.values, golden.tolerance)  # relative for large values


def test_single_rows_match_the_batch(churn: Server, classifier: TrainedModel) -> None:
    """Row by row (the common online case, run on the event loop) equals the batch (run in a thread)."""
    golden = classifier.card.golden
    assert golden.probabilities is not None
    for row, expected in list(zip(classifier.golden_rows, golden.probabilities, strict=True))[:5]:
        response = churn.infer(v2_body(churn, [row]))
        assert response.status_code == 200, response.text
        assert close(v2_output(response, "probabilities"), expected, golden.tolerance)


def test_concurrent_requests_scored_on_inference_threads_answer_the_golden_outputs(
    launcher: Launcher, classifier: TrainedModel, minio: MinioServer
) -> None:
    # No inline budget: every run that overlaps another request goes to an inference thread.
    server = launcher.start(classifier, minio, KUBELOOP_INLINE_BUDGET_MS="0")
    golden = classifier.card.golden
    body = v2_body(server, classifier.golden_rows)
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: server.infer(body), range(64)))
    assert [r.status_code for r in responses] == [200] * 64, responses[0].text
    assert all(v2_output(r, "label") == golden.labels for r in responses)
    assert server.metric("kubeloop_server_rows_total") == 64 * len(golden.labels)


def test_request_ids_come_from_the_client_when_given(churn: Server, classifier: TrainedModel) -> None:
    rows = classifier.golden_rows[:1]
    by_header = churn.infer(v2_body(churn, rows), headers={"x-request-id": "client-42"})
    assert by_header.headers["x-request-id"] == "client-42" and by_header.json()["id"] == "client-42"
    by_body = churn.infer({**v2_body(churn, rows), "id": "body-7"})
    assert by_body.json()["id"] == "body-7" and by_body.headers["x-request-id"] == "body-7"
    v1 = churn.predict({"instances": rows}, headers={"x-request-id": "human-1"})
    assert v1.json()["requestId"] == "human-1"


def test_requested_outputs_only(churn: Server, classifier: TrainedModel) -> None:
    body = {**v2_body(churn, classifier.golden_rows[:2]), "outputs": [{"name": "probabilities"}]}
    response = churn.infer(body)
    assert [o["name"] for o in response.json()["outputs"]] == ["probabilities"]


def test_unseen_categories_are_scored_as_the_pipeline_was_trained(
    churn: Server, classifier: TrainedModel, store: Store
) -> None:
    """A category never seen in training is passed to the graph unchanged (one-hot: all zeros)."""
    row = {**classifier.golden_rows[0], "contract": "lifetime-deal"}
    response = churn.predict({"instances": [row]})
    assert response.status_code == 200, response.text
    session = ort.InferenceSession(store.get_bytes(classifier.model_uri), providers=["CPUExecutionProvider"])
    feeds: dict[str, Any] = {
        "tenure": np.array([[row["tenure"]]], dtype=np.int64),
        "charges": np.array([[np.nan if row["charges"] is None else row["charges"]]], dtype=np.float32),
        "contract": np.array([["lifetime-deal"]], dtype=object),
        "senior": np.array([[row["senior"]]], dtype=object),
    }
    label, probabilities = session.run(["label", "probabilities"], feeds)
    prediction = response.json()["predictions"][0]
    assert prediction["label"] == label[0]
    assert close(list(prediction["probabilities"].values()), probabilities[0].tolist(), 1e-6)


def test_health_and_metadata(churn: Server, classifier: TrainedModel) -> None:
    assert churn.get("/v2/health/live").json() == {"live": True}
    assert churn.get("/v2/health/ready").json()["ready"] is True
    assert churn.get("/v2").json()["name"] == "kubeloop"
    for path in ("/v2/models/churn/ready", "/v2/models/churn/versions/1/ready"):
        assert churn.get(path).status_code == 200
    metadata = churn.get("/v2/models/churn/versions/1").json()
    assert metadata == churn.get("/v2/models/churn").json()
    kinds = {c.name: c for c in classifier.card.signature.inputs}
    assert [i["name"] for i in metadata["inputs"]] == list(kinds)
    expected = {"integer": "INT64", "float": "FP32", "string": "BYTES", "boolean": "BYTES"}
    assert {i["name"]: i["datatype"] for i in metadata["inputs"]} == {
        n: expected[c.type] for n, c in kinds.items()
    }
    assert [o["name"] for o in metadata["outputs"]] == ["label", "probabilities"]
    assert metadata["parameters"]["classes"] == classifier.card.signature.classes
    for path in ("/v2/models/other", "/v2/models/other/ready", "/v2/models/churn/versions/2"):
        response = churn.get(path)
        assert response.status_code == 404 and "not served here" in response.json()["error"]
    versioned = churn.post("/v2/models/churn/versions/1/infer", v2_body(churn, classifier.golden_rows[:1]))
    assert versioned.status_code == 200
    assert churn.post("/v2/models/churn/versions/9/infer", {}).status_code == 404


def test_metrics_count_requests_rows_and_classes(
    launcher: Launcher, classifier: TrainedModel, minio: MinioServer, serve: Callable[..., Server]
) -> None:
    server = serve(classifier)
    rows = classifier.golden_rows
    for _ in range(3):
        assert server.infer(v2_body(server, rows)).status_code == 200
    assert server.predict({"instances": rows[:2]}).status_code == 200
    assert server.predict({"instances": []}).status_code == 400
    labels = {"model": "churn", "version": "1"}
    assert server.metric("kubeloop_server_requests_total", endpoint="v2-infer", code="200", **labels) == 3
    assert server.metric("kubeloop_server_errors_total", endpoint="v1-infer", code="400", **labels) == 1
    assert server.metric("kubeloop_server_rows_total", endpoint="v2-infer", **labels) == 3 * len(rows)
    assert server.metric("kubeloop_server_predictions_total", **labels) == 3 * len(rows) + 2
    golden_yes = (classifier.card.golden.labels or []).count("yes")
    assert server.metric("kubeloop_server_predictions_total", **{"class": "yes"}) == 3 * golden_yes + sum(
        1 for row in (classifier.card.golden.labels or [])[:2] if row == "yes"
    )
    assert server.metric("kubeloop_server_request_duration_seconds_count", endpoint="v2-infer") == 3
    assert server.metric("kubeloop_server_model_info", sha256=classifier.sha256, **labels) == 1
    assert server.metric("process_resident_memory_bytes") > 10e6


def test_regressor_metrics_histogram_the_values(price: Server, regressor: TrainedModel) -> None:
    values = regressor.card.golden.values or []
    # The +Inf bucket is the count (prometheus-client leaves out _count and _sum when a bucket
    # bound is negative, as a regressor's can be).
    name, labels = "kubeloop_server_prediction_value_bucket", {"model": "price", "version": "1", "le": "+Inf"}
    before = price.metric(name, **labels)
    assert price.predict({"instances": regressor.golden_rows}).status_code == 200
    assert price.metric(name, **labels) == before + len(values)
    # Buckets at the deciles of the training-time values: each decile bucket got about a tenth.
    text = price.get("/metrics").text
    bounds = sorted(float(b) for b in re.findall(r'prediction_value_bucket\{le="([^"+]+)"', text))
    assert len(bounds) >= 5 and bounds[0] == min(values) and bounds[-1] == max(values)
    median = price.metric(name, model="price", version="1", le=repr(float(np.median(values))))
    total = before + len(values)  # every request to this server sent the golden rows
    assert abs(median - total / 2) <= total / 20, (median, total)
    assert price.metric("kubeloop_server_predictions_total") == 0  # class counts are for classifiers

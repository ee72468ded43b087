"""Loading fails closed: an artifact that is not the registered one never becomes ready."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from kubeloop.contracts.model import ModelCard
from kubeloop.store.client import Store
from kubeloop.store.digest import sha256_bytes
from tests.component.serving.conftest import Server, TrainedModel, v2_body
from tests.infra.minio_server import MinioServer
from tests.infra.processes import wait_until


def copy_model(
    store: Store,
    minio: MinioServer,
    model: TrainedModel,
    onnx: bytes | None = None,
    card: ModelCard | None = None,
) -> str:
    """A new run folder holding model.onnx and model.json, altered as asked."""
    folder = f"s3://{minio.bucket}/runs/test/altered/{uuid.uuid4().hex[:8]}/"
    store.put_bytes(folder + "model.onnx", onnx if onnx is not None else store.get_bytes(model.model_uri))
    store.put_bytes(folder + "model.json", (card or model.card).to_json().encode())
    return folder


def tampered(store: Store, model: TrainedModel) -> bytes:
    """The same model with a byte of the graph's documentation changed: loads fine, digest differs."""
    data = bytearray(store.get_bytes(model.model_uri))
    at = bytes(data).index(b"kubeloop model")
    data[at] = ord("K")
    return bytes(data)


def never_ready(server: Server, reason: str, fragment: str) -> None:
    wait_until(lambda: server.get("/v2/health/ready").json()["phase"] == "Failed", 30, "the load to fail")
    for _ in range(10):
        ready = server.get("/v2/health/ready")
        assert ready.status_code == 503, ready.text
        assert ready.json()["reason"] == reason and fragment in ready.json()["message"]
    assert server.get("/v2/health/live").status_code == 200  # alive: restarting would not help
    assert server.get(f"/v2/models/{server.name}/ready").status_code == 503
    metadata = server.get(f"/v2/models/{server.name}")
    assert metadata.status_code == 503 and reason in metadata.json()["error"]


def test_a_tampered_artifact_never_becomes_ready(
    serve: Callable[..., Server], classifier: TrainedModel, store: Store, minio: MinioServer
) -> None:
    folder = copy_model(store, minio, classifier, onnx=tampered(store, classifier))
    server = serve(
        classifier,
        wait="live",
        KUBELOOP_MODEL_URI=folder + "model.onnx",
        KUBELOOP_CARD_URI=folder + "model.json",
    )
    never_ready(server, "DigestMismatch", f"expected {classifier.sha256}; refusing to use it")
    response = server.infer(v2_body_from_card(classifier))
    assert response.status_code == 503 and "DigestMismatch" in response.json()["error"]
    assert "DigestMismatch" in server.process.log.read_text()  # and the reason is in the log


def v2_body_from_card(model: TrainedModel) -> dict[str, object]:
    types = {"integer": "INT64", "float": "FP32", "string": "BYTES", "boolean": "BYTES"}
    rows = model.golden_rows[:1]
    return {
        "inputs": [
            {"name": c.name, "shape": [1], "datatype": types[c.type], "data": [rows[0][c.name]]}
            for c in model.card.signature.inputs
        ]
    }


def test_a_card_describing_another_graph_is_refused(
    serve: Callable[..., Server], classifier: TrainedModel, store: Store, minio: MinioServer
) -> None:
    """Registered digest and bytes agree, but model.json was written for the original graph."""
    other = tampered(store, classifier)
    folder = copy_model(store, minio, classifier, onnx=other)
    server = serve(
        classifier,
        wait="live",
        KUBELOOP_MODEL_URI=folder + "model.onnx",
        KUBELOOP_CARD_URI=folder + "model.json",
        KUBELOOP_MODEL_SHA256=sha256_bytes(other),
    )
    never_ready(server, "DigestMismatch", "model.json describes a model.onnx with sha256")


def test_missing_artifact_and_altered_golden_rows(
    serve: Callable[..., Server], classifier: TrainedModel, store: Store, minio: MinioServer
) -> None:
    missing = serve(
        classifier,
        wait="live",
        KUBELOOP_MODEL_URI=f"s3://{minio.bucket}/runs/none/model.onnx",
        KUBELOOP_CARD_URI=f"s3://{minio.bucket}/runs/none/model.json",
    )
    never_ready(missing, "ArtifactMissing", "does not exist")

    golden = classifier.card.golden
    assert golden.labels is not None
    flipped = ["yes" if label == "no" else "no" for label in golden.labels]
    card = classifier.card.model_copy(update={"golden": golden.model_copy(update={"labels": flipped})})
    folder = copy_model(store, minio, classifier, card=card)
    altered = serve(
        classifier,
        wait="live",
        KUBELOOP_MODEL_URI=folder + "model.onnx",
        KUBELOOP_CARD_URI=folder + "model.json",
    )
    never_ready(altered, "GoldenMismatch", "labels differ")


def test_ready_only_after_the_warm_up(serve: Callable[..., Server], classifier: TrainedModel) -> None:
    server = serve(classifier)
    ready = server.get("/v2/health/ready").json()
    assert ready == {"ready": True, "phase": "Ready", "reason": "Ready", "message": "serving churn v1"}
    assert server.metric("kubeloop_server_ready") == 1
    log = server.process.log.read_text()
    assert '"message":"model ready"' in log  # one JSON object per line
    response = server.infer(v2_body(server, classifier.golden_rows[:3]))
    assert response.status_code == 200

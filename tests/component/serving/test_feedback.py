"""Feedback lands in the store; low-confidence predictions are flagged for review, and a reviewer's
label sent back through /v1/feedback closes the loop."""

from __future__ import annotations

import re
from collections.abc import Callable

from kubeloop.contracts.serving import FeedbackRecord, ReviewRecord
from kubeloop.store.client import Store
from tests.component.serving.conftest import Server, TrainedModel, read_jsonl_gz, v2_body, v2_output
from tests.infra.minio_server import MinioServer


def test_feedback_lands_in_the_store(
    serve: Callable[..., Server], classifier: TrainedModel, store: Store, minio: MinioServer
) -> None:
    server = serve(classifier)
    request_id = server.predict({"instances": classifier.golden_rows[:3]}).json()["requestId"]
    one = server.post("/v1/feedback", {"requestId": request_id, "actual": "yes"})
    assert one.status_code == 200, one.text
    many = server.post(
        "/v1/feedback", [{"requestId": request_id, "actual": "no", "row": row} for row in (1, 2)]
    )
    assert many.json()["stored"] == 2
    deployment, pod = server.env["KUBELOOP_DEPLOYMENT"], server.env["KUBELOOP_POD_NAME"]
    pattern = rf"s3://{minio.bucket}/feedback/test/{deployment}/dt=\d{{4}}-\d\d-\d\d/hr=\d\d/{pod}-\d+-\d{{6}}\.jsonl\.gz"
    assert re.fullmatch(pattern, one.json()["location"]) and re.fullmatch(pattern, many.json()["location"])
    lines = read_jsonl_gz(store, one.json()["location"]) + read_jsonl_gz(store, many.json()["location"])
    records = [FeedbackRecord.model_validate(line) for line in lines]
    assert [(r.request_id, r.row, r.actual, r.source) for r in records] == [
        (request_id, 0, "yes", "user"),
        (request_id, 1, "no", "user"),
        (request_id, 2, "no", "user"),
    ]
    assert {(r.model, r.version) for r in records} == {("churn", 1)}
    assert store.list(f"s3://{minio.bucket}/feedback/test/{deployment}/") == sorted(
        [one.json()["location"], many.json()["location"]]
    )
    assert server.metric("kubeloop_server_feedback_items_total", source="user") == 3


def test_bad_feedback_is_refused_with_the_field(
    serve: Callable[..., Server], classifier: TrainedModel, regressor: TrainedModel
) -> None:
    churn = serve(classifier)
    cases = [
        ({"actual": "yes"}, "requestId", "requestId: Field required"),
        ({"requestId": "r", "actual": "maybe"}, "actual", "'maybe' is not one of the classes"),
        (
            {"requestId": "r", "actual": "yes", "row": -1},
            "row",
            "row: Input should be greater than or equal to 0",
        ),
        ({"requestId": "r", "actual": "yes", "source": "bot"}, "source", "source"),
        ([], "items", "between 1 and 1000"),
        ([{"requestId": "r", "actual": "yes"}, {"requestId": "s"}], "actual", "[1].actual: Field required"),
    ]
    for body, field, fragment in cases:
        response = churn.post("/v1/feedback", body)
        assert response.status_code == 400, response.text
        assert response.json()["field"] == field and fragment in response.json()["error"], response.text
    assert churn.post("/v1/feedback", b"{nope").status_code == 400

    price = serve(regressor)
    assert price.post("/v1/feedback", {"requestId": "r", "actual": "high"}).status_code == 400
    assert price.post("/v1/feedback", {"requestId": "r", "actual": 251000.5}).status_code == 200

    closed = serve(classifier, KUBELOOP_FEEDBACK="false")
    assert closed.post("/v1/feedback", {"requestId": "r", "actual": "yes"}).status_code == 403


def test_review_flag_follows_the_threshold_and_the_reviewer_closes_the_loop(
    serve: Callable[..., Server], classifier: TrainedModel, store: Store, minio: MinioServer
) -> None:
    golden = classifier.card.golden
    assert golden.probabilities is not None
    confidence = sorted({max(row) for row in golden.probabilities})
    assert len(confidence) >= 4, "the golden rows need varied confidence for this test"
    threshold = (confidence[len(confidence) // 2 - 1] + confidence[len(confidence) // 2]) / 2
    expected = [max(row) < threshold for row in golden.probabilities]
    assert any(expected) and not all(expected)

    server = serve(classifier, KUBELOOP_REVIEW_THRESHOLD=str(threshold), KUBELOOP_LOG_FLUSH_SECONDS="3600")
    columnar = server.infer(v2_body(server, classifier.golden_rows))
    assert v2_output(columnar, "review") == expected
    records = server.predict({"instances": classifier.golden_rows})
    assert [p["review"] for p in records.json()["predictions"]] == expected
    assert server.metric("kubeloop_server_review_rows_total") == 2 * sum(expected)
    outputs = server.get("/v2/models/churn").json()["outputs"]
    assert {"name": "review", "datatype": "BOOL", "shape": [-1]} in outputs

    server.terminate()  # flushes the review stream
    deployment = server.env["KUBELOOP_DEPLOYMENT"]
    files = store.list(f"s3://{minio.bucket}/review/test/{deployment}/v1/")
    assert files and all(f"/{server.env['KUBELOOP_POD_NAME']}-" in f for f in files)
    flagged = [ReviewRecord.model_validate(line) for f in files for line in read_jsonl_gz(store, f)]
    want = {(columnar.json()["id"], row) for row, flag in enumerate(expected) if flag}
    want |= {(records.json()["requestId"], row) for row, flag in enumerate(expected) if flag}
    assert {(r.request_id, r.row) for r in flagged} == want
    for record in flagged:
        assert record.confidence < threshold == record.threshold
        assert record.inputs == {k: v for k, v in classifier.golden_rows[record.row].items()}
        assert list(record.probabilities) == classifier.card.signature.classes

    # A reviewer labels one flagged row; the label goes where all feedback goes, marked as a review.
    reviewer = serve(classifier)
    first = flagged[0]
    answer = reviewer.post(
        "/v1/feedback", {"requestId": first.request_id, "row": first.row, "actual": "yes", "source": "review"}
    )
    assert answer.status_code == 200
    stored = FeedbackRecord.model_validate(read_jsonl_gz(store, answer.json()["location"])[0])
    assert (stored.request_id, stored.row, stored.actual, stored.source) == (
        first.request_id,
        first.row,
        "yes",
        "review",
    )

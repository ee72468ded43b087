"""The router in front of real model servers: answers pass through unchanged, a dead pod is ejected,
no backend is a 503 with a reason, a bad routing file stops the start, a new epoch restarts the stats."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kubeloop.contracts.routing import RouterStats
from tests.component.router.conftest import (
    CANDIDATE,
    STABLE,
    FakeBackend,
    Router,
    address,
    router_env,
    table,
)
from tests.component.serving.conftest import Server, TrainedModel, v2_body
from tests.infra.processes import free_port, wait_until

V1_PATH = "/v1/models/churn:predict"


def test_predictions_through_the_router_are_the_servers_own_bytes(
    serve: Callable[..., Server], classifier: TrainedModel, start_router: Callable[..., Router]
) -> None:
    server = serve(classifier)
    router = start_router(table(candidate=False), {STABLE: [address(server)]})
    wait_until(lambda: router.get("/router/ready").status_code == 200, 10, "router ready")
    rows = classifier.golden_rows
    for path, body in (
        (f"/v2/models/{server.name}/infer", v2_body(server, rows)),
        (V1_PATH, {"instances": rows}),
    ):
        headers = {"x-request-id": "test-request-0001"}
        direct = server.post(path, body, headers=headers)
        routed = router.post(path, body, headers=headers)
        assert routed.status_code == direct.status_code == 200, routed.text
        assert routed.content == direct.content  # passed through byte for byte
        assert routed.headers["x-request-id"] == "test-request-0001"
        assert routed.headers["x-kubeloop-version"] == "1"
    # Without an id the router makes one, sends it to the server and returns it.
    routed = router.infer(v2_body(server, rows[:1]))
    request_id = routed.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id) and routed.json()["id"] == request_id
    # Everything that is not a prediction goes to stable as it is.
    for path in ("/v2/health/ready", f"/v2/models/{server.name}", "/v2/health/live"):
        assert router.get(path).json() == server.get(path).json(), path
    bad = router.infer({"inputs": [{"name": "nope", "shape": [1], "datatype": "FP32", "data": [1]}]})
    assert (
        bad.status_code == 400
        and bad.json()
        == server.infer({"inputs": [{"name": "nope", "shape": [1], "datatype": "FP32", "data": [1]}]}).json()
    )
    stats = router.stats()
    assert stats.stable.requests == 4 and stats.stable.errors == 0  # predictions only; a 400 is no error
    assert stats.candidate.requests == 0


def test_a_killed_stable_pod_is_ejected_and_requests_keep_succeeding(
    serve: Callable[..., Server], classifier: TrainedModel, start_router: Callable[..., Router]
) -> None:
    first, second = serve(classifier), serve(classifier)
    router = start_router(table(candidate=False), {STABLE: [address(first), address(second)]})
    body = v2_body(first, classifier.golden_rows[:2])
    for _ in range(10):  # both pods get requests and keep-alive connections
        assert router.infer(body).status_code == 200
    assert first.process.popen is not None
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.popen.wait(10)
    answers = [router.infer(body) for _ in range(30)]
    assert [a.status_code for a in answers] == [200] * 30, answers[-1].text
    view = router.get("/router/config").json()
    assert view["backends"][STABLE]["ejected"] == [address(first)]
    assert router.stats().stable.errors == 0


def test_no_backend_is_a_503_with_the_reason(start_router: Callable[..., Router]) -> None:
    router = start_router(table(mode="Shadow", shadowPercent=100), {STABLE: [], CANDIDATE: []})
    ready = router.get("/router/ready")
    assert ready.status_code == 503 and ready.json() == {"ready": False, "reason": "NoStableAddress"}
    answer = router.infer({"inputs": []})
    assert answer.status_code == 503
    assert answer.json()["reason"] == "NoReadyBackend" and STABLE in answer.json()["error"]
    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])
    assert router.get("/v2/health/ready").status_code == 503
    assert router.stats().stable.errors == 1


def test_a_refused_connection_is_a_502_with_the_reason(start_router: Callable[..., Router]) -> None:
    router = start_router(table(candidate=False), {STABLE: [address(free_port())]})
    answer = router.infer({"inputs": []})
    assert answer.status_code == 502 and answer.json()["reason"] == "UpstreamConnectFailed"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"table": {"deployment": "churn"', "Invalid JSON"),
        (json.dumps({"table": table(mode="Canary", weight=150)}), "table.weight"),
        (json.dumps({"table": table(), "endpoints": {"churn-v9": []}}), "churn-v9"),
    ],
)
def test_a_bad_routing_file_stops_the_start_with_the_reason(
    tmp_path: Path, content: str, message: str
) -> None:
    file = tmp_path / "routing.json"
    file.write_text(content)
    env = router_env(free_port(), file)
    done = subprocess.run([sys.executable, "-m", "kubeloop.router"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 78, done.stderr
    assert "routing file" in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_new_epoch_restarts_the_statistics_and_a_bad_rewrite_keeps_the_table(
    serve: Callable[..., Server], classifier: TrainedModel, start_router: Callable[..., Router]
) -> None:
    server = serve(classifier)
    endpoints = {STABLE: [address(server)]}
    router = start_router(table(candidate=False, epoch="step-1"), endpoints)
    body = v2_body(server, classifier.golden_rows[:1])
    for _ in range(5):
        assert router.infer(body).status_code == 200
    assert router.stats().stable.requests == 5
    router.route(table(candidate=False, epoch="step-2"), endpoints)
    router.wait_epoch("step-2")
    assert router.stats() == RouterStats(epoch="step-2")
    assert router.infer(body).status_code == 200
    assert router.stats().stable.requests == 1
    router.file.write_text('{"table": {}}')
    wait_until(lambda: router.get("/router/config").json()["problem"], 10, "the bad rewrite reported")
    assert "table.deployment" in router.get("/router/config").json()["problem"]
    assert router.infer(body).status_code == 200 and router.stats().stable.requests == 2


def test_a_stable_answer_slower_than_the_upstream_timeout_is_a_504(
    start_router: Callable[..., Router], fake_backend: Callable[[str], FakeBackend]
) -> None:
    slow = fake_backend("slow:3")
    router = start_router(
        table(candidate=False), {STABLE: [address(slow)]}, KUBELOOP_UPSTREAM_TIMEOUT_SECONDS="0.5"
    )
    answer = router.infer({"inputs": []})
    assert answer.status_code == 504 and answer.json()["reason"] == "UpstreamTimeout"
    stats = router.stats()
    assert stats.stable.requests == stats.stable.errors == 1
    assert router.get("/router/config").json()["backends"][STABLE]["ejected"] == []  # slow is not dead


def test_sigterm_turns_unready_keeps_serving_for_the_delay_then_exits(
    serve: Callable[..., Server], classifier: TrainedModel, start_router: Callable[..., Router]
) -> None:
    server = serve(classifier)
    router = start_router(
        table(candidate=False), {STABLE: [address(server)]}, KUBELOOP_SHUTDOWN_DELAY_SECONDS="3"
    )
    body = v2_body(server, classifier.golden_rows[:1])
    assert router.infer(body).status_code == 200
    assert router.process.popen is not None
    os.killpg(router.process.pid, signal.SIGTERM)
    wait_until(lambda: router.get("/router/ready").status_code == 503, 5, "unready after SIGTERM")
    assert router.get("/router/ready").json()["reason"] == "Draining"
    assert router.infer(body).status_code == 200  # endpoints move away while it still answers
    assert router.process.popen.wait(30) == 0

"""The router's own HTTP/1.1 handling over a raw socket: pipelining, chunked bodies, 100-continue,
HTTP/1.0, and refusals (malformed, too large) with a reason."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import pytest

from tests.component.router.conftest import STABLE, Router, address, table
from tests.component.serving.conftest import Server, TrainedModel, v2_body


def exchange(router: Router, raw: bytes, answers: int = 1) -> list[tuple[int, dict[str, str], bytes]]:
    """Send `raw` as it is and read `answers` responses (content-length framed, as the router writes)."""
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(raw)
        buffer, parsed = b"", []
        while len(parsed) < answers:
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                assert chunk, f"connection closed after {len(parsed)} answers"
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
            length = int(headers["content-length"])
            while len(buffer) < length:
                chunk = sock.recv(65536)
                assert chunk, "connection closed mid-body"
                buffer += chunk
            parsed.append((int(status_line.split()[1]), headers, buffer[:length]))
            buffer = buffer[length:]
        return parsed


@pytest.fixture
def routed(
    serve: Callable[..., Server], classifier: TrainedModel, start_router: Callable[..., Router]
) -> tuple[Router, Server, bytes]:
    server = serve(classifier)
    router = start_router(
        table(candidate=False), {STABLE: [address(server)]}, KUBELOOP_MAX_BODY_BYTES="65536"
    )
    body = json.dumps(v2_body(server, classifier.golden_rows[:2])).encode()
    return router, server, body


def post(body: bytes, request_id: str, extra: str = "") -> bytes:
    return (
        f"POST /v2/models/churn/infer HTTP/1.1\r\nhost: r\r\ncontent-type: application/json\r\n"
        f"x-request-id: {request_id}\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def test_pipelined_requests_are_answered_in_order(routed: tuple[Router, Server, bytes]) -> None:
    router, server, body = routed
    raw = post(body, "first") + b"GET /v2/health/live HTTP/1.1\r\nhost: r\r\n\r\n" + post(body, "third")
    answers = exchange(router, raw, 3)
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert [h["x-request-id"] for _, h, _ in answers][0::2] == ["first", "third"]
    assert json.loads(answers[1][2]) == server.get("/v2/health/live").json()
    direct = server.post("/v2/models/churn/infer", body, headers={"x-request-id": "first"})
    assert answers[0][2] == direct.content


def test_a_chunked_body_after_100_continue_is_forwarded_whole(routed: tuple[Router, Server, bytes]) -> None:
    router, server, body = routed
    head = (
        b"POST /v2/models/churn/infer HTTP/1.1\r\nhost: r\r\nx-request-id: chunked\r\n"
        b"expect: 100-continue\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:])) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(head)  # a client waits for the interim answer before it sends the body
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(chunks)
        received = b""
        while not received.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 200 OK"
    direct = server.post("/v2/models/churn/infer", body, headers={"x-request-id": "chunked"})
    assert rest.partition(b"\r\n\r\n")[2] == direct.content


def test_http_1_0_gets_its_answer_and_the_connection_closes(routed: tuple[Router, Server, bytes]) -> None:
    router, _, _ = routed
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(b"GET /router/live HTTP/1.0\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):  # ends when the router closes
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in received


@pytest.mark.parametrize(
    ("raw", "status", "reason"),
    [
        (b"GARBAGE / HTTP/1.1\r\n\r\n", 400, "BadRequest"),
        (b"POST /v2/models/churn/infer HTTP/1.1\r\ncontent-length: 999999\r\n\r\n", 413, "BodyTooLarge"),
        (b"POST /v2/models/churn/infer HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n20000\r\n"
         + b"x" * 70000, 413, "BodyTooLarge"),
        (b"POST /stats HTTP/1.1\r\ncontent-length: 0\r\n\r\n", 405, "MethodNotAllowed"),
    ],
)  # fmt: skip
def test_refusals_say_why(routed: tuple[Router, Server, bytes], raw: bytes, status: int, reason: str) -> None:
    router, _, _ = routed
    ((got, headers, body),) = exchange(router, raw)
    assert got == status and json.loads(body)["reason"] == reason
    assert headers["content-type"] == "application/json"
    assert router.get("/router/live").status_code == 200  # the router itself is unharmed

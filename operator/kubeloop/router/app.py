"""The router itself: each request to the side the table says, copies to the other, its own endpoints.

Bodies go through unchanged in both directions; the router only adds `X-Request-Id` (when the client
sent none, the same id to both sides and back), `X-Kubeloop-Version` on the answer, and
`X-Kubeloop-Shadow: true` on copies.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kubeloop.contracts.router import (
    CONFIG_PATH,
    LIVE_PATH,
    METRICS_PATH,
    READY_PATH,
    STATS_PATH,
    RouterSettings,
)
from kubeloop.contracts.routing import RoutingTable
from kubeloop.router.backends import NoPods, Pods
from kubeloop.router.copies import Copier, Copy
from kubeloop.router.decide import STABLE_ONLY, Side, Splitter, inference_protocol
from kubeloop.router.httpserver import Request, Response, error_response, json_response
from kubeloop.router.stats import Recorder
from kubeloop.router.upstream import Answer, ConnectFailed, UpstreamError, UpstreamTimeout

log = logging.getLogger("kubeloop.router")

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the router writes itself.
_DROPPED = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
        b"upgrade", b"content-length", b"expect", b"x-request-id", b"x-kubeloop-version",
        b"x-kubeloop-shadow",
    }
)  # fmt: skip
_STATUS_OF = {NoPods: 503, ConnectFailed: 502, UpstreamTimeout: 504}
_COPY_MARK = b"x-kubeloop-shadow: true\r\n"


@dataclass(frozen=True, slots=True)
class Plan:
    """A routing table made ready for the request path."""

    table: RoutingTable
    splitter: Splitter
    stable: Pods
    candidate: Pods | None

    def pods(self, side: Side) -> Pods | None:
        return self.stable if side is Side.STABLE else self.candidate

    def version(self, side: Side) -> int:
        backend = self.table.stable if side is Side.STABLE else self.table.candidate
        return backend.version if backend else 0


class Router:
    def __init__(
        self, settings: RouterSettings, recorder: Recorder | None = None, draw: random.Random | None = None
    ):
        self.settings = settings
        self.recorder = recorder or Recorder()
        self.draw = draw or random.Random()  # noqa: S311 - traffic splitting, not security
        self.plan: Plan | None = None
        self.pods: dict[str, Pods] = {}
        self.copier = Copier(self._send_copy, self.recorder, settings.copy_concurrency)
        self.draining = False
        self.source = ""  # where the table comes from, for /router/config
        self.problem: str | None = None  # the last bad table seen (the previous good one stays)
        self._own: dict[str, Callable[[], Response]] = {
            LIVE_PATH: lambda: json_response(200, {"live": True}),
            READY_PATH: self._ready,
            CONFIG_PATH: lambda: json_response(200, self.view()),
            STATS_PATH: self._stats,
            METRICS_PATH: lambda: Response(
                200,
                [(b"content-type", CONTENT_TYPE_LATEST.encode())],
                generate_latest(self.recorder.registry),
            ),
        }

    # --- what the sources feed in
    def _pods_of(self, service: str) -> Pods:
        pods = self.pods.get(service)
        if pods is None:
            pods = self.pods[service] = Pods(
                service, self.settings.connect_timeout_seconds, self.settings.eject_seconds
            )
        return pods

    def set_table(self, table: RoutingTable) -> None:
        previous = self.plan.table if self.plan else None
        candidate = self._pods_of(table.candidate.service) if table.candidate else None
        self.plan = Plan(table, Splitter.of(table), self._pods_of(table.stable.service), candidate)
        self.recorder.start_epoch(table.epoch)
        self.copier.limit = table.shadow_queue
        used = {table.stable.service} | ({table.candidate.service} if table.candidate else set())
        for service in set(self.pods) - used:
            self.pods.pop(service).close()
        if previous != table:
            next_version = table.candidate.version if table.candidate else None
            log.info(
                "routing table: %s epoch %s", table.mode.value, table.epoch,
                extra={"stable": table.stable.version, "candidate": next_version, "weight": table.weight,
                       "shadowPercent": table.shadow_percent},
            )  # fmt: skip

    def set_addresses(self, service: str, addresses: list[tuple[str, int]]) -> None:
        if self.plan is not None and service in self.pods:
            pods = self.pods[service]
            if [f"{h}:{p}" for h, p in addresses] != [f"{p.host}:{p.port}" for p in pods.pools]:
                log.info("%s: %d ready address(es)", service, len(addresses), extra={"service": service})
            pods.set_addresses(addresses)

    def services(self) -> dict[str, int]:
        """The backend Services the table names, with the port each serves on."""
        if self.plan is None:
            return {}
        table = self.plan.table
        backends = [table.stable, *([table.candidate] if table.candidate else [])]
        return {backend.service: backend.port for backend in backends}

    # --- requests
    async def handle(self, request: Request) -> Response:
        own = self._own.get(request.path)
        if own is not None:
            if request.method not in ("GET", "HEAD"):
                return error_response(405, f"{request.path} answers GET only", "MethodNotAllowed")
            return own()
        plan = self.plan
        if plan is None:
            return error_response(503, "the router has no routing table yet", "NoRoutingTable")
        lines, request_id = _forwarded_head(request)
        protocol = inference_protocol(request.method, request.path)
        decision = plan.splitter.decide(self.draw) if protocol else STABLE_ONLY
        side, head, counted = decision.answer, lines + b"\r\n", protocol is not None
        answered: asyncio.Future[Answer | None] | None = None
        if protocol and decision.copy is not None:  # leaves alongside; compared once both are in
            answered = asyncio.get_running_loop().create_future()
            copy_head = lines + _COPY_MARK + b"\r\n"
            self.copier.offer(
                Copy(plan.table.epoch, decision.copy, plan.version(decision.copy), protocol, copy_head,
                     request.body, plan.table.shadow_timeout_ms / 1000, answered)
            )  # fmt: skip
        answer: Answer | None = None
        try:
            try:
                answer = await self._exchange(plan, side, head, request, counted=counted)
            except UpstreamError as error:
                if side is Side.STABLE or error.sent:
                    return _failed(side, error, request_id)
                # A canary pod that cannot be reached (counted as the candidate's error): stable answers.
                side = Side.STABLE
                try:
                    answer = await self._exchange(plan, side, head, request, counted=counted)
                except UpstreamError as again:
                    return _failed(side, again, request_id)
        finally:
            if answered is not None:  # the copy compares with the intended side's answer only
                answered.set_result(answer if side is decision.answer else None)
        return _relayed(answer, request_id, plan.version(side))

    async def _exchange(
        self, plan: Plan, side: Side, head: bytes, request: Request, *, counted: bool
    ) -> Answer:
        """One side's answer; for predictions its latency and outcome are counted."""
        started = time.perf_counter()
        try:
            pods = plan.pods(side)
            if pods is None:
                raise NoPods(f"no {side.value} backend in the routing table")
            timeout = self.settings.upstream_timeout_seconds
            answer = await pods.send(head, request.body, timeout, request.method == "HEAD")
        except UpstreamError:
            if counted:
                latency = time.perf_counter() - started
                self.recorder.side(
                    plan.table.epoch, side, plan.version(side), latency_s=latency, error=True, copy=False
                )
            raise
        if counted:
            latency, failed = time.perf_counter() - started, answer.status >= 500
            self.recorder.side(
                plan.table.epoch, side, plan.version(side), latency_s=latency, error=failed, copy=False
            )
        return answer

    async def _send_copy(self, side: Side, head: bytes, body: bytes, timeout: float) -> Answer:
        pods = self.plan.pods(side) if self.plan else None
        if pods is None:
            raise NoPods(f"no {side.value} backend in the routing table")
        return await pods.send(head, body, timeout)

    # --- the router's own endpoints
    def ready(self) -> tuple[bool, str]:
        if self.draining:
            return False, "Draining"
        if self.plan is None:
            return False, "NoRoutingTable"
        if not self.plan.stable.pools:
            return False, "NoStableAddress"
        return True, "Ready"

    def _ready(self) -> Response:
        ready, reason = self.ready()
        return json_response(200 if ready else 503, {"ready": ready, "reason": reason})

    def _stats(self) -> Response:
        stats = self.recorder.snapshot()
        if stats is None:
            return error_response(503, "the router has no routing table yet", "NoRoutingTable")
        stats_json = stats.model_dump_json(by_alias=True).encode()
        return Response(200, [(b"content-type", b"application/json")], stats_json)

    def view(self) -> dict[str, object]:
        """What the router currently follows (GET /router/config)."""
        table = self.plan.table.model_dump(mode="json", by_alias=True) if self.plan else None
        backends = {
            service: {"addresses": pods.addresses, "ejected": pods.ejected()}
            for service, pods in self.pods.items()
        }
        ready, reason = self.ready()
        return {"source": self.source, "table": table, "backends": backends, "ready": ready, "reason": reason,
                "problem": self.problem, "pod": self.settings.pod_name}  # fmt: skip


def _forwarded_head(request: Request) -> tuple[bytes, bytes]:
    """The request line and headers to send upstream (without the final CRLF), and the request id."""
    request_id = None
    parts = [request.method.encode(), b" ", request.target, b" HTTP/1.1\r\n"]
    for name, value in request.headers:
        lowered = name.lower()
        if lowered in _DROPPED:
            if lowered == b"x-request-id" and value:
                request_id = value
            continue
        parts += (name, b": ", value, b"\r\n")
    if request_id is None:
        request_id = uuid.uuid4().hex.encode()
    parts += (
        b"x-request-id: ",
        request_id,
        b"\r\ncontent-length: ",
        str(len(request.body)).encode(),
        b"\r\n",
    )
    return b"".join(parts), request_id


def _failed(side: Side, error: UpstreamError, request_id: bytes) -> Response:
    log.warning("%s backend failed: %s", side.value, error, extra={"reason": error.reason})
    status = _STATUS_OF.get(type(error), 502)
    response = error_response(status, f"{side.value} backend: {error}", error.reason)
    response.headers.append((b"x-request-id", request_id))
    return response


def _relayed(answer: Answer, request_id: bytes, version: int) -> Response:
    headers = [(name, value) for name, value in answer.headers if name.lower() not in _DROPPED]
    headers += ((b"x-request-id", request_id), (b"x-kubeloop-version", str(version).encode()))
    return Response(answer.status, headers, answer.body)

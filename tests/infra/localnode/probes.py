"""Readiness, liveness and startup probes: httpGet, tcpSocket and exec, as the kubelet runs them."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.infra.localnode.podspec import Obj

# Runs a command inside the container's view of the filesystem; returns the exit code.
ExecRunner = Callable[[list[str], float], int]


def resolve_port(port: int | str, container: Obj) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"probe names port {port!r}, which the container does not declare")


def probe_once(probe: Obj, pod_ip: str, container: Obj, run_exec: ExecRunner) -> bool:
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "httpGet" in probe:
            spec = probe["httpGet"]
            connection = http.client.HTTPConnection(
                spec.get("host") or pod_ip, resolve_port(spec["port"], container), timeout=timeout
            )
            headers = {h["name"]: h["value"] for h in spec.get("httpHeaders") or []}
            connection.request("GET", spec.get("path", "/"), headers=headers)
            status = connection.getresponse().status
            connection.close()
            return 200 <= status < 400
        if "tcpSocket" in probe:
            spec = probe["tcpSocket"]
            port = resolve_port(spec["port"], container)
            with socket.create_connection((spec.get("host") or pod_ip, port), timeout=timeout):
                return True
        if "exec" in probe:
            return run_exec(list(probe["exec"]["command"]), timeout) == 0
    except (OSError, ValueError, http.client.HTTPException):
        return False
    return False


@dataclass
class ProbeState:
    """Thresholds and timing of one probe on one container run."""

    probe: Obj
    started_at: float
    result: bool | None = None
    successes: int = 0
    failures: int = 0
    next_at: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.next_at = self.started_at + float(self.probe.get("initialDelaySeconds", 0))

    def due(self, at: float) -> bool:
        return at >= self.next_at

    def record(self, ok: bool, at: float) -> None:
        self.next_at = at + float(self.probe.get("periodSeconds", 10))
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= int(self.probe.get("successThreshold", 1)):
                self.result = True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.failures >= int(self.probe.get("failureThreshold", 3)):
                self.result = False


def now() -> float:
    return time.monotonic()

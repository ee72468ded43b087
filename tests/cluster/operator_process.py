"""The operator as a real process against the session's control plane, as its image would run it."""

from __future__ import annotations

import os
import signal
import sys
import urllib.request
from pathlib import Path

from tests.infra.fixtures import LOG_SOURCES, Cluster
from tests.infra.processes import ManagedProcess, free_port, http_ok, wait_until

REPO = Path(__file__).resolve().parents[2]


class OperatorProcess:
    def __init__(self, cluster: Cluster, name: str = "operator", env: dict[str, str] | None = None) -> None:
        self.cluster, self.name, self.extra_env = cluster, name, env or {}
        self.metrics_port, self.health_port = free_port(), free_port()
        self.process: ManagedProcess | None = None

    def start(self) -> OperatorProcess:
        env = {
            **os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), "KUBELOOP_BIND_HOST": "127.0.0.1",
            "KUBELOOP_METRICS_PORT": str(self.metrics_port), "KUBELOOP_HEALTH_PORT": str(self.health_port),
            "PYTHONPATH": str(REPO / "operator"),
            **self.extra_env,
        }  # fmt: skip
        log = self.cluster.plane.logs / f"{self.name}.log"
        self.process = ManagedProcess(
            self.name, [sys.executable, "-m", "kubeloop.operator"], log, env=env
        ).start()
        LOG_SOURCES[self.name] = log
        wait_until(self.healthy, 60, "the operator's /healthz")
        return self

    def healthy(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.health_port}/healthz", self.process)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=3) as response:
            return str(response.read().decode())

    def reconciles(self, kind: str) -> float:
        prefix = f'kubeloop_reconcile_total{{kind="{kind}",outcome="ok"}} '
        return sum(
            float(line[len(prefix) :]) for line in self.metrics().splitlines() if line.startswith(prefix)
        )

    def crash(self) -> None:
        """SIGKILL, as an OOM kill or a node failure would: no shutdown code runs."""
        assert self.process is not None and self.process.popen is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.popen.wait()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=15)

"""The router as a real process in standalone mode (KUBELOOP_ROUTING_FILE) in front of real model
servers (the serving tests' trained models and launcher) or a tiny misbehaving HTTP server."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from kubeloop.contracts.routing import RouterStats
from tests.component.serving.conftest import (
    REPO,
    Server,
    TrainedModel,
    churn_frame,
    classifier,
    launcher,
    model_work,
    serve,
    train,
)
from tests.infra.fixtures import LOG_SOURCES
from tests.infra.minio_server import MinioServer
from tests.infra.processes import ManagedProcess, free_port, wait_until

__all__ = ["classifier", "launcher", "model_work", "serve"]
FAKE_BACKEND = Path(__file__).with_name("fake_backend.py")
STABLE, CANDIDATE = "churn-v1", "churn-v2"


@pytest.fixture(scope="session")
def other_classifier(minio: MinioServer, model_work: Path) -> TrainedModel:
    """Another model of the same name on other data: its answers differ from `classifier`'s on some rows."""
    algorithm = {"estimator": "LogisticRegression", "params": {"C": 0.05}}
    frame = churn_frame(rows=600, seed=21)
    return train(minio, model_work, "churn", frame, target="churned", algorithm=algorithm)


def table(
    mode: str = "StableOnly", candidate: bool = True, epoch: str = "e1", **fields: Any
) -> dict[str, Any]:
    document = {"deployment": "churn", "model": "churn", "epoch": epoch, "mode": mode,
                "stable": {"version": 1, "service": STABLE}, **fields}  # fmt: skip
    if candidate:
        document["candidate"] = {"version": 2, "service": CANDIDATE}
    return document


def address(server: Server | FakeBackend | int) -> str:
    if isinstance(server, int):
        return f"127.0.0.1:{server}"
    return (
        f"127.0.0.1:{server.env['KUBELOOP_PORT']}"
        if isinstance(server, Server)
        else f"127.0.0.1:{server.port}"
    )


@dataclass
class Router:
    port: int
    file: Path
    process: ManagedProcess
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, routing_table: dict[str, Any], endpoints: dict[str, list[str]]) -> None:
        """Rewrite the routing file (atomically: the router polls it)."""
        partial = self.file.with_suffix(".partial")
        partial.write_text(json.dumps({"table": routing_table, "endpoints": endpoints}))
        partial.replace(self.file)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        self.process.check_alive()
        return self.http.get(self.url + path, timeout=10, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        self.process.check_alive()
        headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
        return self.http.post(self.url + path, data=json.dumps(body), headers=headers, timeout=10, **kwargs)

    def infer(self, body: Any, **kwargs: Any) -> requests.Response:
        return self.post("/v2/models/churn/infer", body, **kwargs)

    def stats(self) -> RouterStats:
        response = self.get("/stats")
        assert response.status_code == 200, response.text
        return RouterStats.model_validate_json(response.content)

    def wait_stats(self, check: Callable[[RouterStats], bool], what: str) -> RouterStats:
        wait_until(lambda: check(self.stats()), 20, what, interval=0.1)
        return self.stats()

    def wait_epoch(self, epoch: str) -> None:
        wait_until(lambda: self.stats().epoch == epoch, 10, f"the router on epoch {epoch}", interval=0.1)


def router_env(port: int, file: Path, **env: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(REPO / "operator"),
        "KUBELOOP_ROUTING_FILE": str(file),
        "KUBELOOP_BIND_HOST": "127.0.0.1",
        "KUBELOOP_PORT": str(port),
        "KUBELOOP_POD_NAME": "router-0",
        **env,
    }


@pytest.fixture
def start_router(tmp_path: Path) -> Iterator[Callable[..., Router]]:
    """start_router(table, endpoints, KUBELOOP_X=...): a router process, stopped after the test."""
    started: list[Router] = []

    def start(routing_table: dict[str, Any], endpoints: dict[str, list[str]], **env: str) -> Router:
        name = f"router-{uuid.uuid4().hex[:6]}"
        port, file = free_port(), tmp_path / f"{name}.json"
        argv = [sys.executable, "-m", "kubeloop.router"]
        process = ManagedProcess(name, argv, tmp_path / f"{name}.log", env=router_env(port, file, **env))
        router = Router(port, file, process)
        router.route(routing_table, endpoints)
        process.start()
        LOG_SOURCES[name] = process.log
        started.append(router)
        wait_until(lambda: router.get("/router/live").status_code == 200, 30, f"{name} live")
        return router

    yield start
    for router in started:
        router.process.stop()
        LOG_SOURCES.pop(router.process.name, None)


@dataclass
class FakeBackend:
    port: int
    process: ManagedProcess

    def count(self) -> dict[str, int]:
        self.process.check_alive()
        counted: dict[str, int] = requests.get(f"http://127.0.0.1:{self.port}/count", timeout=5).json()
        return counted


@pytest.fixture
def fake_backend(tmp_path: Path) -> Iterator[Callable[[str], FakeBackend]]:
    """fake_backend('fail') or fake_backend('slow:1.5'): a real HTTP server that misbehaves."""
    started: list[FakeBackend] = []

    def start(mode: str) -> FakeBackend:
        port = free_port()
        log = tmp_path / f"fake-{port}.log"
        argv = [sys.executable, str(FAKE_BACKEND), str(port), mode]
        backend = FakeBackend(port, ManagedProcess(f"fake-{port}", argv, log).start())
        started.append(backend)
        wait_until(lambda: backend.count() is not None, 20, f"fake backend {mode}")
        return backend

    yield start
    for backend in started:
        backend.process.stop()

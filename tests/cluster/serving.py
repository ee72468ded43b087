"""Helpers for the serving tests: imported model versions, ModelDeployments and live traffic."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import requests
from kubernetes import client

from tests.cluster.test_operator import GROUP, VERSION
from tests.cluster.training import create, get, wait_phase
from tests.component.serving.conftest import TrainedModel
from tests.infra.fixtures import Cluster
from tests.infra.processes import wait_until

FEATURES = ["tenure", "charges", "contract", "senior"]


def import_version(cluster: Cluster, namespace: str, model: TrainedModel, number: int) -> dict[str, Any]:
    """Register an externally trained model as `<model>-v<number>` and wait for its validation."""
    name = f"{model.name}-v{number}"
    create(cluster, namespace, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelVersion", "metadata": {"name": name},
        "spec": {"model": model.name, "version": number,
                 "artifact": {"uri": model.model_uri, "format": "onnx", "sha256": model.sha256},
                 "metrics": {k: v for k, v in model.card.metrics.items() if isinstance(v, float)}},
    })  # fmt: skip
    found = wait_phase(cluster, namespace, "ModelVersion", name, {"Ready", "Failed"}, timeout=180)
    assert found["status"]["phase"] == "Ready", found["status"]
    return found


def deployment(name: str, model: str, version: int, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment", "metadata": {"name": name},
            "spec": {"model": model, "version": version, **spec}}  # fmt: skip


def patch_spec(cluster: Cluster, namespace: str, name: str, spec: dict[str, Any]) -> None:
    client.CustomObjectsApi(cluster.api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", name, {"spec": spec}
    )


def wait_status(cluster: Cluster, namespace: str, name: str, check: Any, *, timeout: float = 240,
                what: str = "") -> dict[str, Any]:  # fmt: skip
    """Poll the ModelDeployment until `check(status)` holds; the last status is in the failure."""
    seen: dict[str, Any] = {}

    def ready() -> bool:
        seen.clear()
        seen.update(get(cluster, namespace, "ModelDeployment", name).get("status") or {})
        return bool(check(seen))

    try:
        wait_until(ready, timeout=timeout, interval=1, what=what or f"ModelDeployment {name}")
    except TimeoutError as error:
        raise AssertionError(f"{error}; last status: {seen}") from None
    return dict(seen)


def addresses(cluster: Cluster, namespace: str, service: str) -> list[str]:
    slices = client.DiscoveryV1Api(cluster.api).list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}"
    )
    return [a for s in slices.items for e in s.endpoints or [] if e.conditions.ready for a in e.addresses]


def url(cluster: Cluster, namespace: str, service: str, port: int = 8080) -> str:
    """A ready pod of `service`, by pod IP: the host reaches the pod range, not Service addresses."""
    found: list[str] = []
    wait_until(lambda: bool(found.extend(addresses(cluster, namespace, service)) or found), timeout=120,
               what=f"a ready endpoint of {service}")  # fmt: skip
    return f"http://{found[0]}:{port}"


def rows(frame: pd.DataFrame, start: int, count: int) -> list[dict[str, Any]]:
    part = frame[FEATURES].iloc[start : start + count].astype(object)
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in part.to_dict("records")]


@dataclass
class Traffic:
    """Steady single-row predictions through the router from a thread, every answer recorded."""

    base: str
    model: str
    frame: pd.DataFrame
    statuses: Counter[int] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    sent: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def one(self, session: requests.Session) -> requests.Response | None:
        body = {"instances": rows(self.frame, self.sent % len(self.frame), 1)}
        self.sent += 1
        try:
            answer = session.post(f"{self.base}/v1/models/{self.model}:predict", json=body, timeout=10)
        except requests.RequestException as error:
            self.failures.append(repr(error))
            return None
        self.statuses[answer.status_code] += 1
        self.versions[answer.headers.get("x-kubeloop-version", "?")] += 1
        if answer.status_code != 200:
            self.failures.append(f"{answer.status_code}: {answer.text[:200]}")
        return answer

    def send(self, count: int) -> None:
        with requests.Session() as session:
            for _ in range(count):
                self.one(session)

    def start(self, pause: float = 0.02) -> Traffic:
        def run() -> None:
            with requests.Session() as session:
                while not self._stop.is_set():
                    self.one(session)
                    time.sleep(pause)

        self._stop.clear()
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

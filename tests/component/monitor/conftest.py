"""Real request logs for the monitor: models trained by the real trainer, served by the real model
server, which writes its request logs and feedback to the session's MinIO; then the monitor runs as
`python -m kubeloop.monitor`, exactly as its CronJob's pod does."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kubeloop.contracts.monitoring import DriftRule, MonitorReport, MonitorTask
from kubeloop.store.client import Store
from tests.component.serving.conftest import Launcher, Server, TrainedModel, s3_env, train
from tests.datasets import churn_frame
from tests.infra.minio_server import MinioServer

REPO = Path(__file__).resolve().parents[3]
FEATURES = ["tenure_months", "monthly_charges", "total_charges", "contract", "payment_method",
            "internet_service", "senior_citizen", "support_tickets"]  # fmt: skip
TARGET = "churned"


@pytest.fixture(scope="session")
def churn_model(minio: MinioServer, tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """A gradient-boosted churn classifier trained by the real trainer on tests/datasets.py data."""
    algorithm = {"estimator": "HistGradientBoostingClassifier", "params": {"max_iter": 40}}
    work = tmp_path_factory.mktemp("monitor-models")
    return train(minio, work, "churn", churn_frame(3000, seed=7), target=TARGET, algorithm=algorithm)


@pytest.fixture(scope="session")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    running = Launcher(tmp_path_factory.mktemp("monitor-servers"))
    yield running
    running.stop_all()


@pytest.fixture
def serve(launcher: Launcher, minio: MinioServer) -> Iterator[Callable[..., Server]]:
    mine: list[Server] = []

    def start(model: TrainedModel, **env: str) -> Server:
        server = launcher.start(model, minio, "ready", KUBELOOP_LOG_FLUSH_SECONDS="3600", **env)
        mine.append(server)
        return server

    yield start
    for server in mine:
        server.process.stop()


def instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a client sends them: JSON values, missing ones as null."""
    rows = frame[FEATURES].to_dict("records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]


def send(server: Server, frame: pd.DataFrame, batch: int = 40) -> list[tuple[str, int]]:
    """Score `frame` in requests of `batch` rows; (request id, row) of every row, in order."""
    sent = []
    rows = instances(frame)
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        response = server.predict({"instances": chunk})
        assert response.status_code == 200, response.text
        sent.extend((response.json()["requestId"], row) for row in range(len(chunk)))
    return sent


def give_feedback(server: Server, sent: list[tuple[str, int]], actual: list[Any]) -> None:
    items = [{"requestId": r, "row": row, "actual": a} for (r, row), a in zip(sent, actual, strict=True)]
    for start in range(0, len(items), 500):
        response = server.post("/v1/feedback", items[start : start + 500])
        assert response.status_code == 200, response.text


@dataclass
class MonitorRun:
    code: int
    stdout: str
    stderr: str
    summary: dict[str, Any]

    def report(self, store: Store) -> MonitorReport:
        return MonitorReport.model_validate_json(store.get_bytes(self.summary["jsonUri"]))


def monitor_task(server: Server, minio: MinioServer, **overrides: Any) -> MonitorTask:
    model = server.model
    fields: dict[str, Any] = {
        "namespace": "test", "monitor": f"mon-{uuid.uuid4().hex[:6]}",
        "deployment": server.env["KUBELOOP_DEPLOYMENT"], "model": model.name, "version": 1,
        "model_folder": model.folder, "store_root": f"s3://{minio.bucket}/", "window_seconds": 3600,
        "min_samples": 200, "drift": DriftRule(method="psi", threshold=0.2),
    }  # fmt: skip
    return MonitorTask.model_validate({**fields, **overrides})


def run_monitor(task: MonitorTask | str, minio: MinioServer, tmp_path: Path) -> MonitorRun:
    log = tmp_path / f"termination-{uuid.uuid4().hex[:6]}.log"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO / "operator"),
           "KUBELOOP_TASK": task if isinstance(task, str) else task.to_json(),
           "KUBELOOP_TERMINATION_LOG": str(log), **s3_env(minio)}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "kubeloop.monitor"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    summary = json.loads(log.read_text()) if log.exists() else {}
    return MonitorRun(done.returncode, done.stdout, done.stderr, summary)

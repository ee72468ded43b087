"""Models trained by the project's trainer into the session's MinIO, and the server as a real process.

The trainer runs as `python -m kubeloop.trainer` (exactly as its Job would), so every model the
server tests use went through the real fit -> ONNX export -> model.json path.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from kubeloop.contracts.model import ModelCard
from kubeloop.contracts.results import TrainingResult
from kubeloop.contracts.tasks import TrainerTask
from kubeloop.store.client import Store
from tests.component.conftest import settings_for
from tests.infra.fixtures import LOG_SOURCES
from tests.infra.minio_server import MinioServer
from tests.infra.processes import ManagedProcess, free_port, wait_until

REPO = Path(__file__).resolve().parents[3]


# --- models ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainedModel:
    name: str
    folder: str  # s3://<bucket>/runs/.../
    sha256: str
    card: ModelCard

    @property
    def model_uri(self) -> str:
        return self.folder + "model.onnx"

    @property
    def card_uri(self) -> str:
        return self.folder + "model.json"

    @property
    def golden_rows(self) -> list[dict[str, Any]]:
        inputs = self.card.golden.inputs
        count = len(next(iter(inputs.values())))
        return [{name: values[row] for name, values in inputs.items()} for row in range(count)]


def s3_env(minio: MinioServer) -> dict[str, str]:
    return {
        "KUBELOOP_S3_ENDPOINT": minio.url,
        "KUBELOOP_S3_ACCESS_KEY": minio.access_key,
        "KUBELOOP_S3_SECRET_KEY": minio.secret_key,
        "KUBELOOP_S3_BUCKET": minio.bucket,
    }


def train(
    minio: MinioServer, work: Path, name: str, frame: pd.DataFrame, *, target: str, algorithm: dict[str, Any]
) -> TrainedModel:
    """Upload `frame` as a CSV dataset and run the trainer on it as its Job would."""
    store = Store(settings_for(minio))
    run = uuid.uuid4().hex[:8]
    dataset = f"s3://{minio.bucket}/datasets/{name}/{run}.csv"
    store.put_bytes(dataset, frame.to_csv(index=False).encode(), "text/csv")
    spec = {
        "model": name,
        "dataset": {"uri": dataset, "format": "csv", "target": target},
        "algorithm": algorithm,
        "split": {"testFraction": 0.2, "seed": 7},
    }
    folder = f"s3://{minio.bucket}/runs/test/{name}-{run}/{run}/"
    task = TrainerTask(
        mode="train", spec=spec, output=folder, training_run=f"test/{name}-{run}", training_run_uid=run
    )
    termination = work / f"{name}-{run}.result"
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(REPO / "operator"),
        "KUBELOOP_TASK": task.to_json(),
        "KUBELOOP_TERMINATION_LOG": str(termination),
        **s3_env(minio),
    }
    done = subprocess.run(
        [sys.executable, "-m", "kubeloop.trainer"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (
        f"the trainer failed on {name}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    result = TrainingResult.model_validate_json(termination.read_text())
    assert result.outcome == "Succeeded" and result.artifact is not None, result
    card = ModelCard.model_validate_json(store.get_bytes(folder + "model.json"))
    return TrainedModel(name, folder, result.artifact.sha256, card)


def churn_frame(rows: int = 1500, seed: int = 3) -> pd.DataFrame:
    """Numeric, categorical and boolean columns with gaps; the label follows a noisy rule."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, rows),
            "charges": np.round(rng.normal(70, 25, rows), 2),
            "contract": rng.choice(["monthly", "yearly", "two-year"], rows, p=[0.5, 0.3, 0.2]),
            "senior": rng.choice([True, False], rows, p=[0.2, 0.8]),
        }
    )
    risk = (frame.tenure < 24) * 1.2 + (frame.contract == "monthly") * 1.0 + frame.senior * 0.5
    risk = risk + (frame.charges - 70) / 50 + rng.normal(0, 0.8, rows)
    frame["churned"] = np.where(risk > 1.5, "yes", "no")
    frame.loc[rng.choice(rows, rows // 25, replace=False), "charges"] = np.nan
    frame.loc[rng.choice(rows, rows // 30, replace=False), "contract"] = None
    return frame


def price_frame(rows: int = 800, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "rooms": rng.integers(1, 8, rows),
            "area": np.round(rng.uniform(20, 250, rows), 1),
            "city": rng.choice(["paris", "lyon", "nantes"], rows),
        }
    )
    uplift = frame.city.map({"paris": 3000.0, "lyon": 1500.0, "nantes": 1000.0})
    frame["price"] = np.round(frame.area * uplift + frame.rooms * 5000 + rng.normal(0, 10_000, rows), 0)
    frame.loc[rng.choice(rows, rows // 20, replace=False), "area"] = np.nan
    return frame


@pytest.fixture(scope="session")
def model_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving-models")


@pytest.fixture(scope="session")
def classifier(minio: MinioServer, model_work: Path) -> TrainedModel:
    """A RandomForest on integer, float (with gaps), string (with gaps) and boolean columns."""
    algorithm = {"estimator": "RandomForestClassifier", "params": {"n_estimators": 30, "max_depth": 6}}
    return train(minio, model_work, "churn", churn_frame(), target="churned", algorithm=algorithm)


@pytest.fixture(scope="session")
def regressor(minio: MinioServer, model_work: Path) -> TrainedModel:
    algorithm = {"estimator": "Ridge", "params": {}}
    return train(minio, model_work, "price", price_frame(), target="price", algorithm=algorithm)


# --- the server --------------------------------------------------------------------------------------


@dataclass
class Server:
    model: TrainedModel
    env: dict[str, str]
    process: ManagedProcess
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['KUBELOOP_PORT']}"

    @property
    def name(self) -> str:
        return self.env["KUBELOOP_MODEL_NAME"]

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        self.process.check_alive()
        return self.http.get(self.url + path, timeout=10, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        self.process.check_alive()
        if body is not None:
            kwargs["data"] = body if isinstance(body, bytes | str) else json.dumps(body)
            kwargs.setdefault("headers", {})["content-type"] = "application/json"
        return self.http.post(self.url + path, timeout=10, **kwargs)

    def infer(self, body: Any, **kwargs: Any) -> requests.Response:
        return self.post(f"/v2/models/{self.name}/infer", body, **kwargs)

    def predict(self, body: Any, **kwargs: Any) -> requests.Response:
        return self.post(f"/v1/models/{self.name}:predict", body, **kwargs)

    def wait_live(self) -> Server:
        wait_until(lambda: self.get("/v2/health/live").status_code == 200, 60, f"{self.name} server live")
        return self

    def wait_ready(self, timeout: float = 60) -> Server:
        wait_until(lambda: self.get("/v2/health/ready").status_code == 200, timeout, f"{self.name} ready")
        return self

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples called `name` whose labels include `labels`."""
        text = self.get("/metrics").text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def terminate(self, timeout: float = 30) -> None:
        """SIGTERM, as the kubelet sends it, and a graceful exit: uvicorn stops, then re-raises the
        signal, so the process ends by SIGTERM (143 in a container); a crash would exit 1."""
        assert self.process.popen is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        code = self.process.popen.wait(timeout)
        assert code == -signal.SIGTERM, f"exit code {code}:\n{self.process.log.read_text()[-3000:]}"


class Launcher:
    """Starts servers for tests and stops every one of them afterwards."""

    def __init__(self, work: Path) -> None:
        self.work, self.running = work, list[Server]()

    def start(self, model: TrainedModel, minio: MinioServer, wait: str = "ready", **env: str) -> Server:
        deployment = f"{model.name}-{uuid.uuid4().hex[:6]}"
        full = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(REPO / "operator"),
            **s3_env(minio),
            "KUBELOOP_MODEL_NAME": model.name,
            "KUBELOOP_MODEL_VERSION": "1",
            "KUBELOOP_MODEL_URI": model.model_uri,
            "KUBELOOP_MODEL_SHA256": model.sha256,
            "KUBELOOP_CARD_URI": model.card_uri,
            "KUBELOOP_BIND_HOST": "127.0.0.1",
            "KUBELOOP_PORT": str(free_port()),
            "KUBELOOP_NAMESPACE": "test",
            "KUBELOOP_DEPLOYMENT": deployment,
            "KUBELOOP_POD_NAME": f"{deployment}-pod",
            **env,
        }
        log = self.work / f"{deployment}.log"
        process = ManagedProcess(
            deployment, [sys.executable, "-m", "kubeloop.serving"], log, env=full
        ).start()
        LOG_SOURCES[f"server {deployment}"] = log
        server = Server(model, full, process)
        self.running.append(server)
        server.wait_live()
        if wait == "ready":
            server.wait_ready()
        return server

    def stop_all(self) -> None:
        for server in self.running:
            server.process.stop()
            LOG_SOURCES.pop(f"server {server.process.name}", None)
        self.running.clear()


@pytest.fixture(scope="session")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    running = Launcher(tmp_path_factory.mktemp("servers"))
    yield running
    running.stop_all()


@pytest.fixture
def serve(launcher: Launcher, minio: MinioServer) -> Iterator[Callable[..., Server]]:
    """Start a server for this test only: serve(model, KUBELOOP_X="...")."""
    mine: list[Server] = []

    def start(
        model: TrainedModel, wait: str = "ready", store: MinioServer | None = None, **env: str
    ) -> Server:
        server = launcher.start(model, store or minio, wait, **env)
        mine.append(server)
        return server

    yield start
    for server in mine:
        server.process.stop()


# --- reading what the server wrote -----------------------------------------------------------------


def read_jsonl_gz(store: Store, location: str) -> list[dict[str, Any]]:
    with gzip.open(io.BytesIO(store.get_bytes(location))) as handle:
        return [json.loads(line) for line in handle.read().decode().splitlines() if line]


def v2_body(server: Server, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A V2 request built the way a KServe/Triton client does: datatypes from the model metadata."""
    metadata = server.get(f"/v2/models/{server.name}").json()
    return {
        "inputs": [
            {
                "name": i["name"],
                "shape": [len(rows), 1],
                "datatype": i["datatype"],
                "data": [row[i["name"]] for row in rows],
            }
            for i in metadata["inputs"]
        ]
    }


def v2_output(response: requests.Response, name: str) -> list[Any]:
    for output in response.json()["outputs"]:
        if output["name"] == name:
            data: list[Any] = output["data"]
            return data
    raise AssertionError(f"no output {name} in {response.text[:500]}")

"""Running the trainer as the Job would: `python -m kubeloop.trainer` with the task and S3 env."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pytest

from kubeloop.contracts.tasks import TrainerTask
from kubeloop.store.client import Store
from tests.infra.minio_server import MinioServer
from tests.unit.trainer.datasets import to_bytes

REPO = Path(__file__).resolve().parents[3]
TRAINER = [sys.executable, "-m", "kubeloop.trainer"]


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str
    message: dict[str, Any]  # the termination message

    @property
    def lines(self) -> list[dict[str, Any]]:
        """stdout as JSON objects; fails the test if any line is not one."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def stages(self) -> list[str]:
        return [line["stage"] for line in self.lines]


def process_env(
    store_env: dict[str, str], task: TrainerTask, log: Path, index: int | None = None
) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(log.parent), "PYTHONPATH": str(REPO / "operator"),
           "KUBELOOP_TASK": task.to_json(), "KUBELOOP_TERMINATION_LOG": str(log), **store_env}  # fmt: skip
    if index is not None:
        env["JOB_COMPLETION_INDEX"] = str(index)
    return env


def run_trainer(
    task: TrainerTask, store_env: dict[str, str], tmp_path: Path, index: int | None = None
) -> Finished:
    log = tmp_path / f"termination-{uuid.uuid4().hex[:6]}.log"
    env = process_env(store_env, task, log, index)
    done = subprocess.run(TRAINER, env=env, capture_output=True, text=True, timeout=240, check=False)
    message = json.loads(log.read_text()) if log.exists() else {}
    return Finished(done.returncode, done.stdout, done.stderr, message)


def make_task(
    uri: str,
    output: str,
    estimator: str,
    target: str,
    *,
    file_format: str = "csv",
    mode: Literal["train", "trial"] = "train",
    params: dict[str, Any] | None = None,
    **spec: Any,
) -> TrainerTask:
    """A task as the operator writes it; `spec` adds top-level fields, or merges into algorithm/dataset."""
    algorithm = {"estimator": estimator, "params": {}} | spec.pop("algorithm", {})
    dataset = {"uri": uri, "format": file_format, "target": target} | spec.pop("dataset", {})
    body = {"model": "churn", "dataset": dataset, "algorithm": algorithm, **spec}
    return TrainerTask(
        mode=mode,
        spec=body,
        output=output,
        training_run="team-a/churn-1",
        training_run_uid="0b7c-uid",
        params=params or {},
        image="kubeloop/trainer:test",
    )


@dataclass
class Bench:
    """A fresh run folder in the session's MinIO, and how to run the trainer against it."""

    store: Store
    env: dict[str, str]  # the KUBELOOP_S3_* a trainer pod gets
    minio: MinioServer
    folder: str
    tmp_path: Path

    def upload(self, frame: pd.DataFrame, file_format: str) -> tuple[str, bytes]:
        data = to_bytes(frame, file_format)
        uri = self.folder.replace("/runs/", "/datasets/") + f"data.{file_format}"
        self.store.put_bytes(uri, data)
        return uri, data

    def run(self, task: TrainerTask, index: int | None = None) -> Finished:
        return run_trainer(task, self.env, self.tmp_path, index)

    def secrets_in(self, text: str) -> bool:
        return self.minio.secret_key in text or self.minio.access_key in text


@pytest.fixture
def bench(store: Store, store_env: dict[str, str], minio: MinioServer, tmp_path: Path) -> Bench:
    folder = f"s3://{minio.bucket}/runs/team-a/churn-1/{uuid.uuid4().hex}/"
    return Bench(store, store_env, minio, folder, tmp_path)

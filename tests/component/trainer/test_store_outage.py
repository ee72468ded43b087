"""The store goes away mid-run: the trainer retries, then fails as transient (exit 1) naming the location."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from kubeloop.contracts.results import TrainingResult
from kubeloop.contracts.tasks import EXIT_TRANSIENT
from kubeloop.store.client import Store
from tests.component.conftest import settings_for
from tests.component.trainer.conftest import TRAINER, make_task, process_env
from tests.infra.minio_server import MinioServer
from tests.unit.trainer import datasets


def test_store_down_after_the_dataset_is_read(tmp_path: Path) -> None:
    server = MinioServer().start()
    trainer: subprocess.Popen[str] | None = None
    try:
        store = Store(settings_for(server))
        uri = f"s3://{server.bucket}/datasets/outage.csv"
        store.put_bytes(uri, datasets.classification(3000, seed=9).to_csv(index=False).encode())
        folder = f"s3://{server.bucket}/runs/team-a/outage/{uuid.uuid4().hex}/"
        # Enough boosting rounds that the fit outlasts stopping MinIO: the first write comes after it.
        task = make_task(uri, folder, "GradientBoostingClassifier", "churn",
                         algorithm={"params": {"n_estimators": 500}})  # fmt: skip
        env = {"KUBELOOP_S3_ENDPOINT": server.url, "KUBELOOP_S3_ACCESS_KEY": server.access_key,
               "KUBELOOP_S3_SECRET_KEY": server.secret_key, "KUBELOOP_S3_BUCKET": server.bucket}  # fmt: skip
        log = tmp_path / "termination.log"
        trainer = subprocess.Popen(TRAINER, env=process_env(env, task, log), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)  # fmt: skip
        assert trainer.stdout is not None
        lines = []
        for line in trainer.stdout:
            lines.append(line)
            if '"stage": "dataset-loaded"' in line:
                break
        assert lines and '"dataset-loaded"' in lines[-1], "".join(lines)
        server.stop()
        lines += trainer.stdout.read().splitlines(keepends=True)
        code = trainer.wait(timeout=120)
    finally:
        if trainer is not None and trainer.poll() is None:
            trainer.kill()
        server.stop()

    output = "".join(lines)
    records = [json.loads(line) for line in lines]
    assert code == EXIT_TRANSIENT, output
    retries = [r for r in records if r["level"] == "warning" and r.get("logger") == "kubeloop.store"]
    assert len(retries) == 4 and all("retrying in" in r["message"] for r in retries)  # 5 attempts in all
    assert "fitted" in [r["stage"] for r in records]  # it failed writing, after training
    result = TrainingResult.model_validate_json(log.read_text())
    assert (result.outcome, result.reason) == ("Failed", "StoreUnavailable")
    assert (
        f"put {folder}validation.json" in result.message
        and "did not answer after 5 attempts" in result.message
    )
    assert server.secret_key not in output and server.access_key not in output

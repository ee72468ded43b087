"""`python -m kubeloop.batch notify` against a real webhook endpoint and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeloop.contracts.batch import (
    EmailTarget,
    ModelUsed,
    NotifyResult,
    NotifyTask,
    RunManifest,
    RunSummary,
    ShardManifest,
    shard_manifest_name,
)
from kubeloop.contracts.tasks import EXIT_OK, EXIT_PERMANENT, EXIT_TRANSIENT
from kubeloop.store.client import Store
from tests.component.batch.conftest import REPO, folder
from tests.component.serving.conftest import s3_env
from tests.infra.minio_server import MinioServer
from tests.infra.processes import free_port
from tests.receivers import SmtpServer, WebhookReceiver

# AUTH over plain SMTP is on purpose: the tests have no certificates.
pytestmark = [pytest.mark.minio, pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")]
USER, PASSWORD = "kubeloop", "s3cret-smtp"


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(USER, PASSWORD)
    yield server
    server.stop()


def run_task(store: Store, minio: MinioServer, run_folder: str, webhook_url: str | None) -> NotifyTask:
    used = ModelUsed(name="churn", version=3, sha256="a" * 64)
    manifest = ShardManifest(batch_prediction="team/nightly", run="nightly-score-1", shard=0, shards=2,
                             model=used, rows_in=10, rows_out=9, rejects=1)  # fmt: skip
    store.put_bytes(run_folder + shard_manifest_name(0), manifest.to_json().encode())
    summary = RunSummary(namespace="team", batch_prediction="nightly", run="nightly-score-1", phase="Failed",
                         model="churn", version=3, sha256="a" * 64, rows_in=10, rows_out=9, rejects=1,
                         output_uri=run_folder, manifest_uri=run_folder + "manifest.json", failed_shards=[1],
                         message="shard 1 failed: InputInvalid: b.csv lacks the column(s) contract",
                         )  # fmt: skip
    email = EmailTarget(to=["ops@example.com", "ds@example.com"], sender="kubeloop@example.com")
    return NotifyTask(summary=summary, shards=2, notify=True, webhook_url=webhook_url, email=email)


def notify(
    minio: MinioServer, work: Path, task: NotifyTask, smtp_port: int, **env: str
) -> tuple[int, NotifyResult]:
    termination = work / f"notify-{len(list(work.iterdir()))}.result"
    full = {
        "PATH": os.environ["PATH"], "PYTHONPATH": str(REPO / "operator"), **s3_env(minio),
        "KUBELOOP_TASK": task.to_json(), "KUBELOOP_TERMINATION_LOG": str(termination),
        "KUBELOOP_SMTP_HOST": "127.0.0.1", "KUBELOOP_SMTP_PORT": str(smtp_port),
        "KUBELOOP_SMTP_SECURITY": "none",
        "KUBELOOP_SMTP_USERNAME": USER, "KUBELOOP_SMTP_PASSWORD": PASSWORD, **env,
    }  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "kubeloop.batch", "notify"], env=full, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert termination.exists(), done.stderr[-3000:]
    return done.returncode, NotifyResult.model_validate_json(termination.read_text())


def test_manifest_written_then_webhook_and_email_delivered_once(
    minio: MinioServer, store: Store, webhook: WebhookReceiver, smtp: SmtpServer, tmp_path: Path
) -> None:
    run_folder = folder(minio, "run")
    task = run_task(store, minio, run_folder, webhook.url())
    webhook.statuses = [503]  # the first POST fails; the pod tries again
    code, result = notify(minio, tmp_path, task, smtp.port)
    assert code == EXIT_OK and result.ok and result.reason == "Sent", result
    assert (result.webhook, result.manifest) == ("HTTP 200", run_folder + "manifest.json")
    assert result.email is not None and result.email.startswith("sent to 2 recipient(s)")

    manifest = RunManifest.model_validate_json(store.get_bytes(run_folder + "manifest.json"))
    assert manifest.summary == task.summary
    assert [s.shard for s in manifest.shards] == [0] and manifest.missing_shards == [1]

    first, second = webhook.hooks("/hook")
    assert first.body == second.body == json.loads(task.summary.to_json())
    assert second.headers["Content-Type"] == "application/json"
    (mail,) = smtp.mails
    assert mail.login == USER  # the credentials from the Secret's keys were used
    assert (mail.sender, sorted(mail.recipients)) == (
        "kubeloop@example.com",
        ["ds@example.com", "ops@example.com"],
    )
    assert mail.message["Subject"] == "[kubeloop] team/nightly run nightly-score-1: failed"
    body = mail.message.get_content()
    for line in ("Rows scored:  9", f"Output:       {run_folder}", "Failed shards: 1", "lacks the column(s)"):
        assert line in body

    code, again = notify(minio, tmp_path, task, smtp.port)  # a retried pod: nothing is sent twice
    assert code == EXIT_OK and "(earlier attempt)" in again.message
    assert len(webhook.hooks("/hook")) == 2 and len(smtp.mails) == 1


def test_a_refusing_webhook_fails_for_good_and_says_why(
    minio: MinioServer, store: Store, webhook: WebhookReceiver, smtp: SmtpServer, tmp_path: Path
) -> None:
    webhook.fixed["/gone"] = 404
    task = run_task(store, minio, folder(minio, "run"), webhook.url("/gone"))
    code, result = notify(minio, tmp_path, task, smtp.port)
    assert code == EXIT_PERMANENT and not result.ok
    assert result.reason == "DeliveryFailed" and result.webhook == "HTTP 404 Not Found"
    assert len(webhook.hooks("/gone")) == 1  # a 404 is not worth another try
    assert len(smtp.mails) == 1  # the other channel still went out


def test_an_unreachable_smtp_server_is_retried_and_reported_as_transient(
    minio: MinioServer, store: Store, webhook: WebhookReceiver, tmp_path: Path
) -> None:
    task = run_task(store, minio, folder(minio, "run"), None)
    code, result = notify(minio, tmp_path, task, free_port())
    assert code == EXIT_TRANSIENT and result.reason == "DeliveryFailed"
    assert result.email is not None and "could not reach the SMTP server 127.0.0.1" in result.email


def test_wrong_smtp_credentials_are_a_permanent_failure(
    minio: MinioServer, store: Store, smtp: SmtpServer, tmp_path: Path
) -> None:
    task = run_task(store, minio, folder(minio, "run"), None)
    code, result = notify(minio, tmp_path, task, smtp.port, KUBELOOP_SMTP_PASSWORD="wrong")
    assert code == EXIT_PERMANENT and result.email == "SMTP login refused: 535"
    assert smtp.mails == []

"""Batch scoring for real: BatchPrediction -> Indexed Jobs (or a CronJob) on the real node -> parts and
manifests in MinIO -> a webhook endpoint and an SMTP server started here, which pods reach on the
stack's bridge address.

The model is trained by the project's trainer in this process's session and imported as ModelVersion
churn-v1, which the operator validates like any other version before a run may use it.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
from kubernetes import client

from kubeloop.contracts.batch import RunManifest
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_operator import events
from tests.cluster.training import create, get, prepare_namespace, start_operator, upload, wait_phase
from tests.component.serving.conftest import TrainedModel, churn_frame, train
from tests.infra.fixtures import Cluster
from tests.infra.minio_server import MinioServer
from tests.infra.processes import wait_until
from tests.infra.stack import Stack
from tests.receivers import SmtpServer, WebhookReceiver

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.timeout(600),
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),  # no certificates here
]
USER, PASSWORD = "batch-notifier", "smtp-pass-" + uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def operator(crds: Cluster, minio: MinioServer) -> Iterator[OperatorProcess]:
    running = start_operator(crds, minio, "operator-batch")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def model(minio: MinioServer, tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    algorithm = {"estimator": "RandomForestClassifier", "params": {"n_estimators": 20, "max_depth": 5}}
    return train(minio, tmp_path_factory.mktemp("batch-model"), "churn", churn_frame(), target="churned",
                 algorithm=algorithm)  # fmt: skip


@pytest.fixture(scope="module")
def webhook(stack: Stack) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(stack.host_ip)
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def smtp(stack: Stack) -> Iterator[SmtpServer]:
    server = SmtpServer(USER, PASSWORD, stack.host_ip)
    yield server
    server.stop()


@dataclass
class Env:
    """What every test here uses: the operator, the imported model and the two receivers."""

    operator: OperatorProcess
    model: TrainedModel
    webhook: WebhookReceiver
    smtp: SmtpServer


@pytest.fixture(scope="module")
def env(operator: OperatorProcess, model: TrainedModel, webhook: WebhookReceiver, smtp: SmtpServer) -> Env:
    return Env(operator, model, webhook, smtp)


@pytest.fixture
def ns(crds: Cluster, minio: MinioServer, env: Env, namespace: str) -> str:
    """A namespace as a platform team prepares it (store keys, SMTP relay, webhook URL as Secrets) with
    the model imported as churn-v1 and validated by the operator."""
    prepare_namespace(crds, minio, namespace)
    core = client.CoreV1Api(crds.api)
    relay = {"host": env.smtp.host, "port": str(env.smtp.port), "username": USER, "password": PASSWORD,
             "security": "none"}  # fmt: skip
    core.create_namespaced_secret(namespace, {"metadata": {"name": "smtp-relay"}, "stringData": relay})
    hook = {"url": env.webhook.url(f"/hooks/{namespace}")}
    core.create_namespaced_secret(namespace, {"metadata": {"name": "hooks"}, "stringData": hook})
    artifact = {"uri": env.model.model_uri, "sha256": env.model.sha256}
    create(crds, namespace, {
        "apiVersion": "kubeloop.io/v1alpha1", "kind": "ModelVersion", "metadata": {"name": "churn-v1"},
        "spec": {"model": "churn", "version": 1, "artifact": artifact},
    })  # fmt: skip
    version = wait_phase(crds, namespace, "ModelVersion", "churn-v1", {"Ready", "Failed"}, timeout=120)
    assert version["status"]["phase"] == "Ready", version["status"]
    return namespace


def customers(rows: int, seed: int, bad: int = 0) -> pd.DataFrame:
    frame = churn_frame(rows, seed).drop(columns=["churned"])
    frame.insert(0, "customer_id", [f"c{seed}-{i}" for i in range(rows)])
    frame["tenure"] = frame["tenure"].astype(object)
    frame.loc[: bad - 1, "tenure"] = "unknown"  # rejected: tenure must be an integer
    return frame


def put_csv(minio: MinioServer, key: str, frame: pd.DataFrame) -> None:
    upload(minio, key, frame.to_csv(index=False).encode())


def batch_prediction(name: str, ns: str, minio: MinioServer, **spec: Any) -> dict[str, Any]:
    body = {
        "model": "churn", "version": 1,
        "input": {"uri": f"s3://{minio.bucket}/batch/{ns}/{name}/in/"},
        "output": {"uri": f"s3://{minio.bucket}/batch/{ns}/{name}/out/", "keyColumns": ["customer_id"]},
        "shards": 2, "chunkRows": 200, "maxRejectFraction": 0.05, **spec,
    }  # fmt: skip
    return {"apiVersion": "kubeloop.io/v1alpha1", "kind": "BatchPrediction", "metadata": {"name": name},
            "spec": body}  # fmt: skip


def wait_for(crds: Cluster, ns: str, name: str, check: Callable[[dict[str, Any]], bool], *, what: str,
             timeout: float = 240) -> dict[str, Any]:  # fmt: skip
    seen: list[dict[str, Any]] = []

    def reached() -> bool:
        seen[:] = [get(crds, ns, "BatchPrediction", name)]
        return check(seen[0].get("status") or {})

    wait_until(reached, timeout, f"BatchPrediction {name}: {what}", interval=1)
    return seen[0]


def notified(status: dict[str, Any]) -> bool:
    return ((status.get("lastRun") or {}).get("notification") or {}).get("phase") in ("Sent", "Failed")


def condition(resource: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in resource["status"]["conditions"] if c["type"] == kind)


def read_manifest(minio: MinioServer, uri: str) -> RunManifest:
    key = uri.removeprefix(f"s3://{minio.bucket}/")
    return RunManifest.model_validate_json(minio.client().get_object(minio.bucket, key).read())


def metric(operator: OperatorProcess, name: str, **labels: str) -> float:
    total = 0.0
    for line in operator.metrics().splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_one_off_runs_its_shards_as_pods_writes_outputs_and_notifies_both_ways(
    crds: Cluster, minio: MinioServer, ns: str, env: Env
) -> None:
    operator, webhook, smtp = env.operator, env.webhook, env.smtp
    for day, seed in (("mon", 1), ("tue", 2), ("wed", 3)):
        put_csv(minio, f"batch/{ns}/nightly/in/{day}.csv", customers(300, seed, bad=2))
    notify = {"webhook": {"urlSecret": {"name": "hooks", "key": "url"}},
              "email": {"to": ["retention@example.com", "ds@example.com"], "from": "kubeloop@example.com",
                        "smtpSecret": "smtp-relay"}}  # fmt: skip
    create(crds, ns, batch_prediction("nightly", ns, minio, notify=notify))
    bp = wait_for(crds, ns, "nightly", notified, what="the run's notification")
    status, last = bp["status"], bp["status"]["lastRun"]
    assert status["phase"] == "Succeeded", status
    assert (last["rowsIn"], last["rowsOut"], last["rejects"], last["version"]) == (900, 894, 6, 1)
    assert last["notification"]["phase"] == "Sent", last["notification"]
    assert (
        condition(bp, "Succeeded")["reason"] == "RunSucceeded"
        and condition(bp, "Notified")["status"] == "True"
    )

    job = client.BatchV1Api(crds.api).read_namespaced_job("nightly-score", ns)
    assert (job.spec.completion_mode, job.spec.completions) == ("Indexed", 2)
    pods = (
        client.CoreV1Api(crds.api)
        .list_namespaced_pod(ns, label_selector="batch.kubernetes.io/job-name=nightly-score")
        .items
    )
    assert {p.metadata.annotations["batch.kubernetes.io/job-completion-index"] for p in pods} == {"0", "1"}

    manifest = read_manifest(minio, last["manifestUri"])
    assert [s.shard for s in manifest.shards] == [0, 1] and manifest.missing_shards == []
    assert sum(s.rows_out for s in manifest.shards) == 894 and manifest.summary.sha256 is not None
    parts = [part for s in manifest.shards for part in s.parts]
    frames = [pd.read_csv(io.BytesIO(minio.client().get_object(minio.bucket, p.uri.split("/", 3)[3]).read()))
              for p in parts]  # fmt: skip
    scored = pd.concat(frames)
    assert len(scored) == 894 and scored.customer_id.is_unique
    assert set(scored.prediction) <= {"yes", "no"} and scored.filter(like="probability_").shape[1] == 2
    assert sum(s.rejects for s in manifest.shards) == 6
    assert all(
        reason.startswith("tenure: expected a number") for s in manifest.shards for reason in s.reject_reasons
    )

    (hook,) = webhook.hooks(f"/hooks/{ns}")
    assert (hook.body["run"], hook.body["phase"], hook.body["rowsOut"]) == ("nightly-score", "Succeeded", 894)
    assert hook.body["outputUri"] == last["outputUri"]
    (mail,) = [m for m in smtp.mails if ns in m.message["Subject"]]
    assert mail.login == USER and sorted(mail.recipients) == ["ds@example.com", "retention@example.com"]
    assert f"Output:       {last['outputUri']}" in mail.message.get_content()

    reasons = [e.reason for e in events(crds, ns) if e.involved_object.name == "nightly"]
    assert {"Running", "Succeeded", "Notified"} <= set(reasons)
    labels = {"namespace": ns, "batch_prediction": "nightly"}
    assert metric(operator, "kubeloop_batch_runs_total", outcome="Succeeded", **labels) == 1
    assert metric(operator, "kubeloop_batch_rows_total", kind="scored", **labels) == 894
    assert metric(operator, "kubeloop_batch_rows_total", kind="rejected", **labels) == 6
    assert metric(operator, "kubeloop_batch_notifications_total", outcome="Sent", **labels) == 1


def test_scheduled_runs_come_from_a_cron_job_and_are_followed(
    crds: Cluster, minio: MinioServer, ns: str, env: Env
) -> None:
    webhook = env.webhook
    put_csv(minio, f"batch/{ns}/hourly/in/customers.csv", customers(400, 7))
    body = batch_prediction("hourly", ns, minio, schedule="* * * * *", shards=1,
                            notify={"webhook": {"url": webhook.url(f"/hooks/{ns}/hourly")}})  # fmt: skip
    create(crds, ns, body)
    cron = client.BatchV1Api(crds.api)
    wait_until(lambda: bool(cron.list_namespaced_cron_job(ns).items), 60, "the CronJob")
    (cron_job,) = cron.list_namespaced_cron_job(ns).items
    assert (cron_job.metadata.name, cron_job.spec.schedule) == ("hourly-score", "* * * * *")

    def a_run_notified(status: dict[str, Any]) -> bool:
        return any(
            (run.get("notification") or {}).get("phase") == "Sent" for run in status.get("history") or []
        )

    bp = wait_for(crds, ns, "hourly", a_run_notified, what="a scheduled run, notified", timeout=200)
    run = next(r for r in bp["status"]["history"] if (r.get("notification") or {}).get("phase") == "Sent")
    assert re.fullmatch(r"hourly-score-\d+", run["name"]) and run["phase"] == "Succeeded"
    assert (run["rowsOut"], run["version"]) == (400, 1)
    assert bp["status"]["phase"] in ("Scheduled", "Running") and bp["status"]["runs"] >= 1
    manifest = read_manifest(minio, run["manifestUri"])
    assert manifest.summary.run == run["name"] and manifest.shards[0].rows_out == 400
    assert run["name"] in {h.body["run"] for h in webhook.hooks(f"/hooks/{ns}/hourly")}

    crds.kubectl("patch", "bp", "hourly", "-n", ns, "--type=merge", "-p", '{"spec": {"suspend": true}}')
    wait_for(crds, ns, "hourly", lambda s: s.get("phase") == "Suspended", what="Suspended", timeout=60)
    assert cron.read_namespaced_cron_job("hourly-score", ns).spec.suspend is True


def test_a_failing_shard_fails_the_run_naming_the_shard_and_a_refused_notification_is_reported(
    crds: Cluster, minio: MinioServer, ns: str, env: Env
) -> None:
    webhook = env.webhook
    put_csv(minio, f"batch/{ns}/broken/in/big.csv", customers(500, 4))  # the larger file: shard 0
    put_csv(minio, f"batch/{ns}/broken/in/small.csv", customers(100, 5).drop(columns=["contract"]))
    webhook.fixed[f"/hooks/{ns}/down"] = 503
    notify = {"webhook": {"url": webhook.url(f"/hooks/{ns}/down")}}
    create(crds, ns, batch_prediction("broken", ns, minio, notify=notify))
    bp = wait_for(crds, ns, "broken", notified, what="the run's notification", timeout=300)
    status, last = bp["status"], bp["status"]["lastRun"]
    assert status["phase"] == "Failed" and last["phase"] == "Failed"
    assert last["failedShards"] == [1]
    assert last["message"].startswith("shard 1 failed: InputInvalid: ")
    assert (
        f"s3://{minio.bucket}/batch/{ns}/broken/in/small.csv lacks the column(s) contract" in last["message"]
    )
    assert condition(bp, "Succeeded")["reason"] == "RunFailed"
    # Written before notifying; shard 0 may have been stopped too when shard 1 failed the Job.
    assert 1 in read_manifest(minio, last["manifestUri"]).missing_shards

    notification = last["notification"]
    assert notification["phase"] == "Failed" and notification["attempts"] == 3, notification
    assert "HTTP 503" in notification["message"]
    assert len(webhook.hooks(f"/hooks/{ns}/down")) >= 6  # tried in each pod, in several pods
    assert condition(bp, "Notified")["reason"] == "DeliveryFailed"
    warnings = {
        e.reason for e in events(crds, ns) if e.type == "Warning" and e.involved_object.name == "broken"
    }
    assert warnings == {"Failed", "NotificationFailed"}

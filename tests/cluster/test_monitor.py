"""Monitoring for real: ModelDeployments serve on the real node and their model servers write request
logs and feedback to MinIO; ModelMonitors run the monitor image as CronJob (and run-now) Jobs; the
operator turns each run into status, Events and gauges, and retrains within its limits.

The tests share one namespace and run in file order: traffic like the training data keeps a
monitor Healthy (one run scheduled by the CronJob itself); shifted traffic drifts on consecutive
runs and starts exactly one TrainingRun; the cooldown holds back a second; wrong labels degrade.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from kubeloop.planning.modelmonitor_children import run_now_job_name
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.serving import deployment, import_version, url, wait_status
from tests.cluster.training import (
    create,
    get,
    operator_env,
    prepare_namespace,
    start_operator,
    training_run,
    upload_churn,
    wait_phase,
)
from tests.component.monitor.conftest import TARGET, instances
from tests.component.serving.conftest import TrainedModel, train
from tests.datasets import churn_frame
from tests.infra.fixtures import Cluster
from tests.infra.minio_server import MinioServer
from tests.infra.processes import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "kubeloop.io", "v1alpha1"
BOOSTED = {"estimator": "HistGradientBoostingClassifier", "params": {"max_iter": 40}}
ROWS = 600


class World:
    """The namespace, the operator, the model, and what each deployment was sent."""

    def __init__(
        self, cluster: Cluster, minio: MinioServer, namespace: str, operator: OperatorProcess
    ) -> None:
        self.cluster, self.minio, self.namespace, self.operator = cluster, minio, namespace, operator
        self.model: TrainedModel | None = None
        self.sent: dict[str, list[tuple[str, int]]] = {}  # deployment -> (request id, row) per row sent
        self.frames: dict[str, pd.DataFrame] = {}

    def monitor(self, name: str) -> dict[str, Any]:
        return get(self.cluster, self.namespace, "ModelMonitor", name)

    def retrains(self, monitor: str) -> list[dict[str, Any]]:
        found = client.CustomObjectsApi(self.cluster.api).list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "trainingruns", label_selector=f"kubeloop.io/monitor={monitor}"
        )
        return list(found["items"])

    def events(self, name: str) -> list[str]:
        found = client.CoreV1Api(self.cluster.api).list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=ModelMonitor"
        )
        return [e.reason for e in found.items]

    def gauge(self, metric: str, **labels: str) -> float | None:
        for family in text_string_to_metric_families(self.operator.metrics()):
            for sample in family.samples:
                if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return None


@pytest.fixture(scope="module")
def world(crds: Cluster, minio: MinioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    namespace = "monitoring-life"
    restricted = {"pod-security.kubernetes.io/enforce": "restricted"}  # monitor pods must be admitted too
    client.CoreV1Api(crds.api).create_namespace({"metadata": {"name": namespace, "labels": restricted}})
    prepare_namespace(crds, minio, namespace)
    state = World(crds, minio, namespace, start_operator(crds, minio, "operator-monitoring"))
    work = tmp_path_factory.mktemp("monitor-models")
    state.model = train(minio, work, "churn", churn_frame(3000, seed=7), target=TARGET, algorithm=BOOSTED)
    import_version(crds, namespace, state.model, 1)
    for name in ("steady", "shifted"):
        create(crds, namespace, deployment(name, "churn", 1))
    for name in ("steady", "shifted"):
        wait_status(crds, namespace, name, lambda s: (s.get("stable") or {}).get("ready") == 1, timeout=300)
    yield state
    state.operator.stop()
    client.CoreV1Api(crds.api).delete_namespace(namespace)


def send_traffic(world: World, mdep: str, frame: pd.DataFrame, batch: int = 30) -> None:
    """Score `frame` through the deployment's router, then wait until its servers logged every row."""
    base, rows, sent = url(world.cluster, world.namespace, mdep), instances(frame), []
    with requests.Session() as http:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            answer = http.post(f"{base}/v1/models/churn:predict", json={"instances": chunk}, timeout=20)
            assert answer.status_code == 200, answer.text
            sent.extend((answer.json()["requestId"], row) for row in range(len(chunk)))
    world.sent[mdep], world.frames[mdep] = sent, frame
    wait_until(
        lambda: logged_rows(world, mdep) == len(rows), timeout=90, what=f"{mdep}'s request logs", interval=2
    )


def logged_rows(world: World, mdep: str) -> int:
    store, bucket = world.minio.client(), world.minio.bucket
    total = 0
    for item in store.list_objects(bucket, prefix=f"logs/{world.namespace}/{mdep}/v1/", recursive=True):
        body = store.get_object(bucket, item.object_name).read()
        total += sum(json.loads(line)["rows"] for line in gzip.decompress(body).splitlines() if line)
    return total


def monitor(name: str, mdep: str, *, schedule: str = "1h", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelMonitor",
        "metadata": {"name": name},
        "spec": {
            "deployment": mdep,
            "schedule": schedule,
            "window": "1h",
            "minSamples": 300,
            "drift": {"method": "psi", "threshold": 0.2},
            **spec,
        },
    }


def retrain_spec(world: World, **limits: Any) -> dict[str, Any]:
    original, _ = upload_churn(world.minio, world.namespace, name="v1.csv", rows=1500)
    fresh, _ = upload_churn(world.minio, world.namespace, name="latest.csv", rows=1500, seed=8, shift=1.0)
    template = training_run("unused", original, search=False)["spec"]
    return {"enabled": True, "trainingRun": {"template": template, "datasetUri": fresh}, **limits}


def run_now(world: World, name: str, token: str, *, timeout: float = 180) -> dict[str, Any]:
    """Ask for a run through the annotation and wait until the operator has read its result.

    Runs are read in creation order, and a scheduled run created after this one may be read in the
    same reconcile, so the status is the one that has read past the run-now Job (lastRun at or
    after it), not necessarily one whose lastRun is that Job."""
    client.CustomObjectsApi(world.cluster.api).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        world.namespace,
        "modelmonitors",
        name,
        {"metadata": {"annotations": {"kubeloop.io/run-now": token}}},
    )
    job_name = run_now_job_name(world.monitor(name), token)
    jobs = client.BatchV1Api(world.cluster.api)
    job = wait_until_found(lambda: jobs.read_namespaced_job(job_name, world.namespace), timeout=60)
    run_key = (job.metadata.creation_timestamp, job_name)
    seen: dict[str, Any] = {}

    def read() -> bool:
        seen.clear()
        seen.update(world.monitor(name).get("status") or {})
        last = seen.get("lastRun") or {}
        return bool(last.get("job")) and (parse_time(last["created"]), last["job"]) >= run_key

    try:
        wait_until(read, timeout=timeout, what=f"the run {token} of {name}", interval=1)
    except TimeoutError as error:
        raise AssertionError(f"{error}; last status: {seen}") from None
    return dict(seen)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def test_traffic_like_training_keeps_the_monitor_healthy_and_triggers_nothing(world: World) -> None:
    send_traffic(world, "steady", churn_frame(ROWS, seed=11))
    body = monitor("steady-drift", "steady", schedule="1m", retrain={**retrain_spec(world), "consecutive": 1})
    create(world.cluster, world.namespace, body)
    cron = wait_until_found(
        lambda: client.BatchV1Api(world.cluster.api).read_namespaced_cron_job(
            "steady-drift-monitor", world.namespace
        )
    )
    assert cron.spec.schedule == "* * * * *" and cron.spec.concurrency_policy == "Forbid"
    (main,) = cron.spec.job_template.spec.template.spec.containers
    assert main.image.startswith("kubeloop/monitor:")
    task = json.loads(next(e.value for e in main.env if e.name == "KUBELOOP_TASK"))
    assert (task["deployment"], task["version"], task["windowSeconds"]) == ("steady", 1, 3600)

    status = run_now(world, "steady-drift", "1")
    assert status["phase"] == "Healthy", status
    assert status["lastRun"]["samples"] == ROWS and status["driftedFeatures"] == []
    assert status["reportUri"].startswith(
        f"s3://{world.minio.bucket}/monitors/{world.namespace}/steady-drift/"
    )
    assert (
        condition(status, "Drifting")["status"] == "False"
        and condition(status, "Healthy")["status"] == "True"
    )

    # The CronJob itself starts the next run within a minute; its verdict is the same.
    def scheduled() -> bool:
        last = (world.monitor("steady-drift").get("status") or {}).get("lastRun") or {}
        return str(last.get("job", "")).startswith("steady-drift-monitor-")

    wait_until(scheduled, timeout=180, what="a run started by the CronJob", interval=2)
    status = world.monitor("steady-drift")["status"]
    assert status["phase"] == "Healthy" and status["consecutive"] == 0
    assert world.retrains("steady-drift") == [] and status.get("retrainCount", 0) == 0
    assert (
        world.gauge("kubeloop_monitor_drift_detected", namespace=world.namespace, modelmonitor="steady-drift")
        == 0.0
    )
    assert "RetrainTriggered" not in world.events("steady-drift")


def wait_until_found(read: Any, timeout: float = 60) -> Any:
    found: list[Any] = []
    wait_until(lambda: bool(found.append(read()) or found), timeout=timeout, what="the object", interval=1)
    return found[-1]


def test_shifted_features_drift_on_consecutive_runs_and_start_exactly_one_training_run(world: World) -> None:
    send_traffic(world, "shifted", churn_frame(ROWS, seed=12, shift=1.0))
    spec = retrain_spec(world, consecutive=2, cooldown="1h", maxPerDay=3)
    create(world.cluster, world.namespace, monitor("shifted-drift", "shifted", retrain=spec))
    first = run_now(world, "shifted-drift", "1")
    assert first["phase"] == "Drifting" and first["consecutive"] == 1, first
    assert {"tenure_months", "monthly_charges"} <= set(first["driftedFeatures"])
    assert condition(first, "Retraining")["reason"] == "Confirming" and world.retrains("shifted-drift") == []

    second = run_now(world, "shifted-drift", "2")
    assert second["phase"] == "Drifting" and second["consecutive"] == 2
    (run,) = world.retrains("shifted-drift")
    assert (
        run["metadata"]["name"] == "shifted-drift-retrain-1" == second["lastRetrain"]["trainingRun"]["name"]
    )
    assert run["metadata"]["labels"]["kubeloop.io/retrain-reason"] == "DriftDetected"
    assert run["metadata"]["annotations"]["kubeloop.io/report"] == second["reportUri"]
    assert run["spec"]["dataset"]["uri"].endswith("/latest.csv")  # the dataset override
    assert second["retrainCount"] == 1 and "RetrainTriggered" in world.events("shifted-drift")
    assert (
        world.gauge(
            "kubeloop_monitor_drift_detected", namespace=world.namespace, modelmonitor="shifted-drift"
        )
        == 1.0
    )
    top = second["features"][0]
    assert world.gauge(
        "kubeloop_monitor_drift_score",
        namespace=world.namespace,
        modelmonitor="shifted-drift",
        feature=top["name"],
    ) == pytest.approx(top["score"])

    text = kubeloop_cli(world, "report", "shifted-drift")
    assert "ModelMonitor monitoring-life/shifted-drift on ModelDeployment shifted: Drifting" in text
    assert "shifted-drift-retrain-1" in text
    link = next(line.split(None, 1)[1] for line in text.splitlines() if line.startswith("Open:"))
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and "Drifting" in page.text and "<svg" in page.text


def test_the_cooldown_holds_back_a_second_training_run(world: World) -> None:
    finished = wait_phase(
        world.cluster,
        world.namespace,
        "TrainingRun",
        "shifted-drift-retrain-1",
        {"Succeeded", "Failed"},
        timeout=420,
    )
    assert finished["status"]["phase"] == "Succeeded", finished["status"]
    third = run_now(world, "shifted-drift", "3")
    assert third["phase"] == "Drifting" and third["consecutive"] == 3
    held = condition(third, "Retraining")
    assert (held["status"], held["reason"]) == ("False", "Cooldown"), held
    assert len(world.retrains("shifted-drift")) == 1 and third["retrainCount"] == 1
    assert "RetrainHeldBack" in world.events("shifted-drift")


def test_wrong_labels_make_the_monitor_degraded(world: World) -> None:
    truth = ["true" if v else "false" for v in world.frames["steady"][TARGET]]
    wrong = ["false" if v == "true" else "true" for v in truth]
    base = url(world.cluster, world.namespace, "steady")
    items = [
        {"requestId": r, "row": row, "actual": a}
        for (r, row), a in zip(world.sent["steady"], wrong, strict=True)
    ]
    for start in range(0, len(items), 500):
        answer = requests.post(f"{base}/v1/feedback", json=items[start : start + 500], timeout=20)
        assert answer.status_code == 200, answer.text
    performance = {"metric": "accuracy", "maxDrop": 0.1, "minLabeled": 100}
    create(world.cluster, world.namespace, monitor("steady-perf", "steady", performance=performance))
    status = run_now(world, "steady-perf", "1")
    assert status["phase"] == "Degraded", status
    assert status["performance"]["labeledSamples"] == ROWS and status["performance"]["degraded"] is True
    assert status["performance"]["value"] < 0.5 < status["performance"]["baseline"]
    assert condition(status, "Degraded")["status"] == "True" and status["driftedFeatures"] == []
    assert "Degraded" in world.events("steady-perf")


def kubeloop_cli(world: World, *args: str) -> str:
    """The real CLI as a person runs it, with the store access the workloads have."""
    env = {
        **os.environ,
        "KUBECONFIG": str(world.cluster.kubeconfig),
        "PYTHONPATH": str(REPO / "operator"),
        **operator_env(world.minio),
    }
    done = subprocess.run(
        [sys.executable, "-m", "kubeloop.cli", "-n", world.namespace, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout

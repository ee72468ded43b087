"""Serving for real: ModelDeployment -> model servers and a router on the real node -> rollouts
decided by the routers' live comparison of old and new, with the registry stages kept in step.

The tests share one namespace and run in file order, as one deployment's life: v1 serves; a bad
v3 is rolled back by a canary; a good v2 goes through shadow, a canary step interrupted by an
operator crash, and an approval; an abort; the deletion.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from kubernetes import client

from tests.cluster.operator_process import OperatorProcess
from tests.cluster.serving import (
    Traffic,
    deployment,
    import_version,
    patch_spec,
    rows,
    url,
    wait_status,
)
from tests.cluster.training import create, get, prepare_namespace, start_operator, versions
from tests.component.serving.conftest import TrainedModel, churn_frame, train
from tests.infra.fixtures import Cluster
from tests.infra.minio_server import MinioServer
from tests.infra.processes import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[2]
FOREST = {"estimator": "RandomForestClassifier", "params": {"n_estimators": 30, "max_depth": 6}}
# Generous latency gate: on a busy 2-core machine p99 jitters; the other gates decide these tests.
GATES = {"minRequests": 30, "maxErrorRate": 0.02, "maxLatencyRatio": 20, "minAgreement": 0.8}


class Life:
    """What the tests pass along: the namespace, the operator, the models and the traffic seen."""

    def __init__(
        self, cluster: Cluster, minio: MinioServer, namespace: str, operator: OperatorProcess
    ) -> None:
        self.cluster, self.minio, self.namespace, self.operator = cluster, minio, namespace, operator
        self.models: dict[int, TrainedModel] = {}
        self.traffic: Traffic | None = None

    def status(self) -> dict[str, Any]:
        return dict(get(self.cluster, self.namespace, "ModelDeployment", "churn").get("status") or {})

    def stages(self) -> dict[int, list[str]]:
        found = versions(self.cluster, self.namespace)
        return {
            v["spec"]["version"]: [h["stage"] for h in v["status"].get("stageHistory") or []] for v in found
        }

    def router(self) -> str:
        return url(self.cluster, self.namespace, "churn")


@pytest.fixture(scope="module")
def life(crds: Cluster, minio: MinioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Life]:
    namespace = "serving-life"
    restricted = {"pod-security.kubernetes.io/enforce": "restricted"}  # servers and routers must be admitted
    client.CoreV1Api(crds.api).create_namespace({"metadata": {"name": namespace, "labels": restricted}})
    prepare_namespace(crds, minio, namespace)
    operator = start_operator(crds, minio, "operator-serving")
    state = Life(crds, minio, namespace, operator)
    work = tmp_path_factory.mktemp("serving-models")
    shuffled = churn_frame(seed=4)
    shuffled["churned"] = np.random.default_rng(0).permutation(shuffled["churned"].to_numpy())
    frames = {1: churn_frame(seed=3), 2: churn_frame(seed=4), 3: shuffled}  # v3 learned noise
    for number, frame in frames.items():
        state.models[number] = train(minio, work, "churn", frame, target="churned", algorithm=FOREST)
        import_version(crds, namespace, state.models[number], number)
    yield state
    if state.traffic is not None:
        state.traffic.stop()
    state.operator.stop()
    client.CoreV1Api(crds.api).delete_namespace(namespace)


def test_a_validated_version_becomes_available_and_the_router_answers_like_the_server(life: Life) -> None:
    create(life.cluster, life.namespace, deployment("churn", "churn", 1, rollout={"strategy": "Canary"}))
    status = wait_status(life.cluster, life.namespace, "churn", lambda s: s.get("phase") == "Available")
    assert status["stable"] == {"version": 1, "ready": 1}
    assert status["endpoint"] == f"http://churn.{life.namespace}.svc"
    service = client.CoreV1Api(life.cluster.api).read_namespaced_service("churn", life.namespace)
    assert (
        service.spec.ports[0].port == 80 and service.spec.selector["app.kubernetes.io/component"] == "router"
    )
    body = {"instances": rows(churn_frame(seed=9), 0, 25)}
    through = requests.post(f"{life.router()}/v1/models/churn:predict", json=body, timeout=10)
    server = url(life.cluster, life.namespace, "churn-v1")
    direct = requests.post(f"{server}/v1/models/churn:predict", json=body, timeout=10)
    assert through.status_code == direct.status_code == 200, through.text
    assert through.json()["predictions"] == direct.json()["predictions"]
    assert through.headers["x-kubeloop-version"] == "1"
    assert life.stages()[1] == ["Candidate", "Production"]


def test_a_bad_candidate_is_rolled_back_at_the_first_analysis_and_rejected(life: Life) -> None:
    life.traffic = Traffic(life.router(), "churn", churn_frame(seed=11)).start()
    steps = [{"weight": 50, "duration": "10m"}, {"weight": 100, "duration": "10m"}]
    patch_spec(life.cluster, life.namespace, "churn", {"version": 3, "rollout": {
        "strategy": "Canary", "steps": steps, "analysis": GATES}})  # fmt: skip
    status = wait_status(life.cluster, life.namespace, "churn", lambda s: s.get("phase") == "RolledBack")
    record = status["history"][-1]
    assert (record["version"], record["outcome"]) == (3, "RolledBack")
    assert record["reason"].startswith("AgreementTooLow"), record
    assert status["comparison"]["agreement"] < GATES["minAgreement"]
    assert status["stable"]["version"] == 1 and "candidate" not in status
    assert life.stages()[3] == ["Candidate", "Staging", "Rejected"]
    assert life.traffic.failures == [], life.traffic.failures[:5]  # the stable path never failed


def test_a_good_candidate_is_shadowed_canaried_survives_an_operator_crash_and_waits_for_approval(
    life: Life,
) -> None:
    assert life.traffic is not None
    life.traffic.stop()
    rollout = {"strategy": "ShadowThenCanary", "shadow": {"percent": 100, "duration": "40s"},
               "steps": [{"weight": 50, "duration": "60s"}], "analysis": GATES,
               "requireApproval": True}  # fmt: skip
    patch_spec(life.cluster, life.namespace, "churn", {"version": 2, "rollout": rollout})
    wait_status(life.cluster, life.namespace, "churn", lambda s: s.get("phase") == "Shadowing")
    # Exactly 60 requests while shadowing: each one answered by v1, copied to v2 and compared.
    shadow = Traffic(life.router(), "churn", churn_frame(seed=12))
    shadow.send(60)
    assert shadow.failures == [] and shadow.versions == {"1": 60}
    status = wait_status(
        life.cluster,
        life.namespace,
        "churn",
        shadow_compared(60),
        what="the shadow comparison of 60 requests in status",
    )
    assert status["comparison"]["requests"]["candidate"] == 60 and status["comparison"]["agreement"] >= 0.8
    life.traffic = Traffic(life.router(), "churn", churn_frame(seed=13)).start()
    status = wait_status(life.cluster, life.namespace, "churn", lambda s: s.get("phase") == "Canary")
    started = status["candidate"]["stepStartTime"]
    life.operator.crash()  # mid-step: the restarted operator must carry on from status
    life.operator = start_operator(life.cluster, life.minio, "operator-serving")
    status = wait_status(life.cluster, life.namespace, "churn", compared_in_canary(5))
    assert status["candidate"]["stepStartTime"] == started and status["candidate"]["weight"] == 50
    awaiting = wait_status(life.cluster, life.namespace, "churn", phase_is("AwaitingApproval"), timeout=300)
    assert awaiting["stable"]["version"] == 1 and {"1", "2"} <= set(life.traffic.versions)
    kubeloop(life, "approve", "churn")
    status = wait_status(life.cluster, life.namespace, "churn", lambda s: s.get("phase") == "Available")
    record = status["history"][-1]
    assert (record["version"], record["outcome"], record["reason"]) == (2, "Promoted", "Approved")
    assert record["approvedBy"]
    assert status["stable"]["version"] == 2
    stages = life.stages()
    assert stages[1] == ["Candidate", "Production", "Archived"] and stages[2] == [
        "Candidate",
        "Staging",
        "Production",
    ]
    assert (
        sum(1 for v in versions(life.cluster, life.namespace) if v["status"].get("stage") == "Production")
        == 1
    )
    summary = kubeloop(life, "status", "churn")
    assert "stable     version 2" in summary and "v2 Promoted (Approved)" in summary
    life.traffic.stop()
    assert life.traffic.failures == [], life.traffic.failures[:5]


def test_abort_rolls_back_at_once(life: Life) -> None:
    steps = [{"weight": 20, "duration": "10m"}]
    patch_spec(life.cluster, life.namespace, "churn", {"version": 1, "rollout": {
        "strategy": "Canary", "steps": steps, "analysis": GATES, "requireApproval": False}})  # fmt: skip
    wait_status(life.cluster, life.namespace, "churn", lambda s: s.get("phase") == "Canary")
    kubeloop(life, "abort", "churn")
    status = wait_status(life.cluster, life.namespace, "churn", lambda s: s.get("phase") == "RolledBack")
    assert (status["history"][-1]["outcome"], status["stable"]["version"]) == ("Aborted", 2)
    assert life.stages()[1][-2:] == ["Staging", "Candidate"]


def test_deleting_the_deployment_removes_its_children_and_keeps_the_versions(life: Life) -> None:
    apps = client.AppsV1Api(life.cluster.api)
    selector = "kubeloop.io/deployment=churn"
    assert apps.list_namespaced_deployment(life.namespace, label_selector=selector).items
    client.CustomObjectsApi(life.cluster.api).delete_namespaced_custom_object(
        "kubeloop.io", "v1alpha1", life.namespace, "modeldeployments", "churn"
    )

    def gone() -> bool:
        left = apps.list_namespaced_deployment(life.namespace, label_selector=selector).items
        services = client.CoreV1Api(life.cluster.api).list_namespaced_service(life.namespace).items
        return not left and not services

    wait_until(gone, timeout=120, what="the deployment's children to be garbage-collected")
    assert sorted(v["spec"]["version"] for v in versions(life.cluster, life.namespace)) == [1, 2, 3]


def phase_is(phase: str) -> Any:
    return lambda s: s.get("phase") == phase


def shadow_compared(count: int) -> Any:
    return lambda s: (s.get("comparison") or {}).get("compared") == count or s.get("phase") != "Shadowing"


def compared_in_canary(count: int) -> Any:
    return lambda s: s.get("phase") != "Canary" or (s.get("comparison") or {}).get("compared", 0) > count


def kubeloop(life: Life, *args: str) -> str:
    """The real CLI as a person runs it, against this cluster."""
    env = {**os.environ, "KUBECONFIG": str(life.cluster.kubeconfig), "PYTHONPATH": str(REPO / "operator")}
    done = subprocess.run([sys.executable, "-m", "kubeloop.cli", "-n", life.namespace, *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout

"""Training for real: TrainingRun -> Jobs on the real node -> artifacts in MinIO -> a validated version."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_operator import EXAMPLES
from tests.cluster.training import (
    condition,
    create,
    get,
    jobs,
    prepare_namespace,
    start_operator,
    training_run,
    upload,
    upload_churn,
    versions,
    wait_phase,
)
from tests.datasets import churn_csv, churn_frame
from tests.infra.fixtures import Cluster
from tests.infra.minio_server import MinioServer
from tests.infra.processes import wait_until

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def operator(crds: Cluster, minio: MinioServer) -> Iterator[OperatorProcess]:
    running = start_operator(crds, minio)
    yield running
    running.stop()


@pytest.fixture
def ns(operator: OperatorProcess, crds: Cluster, minio: MinioServer, namespace: str) -> str:
    prepare_namespace(crds, minio, namespace)
    return namespace


def test_search_then_training_registers_a_validated_version(
    crds: Cluster, minio: MinioServer, ns: str
) -> None:
    uri, dataset_sha = upload_churn(minio, ns)
    create(crds, ns, training_run("churn-search", uri))
    run = wait_phase(crds, ns, "TrainingRun", "churn-search", {"Succeeded", "Failed"})
    assert run["status"]["phase"] == "Succeeded", run["status"]
    status = run["status"]
    assert status["trials"]["completed"] == 6 and status["trials"]["total"] == 6
    assert 0.5 < status["trials"]["best"]["score"] <= 1.0
    assert status["dataset"] == {"sha256": dataset_sha, "rows": 1500, "columns": 9}
    assert condition(run, "DataValid")["status"] == "True"
    assert {"roc_auc", "accuracy", "f1", "log_loss"} <= set(status["metrics"])

    search_job = client.BatchV1Api(crds.api).read_namespaced_job("churn-search-search", ns)
    assert (search_job.spec.completion_mode, search_job.spec.completions, search_job.spec.parallelism) == (
        "Indexed", 6, 2)  # fmt: skip
    pods = (
        client.CoreV1Api(crds.api)
        .list_namespaced_pod(ns, label_selector="batch.kubernetes.io/job-name=churn-search-search")
        .items
    )
    indexes = {p.metadata.annotations["batch.kubernetes.io/job-completion-index"] for p in pods}
    assert indexes == {str(i) for i in range(6)}  # one trial per index, each in its own pod

    assert status["modelVersion"] == "churn-v1"
    version = wait_phase(crds, ns, "ModelVersion", "churn-v1", {"Ready", "Failed"}, timeout=120)
    assert version["status"]["phase"] == "Ready", version["status"]
    assert condition(version, "Validated")["status"] == "True"
    assert version["status"]["stage"] == "Candidate"
    assert [h["stage"] for h in version["status"]["stageHistory"]] == ["Candidate"]
    spec = version["spec"]
    assert spec["lineage"]["dataset"] == {"uri": uri, "sha256": dataset_sha}
    assert spec["lineage"]["trainingRun"]["name"] == "churn-search"
    key = spec["artifact"]["uri"].removeprefix(f"s3://{minio.bucket}/")
    stored = minio.client().get_object(minio.bucket, key).read()
    assert hashlib.sha256(stored).hexdigest() == spec["artifact"]["sha256"] == status["artifact"]["sha256"]
    assert spec["params"]["learning_rate"] == status["trials"]["best"]["params"]["learning_rate"]


def test_invalid_data_fails_with_the_violations_in_status(crds: Cluster, minio: MinioServer, ns: str) -> None:
    frame = churn_frame(1500)
    frame.loc[:9, "contract"] = "lifetime"  # not an allowed category
    frame.loc[:4, "tenure_months"] = 500  # out of range
    uri, _ = upload(minio, f"datasets/{ns}/bad.csv", frame.to_csv(index=False).encode())
    create(crds, ns, training_run("churn-bad", uri, search=False))
    run = wait_phase(crds, ns, "TrainingRun", "churn-bad", {"Succeeded", "Failed"})
    assert run["status"]["phase"] == "Failed"
    assert condition(run, "DataValid")["status"] == "False"
    found = {(v["rule"], v.get("column")): v["count"] for v in run["status"]["violations"]}
    assert found[("allowedCategories", "contract")] == 10
    assert found[("range", "tenure_months")] == 5
    assert versions(crds, ns) == []

    # Bad data is not retried: the pod failure policy failed the Job after one pod (the Job controller
    # may count that pod a moment after the run has already read its result).
    def job_failed_once() -> bool:
        (job,) = [j for j in jobs(crds, ns) if j.metadata.name == "churn-bad-train"]
        return job.status.failed == 1 and any(c.type == "Failed" for c in job.status.conditions or [])

    wait_until(job_failed_once, timeout=60, what="the train Job to be failed after one pod")


def test_a_trainer_over_its_memory_limit_fails_the_run_as_oom_killed(
    crds: Cluster, minio: MinioServer, ns: str
) -> None:
    """The kubelet kills the trainer at its cgroup's limit; the run says so, with the pod and the limit."""
    uri, _ = upload_churn(minio, ns)
    run = training_run("churn-oom", uri, search=False)
    run["spec"]["resources"] = {"requests": {"memory": "48Mi"}, "limits": {"memory": "48Mi"}}
    create(crds, ns, run)
    done = wait_phase(crds, ns, "TrainingRun", "churn-oom", {"Succeeded", "Failed"}, timeout=300)
    assert done["status"]["phase"] == "Failed"
    succeeded = condition(done, "Succeeded")
    assert succeeded["reason"] == "OOMKilled", succeeded
    assert "(memory limit 48Mi)" in succeeded["message"]
    assert versions(crds, ns) == []


def test_two_runs_finishing_together_get_consecutive_versions(
    crds: Cluster, minio: MinioServer, ns: str
) -> None:
    uri, _ = upload_churn(minio, ns)
    for name in ("churn-a", "churn-b"):
        create(crds, ns, training_run(name, uri, search=False))
    runs = [
        wait_phase(crds, ns, "TrainingRun", name, {"Succeeded", "Failed"}) for name in ("churn-a", "churn-b")
    ]
    assert [r["status"]["phase"] for r in runs] == ["Succeeded", "Succeeded"]
    assert sorted(r["status"]["modelVersion"] for r in runs) == ["churn-v1", "churn-v2"]
    made_by = {
        v["metadata"]["name"]: v["metadata"]["labels"]["kubeloop.io/training-run"] for v in versions(crds, ns)
    }
    assert made_by == {r["status"]["modelVersion"]: r["metadata"]["name"] for r in runs}


def test_tampered_artifact_is_rejected(crds: Cluster, minio: MinioServer, ns: str) -> None:
    uri, _ = upload_churn(minio, ns)
    create(crds, ns, training_run("churn-src", uri, search=False))
    wait_phase(crds, ns, "TrainingRun", "churn-src", {"Succeeded"})
    original = get(crds, ns, "ModelVersion", "churn-v1")["spec"]
    folder = original["artifact"]["uri"].removeprefix(f"s3://{minio.bucket}/").rsplit("/", 1)[0]
    store = minio.client()
    model = bytearray(store.get_object(minio.bucket, f"{folder}/model.onnx").read())
    model[-10] ^= 0xFF  # one flipped byte
    tampered_uri, _ = upload(minio, f"imports/{ns}/tampered/model.onnx", bytes(model))
    upload(
        minio,
        f"imports/{ns}/tampered/model.json",
        store.get_object(minio.bucket, f"{folder}/model.json").read(),
    )
    spec = {**original, "version": 9, "artifact": {**original["artifact"], "uri": tampered_uri}}
    imported = {
        "apiVersion": "kubeloop.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "churn-v9"},
    }
    imported["spec"] = spec
    create(crds, ns, imported)
    version = wait_phase(crds, ns, "ModelVersion", "churn-v9", {"Ready", "Failed"}, timeout=120)
    assert version["status"]["phase"] == "Failed"
    validated = condition(version, "Validated")
    assert (validated["status"], validated["reason"]) == ("False", "DigestMismatch")
    assert version["status"]["stage"] == "Rejected"
    assert version["status"]["stageHistory"][-1]["reason"] == "validation failed: DigestMismatch"


@pytest.mark.timeout(1200)  # 24 trials of 5-fold CV on two cores: minutes, not seconds
def test_the_example_trainingrun_as_written_produces_churn_v1(
    crds: Cluster, minio: MinioServer, ns: str
) -> None:
    """manifests/examples/trainingrun-churn.yaml unchanged: 24 random trials, 5-fold CV, 6000 rows."""
    _, dataset_sha = upload(minio, "datasets/churn/v1.csv", churn_csv(6000))  # where the example reads it
    crds.kubectl("apply", "-n", ns, "-f", str(EXAMPLES / "trainingrun-churn.yaml"))
    run = wait_phase(crds, ns, "TrainingRun", "churn-2024-06-01", {"Succeeded", "Failed"}, timeout=900)
    assert run["status"]["phase"] == "Succeeded", run["status"]
    assert run["status"]["trials"]["completed"] == 24 and run["status"]["dataset"]["sha256"] == dataset_sha
    version = wait_phase(crds, ns, "ModelVersion", "churn-v1", {"Ready", "Failed"}, timeout=120)
    assert (version["status"]["phase"], version["status"]["stage"]) == ("Ready", "Candidate")
    key = version["spec"]["artifact"]["uri"].removeprefix(f"s3://{minio.bucket}/")
    assert hashlib.sha256(minio.client().get_object(minio.bucket, key).read()).hexdigest() == (
        version["spec"]["artifact"]["sha256"])  # fmt: skip

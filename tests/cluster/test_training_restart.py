"""An operator killed in the middle of a run leaves exactly one Job set and one ModelVersion.

In its own module: no other operator process may run while this one does.
"""

from __future__ import annotations

import json

import pytest

from tests.cluster.training import (
    get,
    jobs,
    prepare_namespace,
    start_operator,
    training_run,
    upload_churn,
    versions,
    wait_phase,
)
from tests.infra.fixtures import Cluster
from tests.infra.minio_server import MinioServer
from tests.infra.processes import wait_until

pytestmark = pytest.mark.cluster


def test_operator_killed_mid_run_resumes_without_duplicates(
    crds: Cluster, minio: MinioServer, namespace: str
) -> None:
    prepare_namespace(crds, minio, namespace)
    uri, _ = upload_churn(minio, namespace)
    first = start_operator(crds, minio, "operator-killed")
    try:
        crds.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(training_run("churn", uri)))
        wait_until(
            lambda: any(j.metadata.name == "churn-search" for j in jobs(crds, namespace)),
            60,
            "the search Job",
        )
    finally:
        first.crash()
    second = start_operator(crds, minio, "operator-after-crash")
    try:
        run = wait_phase(crds, namespace, "TrainingRun", "churn", {"Succeeded", "Failed"})
        assert run["status"]["phase"] == "Succeeded", run["status"]
        labelled = [j.metadata.name for j in jobs(crds, namespace)
                    if (j.metadata.labels or {}).get("kubeloop.io/training-run") == "churn"]  # fmt: skip
        assert sorted(labelled) == ["churn-search", "churn-train"]  # one Job set, nothing made twice
        assert [v["metadata"]["name"] for v in versions(crds, namespace)] == ["churn-v1"]
        assert get(crds, namespace, "TrainingRun", "churn")["status"]["modelVersion"] == "churn-v1"
    finally:
        second.stop()

"""Helpers for the training tests: the operator with real workload images, data in MinIO, manifests."""

from __future__ import annotations

import copy
import hashlib
import io
from typing import Any

import yaml
from kubernetes import client

from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_operator import EXAMPLES, GROUP, KINDS, VERSION
from tests.datasets import churn_csv
from tests.infra.fixtures import Cluster
from tests.infra.minio_server import MinioServer
from tests.infra.processes import wait_until


def operator_env(minio: MinioServer) -> dict[str, str]:
    """The operator as the chart configures it, with this session's MinIO."""
    return {
        "KUBELOOP_S3_ENDPOINT": minio.url,
        "KUBELOOP_S3_BUCKET": minio.bucket,
        "KUBELOOP_S3_ACCESS_KEY": minio.access_key,
        "KUBELOOP_S3_SECRET_KEY": minio.secret_key,
    }


def start_operator(cluster: Cluster, minio: MinioServer, name: str = "operator-training") -> OperatorProcess:
    return OperatorProcess(cluster, name, operator_env(minio)).start()


def prepare_namespace(cluster: Cluster, minio: MinioServer, namespace: str) -> None:
    """What a platform team does once per namespace: the store Secret workloads reference."""
    client.CoreV1Api(cluster.api).create_namespaced_secret(namespace, {
        "metadata": {"name": "kubeloop-s3"},
        "stringData": {"accessKey": minio.access_key, "secretKey": minio.secret_key}})  # fmt: skip


def upload(minio: MinioServer, key: str, data: bytes) -> tuple[str, str]:
    """Put `data` at `key`; returns its s3:// location and sha256."""
    minio.client().put_object(minio.bucket, key, io.BytesIO(data), len(data))
    return f"s3://{minio.bucket}/{key}", hashlib.sha256(data).hexdigest()


def upload_churn(minio: MinioServer, namespace: str, *, name: str = "churn.csv", rows: int = 1500,
                 **options: float) -> tuple[str, str]:  # fmt: skip
    return upload(minio, f"datasets/{namespace}/{name}", churn_csv(rows, **options))


def training_run(name: str, dataset_uri: str, *, search: bool = True, model: str = "churn") -> dict[str, Any]:
    """The example TrainingRun, made small enough for a test: fewer rows, trials and trees."""
    run = copy.deepcopy(yaml.safe_load((EXAMPLES / "trainingrun-churn.yaml").read_text()))
    run["metadata"] = {"name": name}
    spec = run["spec"]
    spec["model"] = model
    spec["dataset"]["uri"] = dataset_uri
    spec["dataset"]["validation"]["minRows"] = 1000
    spec["algorithm"]["params"] = {"max_iter": 30, "early_stopping": False}
    spec["resources"] = {"requests": {"cpu": "100m", "memory": "256Mi"}}
    spec["deadline"] = "15m"
    if search:
        spec["algorithm"]["search"] = {
            "strategy": "random", "trials": 6, "parallelism": 2, "metric": "roc_auc", "cvFolds": 3,
            "space": {"learning_rate": {"distribution": "loguniform", "low": 0.03, "high": 0.3},
                      "max_depth": {"values": [3, 5, None]}},
        }  # fmt: skip
    else:
        spec["algorithm"].pop("search", None)
    return dict(run)


def create(cluster: Cluster, namespace: str, body: dict[str, Any]) -> None:
    plural = KINDS[body["kind"]]
    client.CustomObjectsApi(cluster.api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, body
    )


def get(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any]:
    custom = client.CustomObjectsApi(cluster.api)
    return dict(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, KINDS[kind], name))


def wait_phase(cluster: Cluster, namespace: str, kind: str, name: str, phases: set[str], *,
               timeout: float = 300) -> dict[str, Any]:  # fmt: skip
    seen: list[dict[str, Any]] = []

    def reached() -> bool:
        seen[:] = [get(cluster, namespace, kind, name)]
        return (seen[0].get("status") or {}).get("phase") in phases

    wait_until(reached, timeout, f"{kind} {name} to reach {sorted(phases)}", interval=1)
    return seen[0]


def condition(resource: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in resource["status"]["conditions"] if c["type"] == kind)


def versions(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    custom = client.CustomObjectsApi(cluster.api)
    return list(custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "modelversions")["items"])


def jobs(cluster: Cluster, namespace: str) -> list[client.V1Job]:
    return list(client.BatchV1Api(cluster.api).list_namespaced_job(namespace).items)

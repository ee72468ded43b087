"""The control plane reports its real version; MinIO round-trips objects exactly."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess

import pytest
from kubernetes import client

from tests.infra.fixtures import Cluster
from tests.infra.minio_server import MinioServer
from tests.infra.testbin import binaries, versions


@pytest.mark.cluster
def test_control_plane_reports_the_version_it_was_built_as(cluster: Cluster) -> None:
    expected = versions()["K8S_VERSION"]
    assert client.VersionApi(cluster.api).get_code().git_version == expected
    printed = subprocess.run(
        [str(binaries().kube_apiserver), "--version"], capture_output=True, text=True, check=True
    )
    assert printed.stdout.strip() == f"Kubernetes {expected}"
    assert f"Server Version: {expected}" in cluster.kubectl("version").stdout


@pytest.mark.minio
def test_minio_put_get_list_and_multipart_round_trip(minio: MinioServer) -> None:
    store = minio.client()
    store.put_object(minio.bucket, "runs/a/model.onnx", io.BytesIO(b"onnx-bytes"), length=10)
    store.put_object(minio.bucket, "runs/a/model.json", io.BytesIO(b"{}"), length=2)
    assert store.get_object(minio.bucket, "runs/a/model.onnx").read() == b"onnx-bytes"
    assert sorted(o.object_name for o in store.list_objects(minio.bucket, prefix="runs/a/")) == [
        "runs/a/model.json",
        "runs/a/model.onnx",
    ]

    payload = os.urandom(20 * 1024 * 1024)
    # part_size below the payload makes the client use a real multipart upload (4 parts).
    result = store.put_object(
        minio.bucket, "big.bin", io.BytesIO(payload), length=len(payload), part_size=5 * 1024 * 1024
    )
    assert result.etag.endswith("-4"), f"expected a 4-part multipart ETag, got {result.etag}"
    assert (
        hashlib.sha256(store.get_object(minio.bucket, "big.bin").read()).digest()
        == hashlib.sha256(payload).digest()
    )

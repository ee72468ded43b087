"""Component-tier fixtures: a Store on the session's real MinIO."""

from __future__ import annotations

import pytest

from kubeloop.store.client import RetryPolicy, Store, StoreSettings
from tests.infra.minio_server import MinioServer


def settings_for(minio: MinioServer) -> StoreSettings:
    return StoreSettings(minio.url, minio.access_key, minio.secret_key, minio.bucket)


@pytest.fixture(scope="session")
def store(minio: MinioServer) -> Store:
    return Store(settings_for(minio), RetryPolicy(attempts=3, first_delay=0.1))


@pytest.fixture
def store_env(minio: MinioServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The KUBELOOP_S3_* variables a workload pod gets, set for this test's process."""
    env = {"KUBELOOP_S3_ENDPOINT": minio.url, "KUBELOOP_S3_ACCESS_KEY": minio.access_key,
           "KUBELOOP_S3_SECRET_KEY": minio.secret_key, "KUBELOOP_S3_BUCKET": minio.bucket}  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env

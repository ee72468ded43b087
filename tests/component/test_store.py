"""The artifact store against a real MinIO: round trips, digests, a missing object, a dead store."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from kubeloop.store.client import ObjectMissing, RetryPolicy, Store, StoreSettings, StoreUnavailable
from kubeloop.store.digest import DigestMismatch, sha256_bytes, verify
from kubeloop.store.uri import StoreUri
from tests.infra.minio_server import MinioServer
from tests.infra.processes import free_port


def test_s3_round_trip_list_and_exists(store: Store, minio: MinioServer) -> None:
    prefix = f"s3://{minio.bucket}/t/{uuid.uuid4().hex}/"
    digest = store.put_bytes(prefix + "model.onnx", b"onnx")
    store.put_bytes(prefix + "sub/model.json", b"{}", content_type="application/json")
    assert digest == sha256_bytes(b"onnx")
    assert store.get_bytes(prefix + "model.onnx") == b"onnx"
    assert store.list(prefix) == [prefix + "model.onnx", prefix + "sub/model.json"]
    assert store.exists(prefix + "model.onnx") and not store.exists(prefix + "absent")


def test_file_locations_work_without_s3_settings(tmp_path: Path) -> None:
    local = Store()
    location = f"file://{tmp_path}/a/b.bin"
    local.put_bytes(location, b"x")
    assert local.get_bytes(location) == b"x" and local.list(f"file://{tmp_path}") == [location]
    with pytest.raises(ValueError, match="no S3 settings"):
        local.get_bytes("s3://kubeloop/x")


def test_missing_object_fails_at_once(store: Store, minio: MinioServer) -> None:
    with pytest.raises(ObjectMissing, match="NoSuchKey"):
        store.get_bytes(f"s3://{minio.bucket}/does/not/exist")


def test_dead_store_is_retried_then_reported(minio: MinioServer) -> None:
    retries: list[Exception] = []
    dead = Store(StoreSettings(f"http://127.0.0.1:{free_port()}", "k", "s"),
                 RetryPolicy(attempts=3, first_delay=0.01, on_retry=retries.append))  # fmt: skip
    with pytest.raises(StoreUnavailable, match="did not answer after 3 attempts"):
        dead.put_bytes("s3://kubeloop/x", b"x")
    assert len(retries) == 2


def test_digest_mismatch_names_both_digests() -> None:
    with pytest.raises(DigestMismatch, match="refusing to use it") as raised:
        verify("model.onnx", b"tampered", sha256_bytes(b"original"))
    assert raised.value.expected == sha256_bytes(b"original")


@pytest.mark.parametrize("text", ["s3://bucket", "http://x/y", "file://relative/path", "s3:///key"])
def test_bad_locations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a store location"):
        StoreUri.parse(text)


def test_settings_name_what_is_missing() -> None:
    with pytest.raises(ValueError, match="KUBELOOP_S3_ACCESS_KEY, KUBELOOP_S3_SECRET_KEY"):
        StoreSettings.from_env({"KUBELOOP_S3_ENDPOINT": "http://x"})

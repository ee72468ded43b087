"""Reading and writing artifacts, with bounded retries and a clear failure when the store stays down.

The S3 endpoint and bucket come from settings, the keys from a Secret through the environment
(KUBELOOP_S3_*); they are never logged.
"""

from __future__ import annotations

import builtins
import io
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from kubeloop.store.digest import sha256_bytes
from kubeloop.store.uri import StoreUri

log = logging.getLogger("kubeloop.store")
T = TypeVar("T")
MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "NoSuchObject"}


class StoreUnavailable(Exception):
    """The store did not answer after every retry."""


class ObjectMissing(Exception):
    """The location holds nothing (retrying would not help)."""


@dataclass(frozen=True)
class StoreSettings:
    endpoint: str  # URL, e.g. http://minio.kubeloop-system:9000
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    bucket: str = "kubeloop"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> StoreSettings:
        missing = [
            name
            for name in ("KUBELOOP_S3_ENDPOINT", "KUBELOOP_S3_ACCESS_KEY", "KUBELOOP_S3_SECRET_KEY")
            if not env.get(name)
        ]
        if missing:
            raise ValueError(f"store settings missing from the environment: {', '.join(missing)}")
        return cls(
            env["KUBELOOP_S3_ENDPOINT"],
            env["KUBELOOP_S3_ACCESS_KEY"],
            env["KUBELOOP_S3_SECRET_KEY"],
            env.get("KUBELOOP_S3_BUCKET", "kubeloop"),
        )


@dataclass
class RetryPolicy:
    attempts: int = 5
    first_delay: float = 0.5
    max_delay: float = 8.0
    on_retry: Callable[[Exception], None] | None = None  # e.g. a metrics counter

    def delays(self) -> list[float]:
        return [min(self.first_delay * 2**n, self.max_delay) for n in range(self.attempts - 1)]


class Store:
    """s3:// locations through MinIO's client, file:// locations on the local disk."""

    def __init__(self, settings: StoreSettings | None = None, retry: RetryPolicy | None = None) -> None:
        self.settings, self.retry = settings, retry or RetryPolicy()
        self._s3: Minio | None = None

    @classmethod
    def from_env(cls, retry: RetryPolicy | None = None) -> Store:
        return cls(StoreSettings.from_env() if os.environ.get("KUBELOOP_S3_ENDPOINT") else None, retry)

    def _client(self) -> Minio:
        if self._s3 is None:
            if self.settings is None:
                raise ValueError(
                    "s3:// location used but no S3 settings (KUBELOOP_S3_ENDPOINT) are configured"
                )
            url = urlparse(self.settings.endpoint)
            # Our own retries decide; the client only times out (no hidden retry loops).
            http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=3, read=30), retries=False)
            self._s3 = Minio(
                url.netloc,
                access_key=self.settings.access_key,
                secret_key=self.settings.secret_key,
                secure=url.scheme == "https",
                http_client=http,
            )
        return self._s3

    def _with_retries(self, what: str, action: Callable[[], T]) -> T:
        for delay in [*self.retry.delays(), None]:
            try:
                return action()
            except S3Error as error:
                if error.code in MISSING_CODES:
                    raise ObjectMissing(f"{what}: {error.code}") from error
                failure: Exception = error
            except (MinioException, urllib3.exceptions.HTTPError, OSError) as error:
                failure = error
            if delay is None:
                break
            log.warning("store: %s failed (%s); retrying in %.1fs", what, type(failure).__name__, delay)
            if self.retry.on_retry:
                self.retry.on_retry(failure)
            time.sleep(delay)
        raise StoreUnavailable(
            f"{what}: the store did not answer after {self.retry.attempts} attempts "
            f"({type(failure).__name__}: {failure})"
        ) from failure

    def put_bytes(
        self, location: str | StoreUri, data: bytes, content_type: str = "application/octet-stream"
    ) -> str:
        """Write `data`; returns its sha256."""
        uri = StoreUri.parse(str(location))
        if uri.scheme == "file":
            Path(uri.key).parent.mkdir(parents=True, exist_ok=True)
            Path(uri.key).write_bytes(data)
        else:
            self._with_retries(
                f"put {uri}",
                lambda: self._client().put_object(
                    uri.bucket, uri.key, io.BytesIO(data), len(data), content_type=content_type
                ),
            )
        return sha256_bytes(data)

    def get_bytes(self, location: str | StoreUri) -> bytes:
        uri = StoreUri.parse(str(location))
        if uri.scheme == "file":
            try:
                return Path(uri.key).read_bytes()
            except FileNotFoundError as error:
                raise ObjectMissing(f"get {uri}: no such file") from error
        return self._with_retries(f"get {uri}", lambda: self._read(uri))

    def _read(self, uri: StoreUri) -> bytes:
        response = self._client().get_object(uri.bucket, uri.key)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def list(self, prefix: str | StoreUri) -> list[str]:
        """Every location below `prefix` (recursively), sorted."""
        uri = StoreUri.parse(str(prefix))
        if uri.scheme == "file":
            root = Path(uri.key)
            return sorted(f"file://{p}" for p in root.rglob("*") if p.is_file()) if root.exists() else []
        objects = self._with_retries(
            f"list {uri}",
            lambda: list(self._client().list_objects(uri.bucket, prefix=uri.key, recursive=True)),
        )
        return sorted(f"s3://{uri.bucket}/{o.object_name}" for o in objects)

    def exists(self, location: str | StoreUri) -> bool:
        uri = StoreUri.parse(str(location))
        if uri.scheme == "file":
            return Path(uri.key).is_file()
        try:
            self._with_retries(f"stat {uri}", lambda: self._client().stat_object(uri.bucket, uri.key))
        except ObjectMissing:
            return False
        return True

    # --- sized listings and ranged reads: streaming large inputs (batch scoring) ---------------------

    def list_sized(self, prefix: str | StoreUri) -> builtins.list[tuple[str, int]]:
        """Every location below `prefix` (recursively) with its size in bytes, sorted by location."""
        uri = StoreUri.parse(str(prefix))
        if uri.scheme == "file":
            root = Path(uri.key)
            found = [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
            return sorted((f"file://{p}", p.stat().st_size) for p in found)
        objects = self._with_retries(
            f"list {uri}",
            lambda: list(self._client().list_objects(uri.bucket, prefix=uri.key, recursive=True)),
        )
        return sorted((f"s3://{uri.bucket}/{o.object_name}", int(o.size or 0)) for o in objects)

    def size(self, location: str | StoreUri) -> int:
        """Size of the object in bytes (ObjectMissing when there is none)."""
        uri = StoreUri.parse(str(location))
        if uri.scheme == "file":
            try:
                return Path(uri.key).stat().st_size
            except FileNotFoundError as error:
                raise ObjectMissing(f"stat {uri}: no such file") from error
        stat = self._with_retries(f"stat {uri}", lambda: self._client().stat_object(uri.bucket, uri.key))
        return int(stat.size or 0)

    def get_range(self, location: str | StoreUri, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (fewer at the end of the object); each range is retried alone."""
        uri = StoreUri.parse(str(location))
        if length <= 0:
            return b""
        if uri.scheme == "file":
            try:
                with open(uri.key, "rb") as handle:
                    handle.seek(offset)
                    return handle.read(length)
            except FileNotFoundError as error:
                raise ObjectMissing(f"get {uri}: no such file") from error
        return self._with_retries(
            f"get {uri} [{offset}+{length}]", lambda: self._read_range(uri, offset, length)
        )

    def _read_range(self, uri: StoreUri, offset: int, length: int) -> bytes:
        response = self._client().get_object(uri.bucket, uri.key, offset=offset, length=length)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

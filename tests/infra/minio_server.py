"""A real MinIO server with generated credentials and one bucket, on the stack's bridge address (so that
the host and the pods reach it at the same URL) or on loopback."""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from minio import Minio

from tests.infra.controlplane import scratch_dir
from tests.infra.processes import ManagedProcess, free_port, http_ok, wait_until
from tests.infra.testbin import Binaries, binaries


@dataclass
class MinioServer:
    host: str = "127.0.0.1"
    bucket: str = "kubeloop"
    root: Path = field(default_factory=lambda: scratch_dir("kubeloop-minio-"))
    bins: Binaries = field(default_factory=binaries)
    access_key: str = field(default_factory=lambda: "kl" + secrets.token_hex(8))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    keep_root: bool = False
    port: int = 0
    process: ManagedProcess | None = None

    @property
    def endpoint(self) -> str:
        """host:port, the form the minio client takes."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def start(self) -> MinioServer:
        self.bins.require("minio")
        self.port = free_port(self.host)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.root),
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
        }
        self.process = ManagedProcess(
            "minio",
            [
                str(self.bins.minio),
                "server",
                str(self.root / "data"),
                "--address",
                self.endpoint,
                "--console-address",
                f"{self.host}:{free_port(self.host)}",
                "--quiet",
            ],
            self.root / "logs" / "minio.log",
            env=env,
        ).start()
        try:
            wait_until(self._ready, 60, "MinIO /minio/health/ready")
            self.client().make_bucket(self.bucket)
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        return http_ok(f"{self.url}/minio/health/ready", self.process)

    def client(self) -> Minio:
        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        if not self.keep_root:
            shutil.rmtree(self.root, ignore_errors=True)

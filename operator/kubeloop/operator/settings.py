"""Operator settings from environment variables (KUBELOOP_*); credentials come from a Secret via env."""

from __future__ import annotations

import functools
import os
import socket

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from kubeloop import __version__
from kubeloop.planning.workloads import WorkloadSettings
from kubeloop.store.client import StoreSettings


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KUBELOOP_", extra="ignore")

    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch; empty means all namespaces."
    )
    bind_host: str = Field(default="0.0.0.0", description="Address for the metrics and health endpoints.")
    metrics_port: int = Field(default=8080, ge=0, le=65535, description="Prometheus /metrics port (0: off).")
    health_port: int = Field(default=8081, ge=0, le=65535, description="Liveness /healthz port (0: off).")
    log_format: str = Field(default="json", pattern="^(json|text)$", description="json or text logs.")
    verbose: bool = Field(default=False, description="Debug logging.")
    pod_name: str = Field(
        default="",
        description="The operator's pod (the chart sets it from the downward API): its identity.",
    )
    s3_endpoint: str = Field(default="", description="S3/MinIO endpoint URL, e.g. http://minio:9000.")
    s3_bucket: str = Field(default="kubeloop", description="Bucket for artifacts, logs and reports.")
    s3_access_key: SecretStr = Field(default=SecretStr(""), description="From the S3 Secret, via env.")
    s3_secret_key: SecretStr = Field(default=SecretStr(""), description="From the S3 Secret, via env.")
    s3_secret_name: str = Field(
        default="kubeloop-s3",
        description="Secret in each workload's namespace whose keys workloads get as env (never the values).",
    )
    trainer_image: str = Field(
        default=f"kubeloop/trainer:{__version__}", description="Image of training Jobs."
    )
    server_image: str = Field(
        default=f"kubeloop/server:{__version__}", description="Image of model servers and validation Jobs."
    )

    router_image: str = Field(
        default=f"kubeloop/router:{__version__}", description="Image of ModelDeployment routers."
    )
    monitor_image: str = Field(
        default=f"kubeloop/monitor:{__version__}", description="Image of ModelMonitor runs."
    )
    workload_pull_policy: str = Field(
        default="IfNotPresent",
        pattern="^(Always|IfNotPresent|Never)$",
        description="imagePullPolicy of every workload container the operator starts.",
    )

    def identity(self) -> str:
        """Who this operator is, without asking the passwd database: images run as a uid that has
        no entry there, and Kopf's own guess (getpass.getuser) raises KeyError then."""
        return self.pod_name or f"{socket.gethostname()}-{os.getpid()}"

    def workloads(self) -> WorkloadSettings:
        return WorkloadSettings(
            self.s3_endpoint,
            self.s3_bucket,
            self.s3_secret_name,
            self.trainer_image,
            self.server_image,
            router_image=self.router_image,
            monitor_image=self.monitor_image,
            pull_policy=self.workload_pull_policy,
        )

    def store(self) -> StoreSettings:
        return StoreSettings(
            self.s3_endpoint,
            self.s3_access_key.get_secret_value(),
            self.s3_secret_key.get_secret_value(),
            self.s3_bucket,
        )


@functools.cache
def current() -> OperatorSettings:
    """The settings from the environment, read once."""
    return OperatorSettings()

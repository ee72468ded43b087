"""The router pod's contract with the operator: its environment, its paths and port, and its RBAC.

The operator renders the router Deployment's env from `ENV` (or `RouterSettings.to_env()`), probes
`LIVE_PATH`/`READY_PATH` on `ROUTER_PORT`, reads `STATS_PATH`, and grants the router's account
`RBAC_RULES` in the deployment's namespace. Plain pydantic, like ServingSettings: the router image
has no pydantic-settings.

Outside Kubernetes the router follows a routing file instead (`KUBELOOP_ROUTING_FILE`, a
`StandaloneRouting`): the table plus the backends' addresses, for component tests and benchmarks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kubeloop.contracts.environment import validate_env
from kubeloop.contracts.routing import ROUTER_PORT, RoutingTable

LIVE_PATH = "/router/live"
READY_PATH = "/router/ready"  # 200 once a routing table and at least one stable address are known
CONFIG_PATH = "/router/config"  # the router's current view: table, addresses, ejected pods
STATS_PATH = "/stats"  # RouterStats of the current epoch (by alias)
METRICS_PATH = "/metrics"  # Prometheus text format

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

# Field name -> environment variable. One table, so the operator and the router cannot disagree.
ENV: dict[str, str] = {
    "namespace": "KUBELOOP_NAMESPACE",  # where the ConfigMap and the EndpointSlices are
    "routing_configmap": "KUBELOOP_ROUTING_CONFIGMAP",  # <mdep>-routing (Kubernetes mode)
    "routing_file": "KUBELOOP_ROUTING_FILE",  # a StandaloneRouting JSON file (standalone mode)
    "port": "KUBELOOP_PORT",
    "bind_host": "KUBELOOP_BIND_HOST",
    "pod_name": "KUBELOOP_POD_NAME",
    "kube_api": "KUBELOOP_KUBE_API",  # default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
    "kube_token_file": "KUBELOOP_KUBE_TOKEN_FILE",
    "kube_ca_file": "KUBELOOP_KUBE_CA_FILE",
    "upstream_timeout_seconds": "KUBELOOP_UPSTREAM_TIMEOUT_SECONDS",  # answers slower than this: 504
    "connect_timeout_seconds": "KUBELOOP_CONNECT_TIMEOUT_SECONDS",
    "eject_seconds": "KUBELOOP_EJECT_SECONDS",  # a pod that failed to connect sits out this long
    "max_body_bytes": "KUBELOOP_MAX_BODY_BYTES",  # larger requests: 413
    "copy_concurrency": "KUBELOOP_COPY_CONCURRENCY",  # copies in flight at once (shadowQueue waits beyond)
    "shutdown_delay_seconds": "KUBELOOP_SHUTDOWN_DELAY_SECONDS",  # unready but serving after SIGTERM
    "log_level": "KUBELOOP_LOG_LEVEL",
}

# What the router's ServiceAccount needs, in its own namespace only (a Role, not a ClusterRole).
RBAC_RULES: list[dict[str, list[str]]] = [
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
]


class RouterSettings(BaseModel):
    """The router's whole configuration: exactly one of `routing_configmap` and `routing_file`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str = "default"
    routing_configmap: str = ""
    routing_file: str = ""
    port: int = Field(default=ROUTER_PORT, ge=1, le=65535)
    bind_host: str = "0.0.0.0"
    pod_name: str = Field(default_factory=lambda: os.uname().nodename)
    kube_api: str = ""
    kube_token_file: str = str(SERVICE_ACCOUNT_DIR / "token")
    kube_ca_file: str = str(SERVICE_ACCOUNT_DIR / "ca.crt")
    upstream_timeout_seconds: float = Field(default=60.0, gt=0)
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    eject_seconds: float = Field(default=5.0, ge=0)
    max_body_bytes: int = Field(default=16 << 20, ge=1024)
    copy_concurrency: int = Field(default=32, ge=1, le=4096)
    shutdown_delay_seconds: float = Field(default=0.0, ge=0, le=300)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if bool(self.routing_configmap) == bool(self.routing_file):
            raise ValueError(
                f"set exactly one of {ENV['routing_configmap']} (in a cluster) and {ENV['routing_file']}"
            )
        if self.routing_configmap and not self.kube_api:
            raise ValueError(
                f"{ENV['kube_api']} or KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT is needed "
                "to follow a routing ConfigMap"
            )
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Self:
        """Read the settings; a bad or missing variable is reported by its variable name."""
        raw: dict[str, Any] = {field: env[var] for field, var in ENV.items() if env.get(var)}
        if "kube_api" not in raw and env.get("KUBERNETES_SERVICE_HOST"):
            host, port = env["KUBERNETES_SERVICE_HOST"], env.get("KUBERNETES_SERVICE_PORT", "443")
            raw["kube_api"] = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        if "namespace" not in raw and (SERVICE_ACCOUNT_DIR / "namespace").is_file():
            raw["namespace"] = (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip()
        return validate_env(cls, raw, ENV, "router")

    def to_env(self) -> dict[str, str]:
        """The variables that reproduce these settings (what the operator puts in the pod template)."""
        return {ENV[k]: str(v) for k, v in self.model_dump().items() if v != ""}


def split_address(address: str, default_port: int) -> tuple[str, int]:
    """'10.0.0.7:8080', '[fd00::7]:8080' or a bare host -> (host, port)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif address.count(":") == 1:
        host, _, port_text = address.partition(":")
    else:
        host, port_text = address, ""  # a bare IPv4 address, name or IPv6 address
    if not host:
        raise ValueError(f"no host in address {address!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"bad port in address {address!r}")
    return host, int(port_text)


class StandaloneRouting(BaseModel):
    """KUBELOOP_ROUTING_FILE: the table, and each backend Service's ready addresses ('host:port')."""

    model_config = ConfigDict(extra="forbid")

    table: RoutingTable
    endpoints: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("endpoints")
    @classmethod
    def _addresses_parse(cls, endpoints: dict[str, list[str]]) -> dict[str, list[str]]:
        for addresses in endpoints.values():
            for address in addresses:
                split_address(address, ROUTER_PORT)
        return endpoints

    @model_validator(mode="after")
    def _services_known(self) -> Self:
        services = {self.table.stable.service} | (
            {self.table.candidate.service} if self.table.candidate else set()
        )
        unknown = sorted(set(self.endpoints) - services)
        if unknown:
            raise ValueError(f"endpoints name services the table does not use: {unknown}")
        return self

    @classmethod
    def load(cls, path: str) -> Self:
        """The file parsed and checked; any problem is a ValueError that names the file and the field."""
        try:
            text = Path(path).read_bytes()
        except OSError as error:
            raise ValueError(f"routing file {path}: {error.strerror or error}") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as error:
            problems = [f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in error.errors()]
            raise ValueError(f"routing file {path}: " + "; ".join(problems)) from None

"""Where the cached test binaries live (built by tests/infra/testbin.sh)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


def versions() -> dict[str, str]:
    pairs = {}
    for raw in (HERE / "versions.env").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kubeloop-testbin"
    return Path(os.environ.get("KUBELOOP_TESTBIN", default))


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubelet: Path
    kube_proxy: Path
    kubectl: Path
    coredns: Path
    pause: Path
    minio: Path
    helm: Path

    def require(self, *names: str) -> Binaries:
        """Fail with the build command when one of the named binaries is not in the cache."""
        missing = [str(getattr(self, name)) for name in names if not getattr(self, name).exists()]
        if missing:
            raise FileNotFoundError(
                "test binaries missing: " + ", ".join(missing) + "; build them with `make testbin`"
            )
        return self

    @property
    def path_dirs(self) -> list[str]:
        """Directories to put first on PATH so `kubectl` and `helm` match the server."""
        return sorted({str(self.kubectl.parent), str(self.helm.parent)})


def binaries() -> Binaries:
    v, root = versions(), cache_root()
    helm_dir = "-".join(filter(None, v["HELM_WHEEL"].replace("=", "-").split("-")))
    k8s = root / f"k8s-{v['K8S_VERSION']}"
    return Binaries(
        etcd=root / f"etcd-{v['ETCD_VERSION']}" / "etcd",
        kube_apiserver=k8s / "kube-apiserver",
        kube_controller_manager=k8s / "kube-controller-manager",
        kube_scheduler=k8s / "kube-scheduler",
        kubelet=k8s / "kubelet",
        kube_proxy=k8s / "kube-proxy",
        kubectl=k8s / "kubectl",
        coredns=root / f"coredns-{v['COREDNS_VERSION']}" / "coredns",
        pause=root / f"pause-{v['K8S_VERSION']}" / "pause",
        minio=root / f"minio-{v['MINIO_VERSION']}" / "minio",
        helm=root / helm_dir / "helm",
    )

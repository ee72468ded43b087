"""`make dev-up` / `make dev-down`: the local stack in the background for people to use.

up    builds or reuses the images, starts MinIO, the control plane, the real node and CoreDNS under
      .dev/, installs the operator from the chart, writes .dev/env (KUBECONFIG, PATH with the matching
      kubectl and helm, the S3 settings) and .dev/state.json
down  stops exactly the processes `up` started (by the pids in .dev/state.json), then removes the
      node's containers, mounts and cgroups, the stack's network and .dev/
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys

from tests.infra.node import claims
from tests.infra.processes import pid_exists, stop_pid
from tests.infra.stack import REPO, Stack

DEV = REPO / ".dev"
STATE, ENV = DEV / "state.json", DEV / "env"
# Stop order: the nodes first, then the control plane, MinIO last.
STOP_ORDER = ("kube-proxy", "kubelet", "containerd", "kube-scheduler", "kube-controller-manager",
              "kube-apiserver", "etcd", "minio")  # fmt: skip


def stop_rank(name: str) -> int:
    return next((i for i, prefix in enumerate(STOP_ORDER) if name.startswith(prefix)), len(STOP_ORDER))


def running_pids() -> dict[str, int]:
    if not STATE.exists():
        return {}
    pids: dict[str, int] = json.loads(STATE.read_text())["pids"]
    return {name: pid for name, pid in pids.items() if pid_exists(pid)}


def up() -> None:
    if running_pids():
        print(f"already up: {', '.join(running_pids())}; `make dev-down` first to start afresh")
        return
    if STATE.exists():  # a stack whose processes died: its mounts must go before its files do
        claims.clean_if_abandoned(json.loads(STATE.read_text())["network"])
    shutil.rmtree(DEV, ignore_errors=True)
    DEV.mkdir()
    stack = Stack(root=DEV, node_root=DEV / "nodes", keep_root=True).start()
    assert stack.plane is not None and stack.minio is not None and stack.network is not None
    pids = {p.name: p.pid for p in stack.processes}
    STATE.write_text(json.dumps({"pids": pids, "network": stack.network.index}, indent=2))
    # This process ends now; the API server stands for the stack from here on.
    claims.hand_over(stack.network.index, pids["kube-apiserver"])
    stack.install_operator()
    settings = {
        "KUBECONFIG": str(stack.plane.kubeconfig),
        "KUBELOOP_S3_ENDPOINT": stack.minio.url,
        "KUBELOOP_S3_ACCESS_KEY": stack.minio.access_key,
        "KUBELOOP_S3_SECRET_KEY": stack.minio.secret_key,
        "KUBELOOP_S3_BUCKET": stack.minio.bucket,
    }
    lines = [f"export {key}={shlex.quote(value)}" for key, value in settings.items()]
    path = ":".join(stack.plane.bins.path_dirs)
    lines.append(f'export PATH={shlex.quote(path)}:"$PATH"')
    ENV.write_text("\n".join(lines) + "\n")
    ENV.chmod(0o600)  # it holds the MinIO keys
    nodes = ", ".join(node.name for node in stack.nodes)
    print(f"up: kube-apiserver {stack.plane.server}, MinIO {stack.minio.url}, node {nodes} (containerd),")
    print(
        "    CRDs installed, the operator running as a pod in kubeloop-system (images from this working tree)"
    )
    print(f"logs in {DEV}/*/logs; use it with:  source {ENV}")


def down() -> None:
    for _, pid in sorted(running_pids().items(), key=lambda item: stop_rank(item[0])):
        stop_pid(pid, grace=15)
    if STATE.exists():
        claims.clean(json.loads(STATE.read_text())["network"])  # containers, mounts, cgroups, network
    shutil.rmtree(DEV, ignore_errors=True)
    print("down")


def status() -> int:
    recorded = json.loads(STATE.read_text())["pids"] if STATE.exists() else {}
    pids = running_pids()
    for name in sorted(recorded, key=stop_rank):
        print(f"{name:32} {'running, pid ' + str(pids[name]) if name in pids else 'stopped'}")
    return 0 if pids else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    command = parser.parse_args().command
    if command == "status":
        sys.exit(status())
    up() if command == "up" else down()


if __name__ == "__main__":
    main()

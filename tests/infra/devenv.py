"""`make dev-up` / `make dev-down`: the local stack in the background for people to use.

up    starts MinIO, the control plane and the local node under .dev/, writes .dev/env (KUBECONFIG,
      PATH with the matching kubectl and helm, the S3 settings the operator reads) and .dev/state.json
down  stops exactly the processes `up` started (by the pids in .dev/state.json) and removes .dev/
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys

from tests.infra.processes import pid_exists, stop_pid
from tests.infra.stack import REPO, Stack

DEV = REPO / ".dev"
STATE, ENV = DEV / "state.json", DEV / "env"
# Stop order: the agent first (it stops its pods), then the control plane, MinIO last.
STOP_ORDER = ("local-node", "kube-controller-manager", "kube-apiserver", "etcd", "minio")


def running_pids() -> dict[str, int]:
    if not STATE.exists():
        return {}
    pids: dict[str, int] = json.loads(STATE.read_text())["pids"]
    return {name: pid for name, pid in pids.items() if pid_exists(pid)}


def up() -> None:
    if running_pids():
        print(f"already up: {', '.join(running_pids())}; `make dev-down` first to start afresh")
        return
    shutil.rmtree(DEV, ignore_errors=True)
    DEV.mkdir()
    stack = Stack(root=DEV, keep_root=True).start()
    assert stack.plane is not None and stack.minio is not None
    STATE.write_text(json.dumps({"pids": {p.name: p.pid for p in stack.processes}}, indent=2))
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
    print(f"up: kube-apiserver {stack.plane.server}, MinIO {stack.minio.url}, node kubeloop-local,")
    print("    CRDs installed, the operator running as a pod in kubeloop-system (from this working tree)")
    print(f"logs in {DEV}/*/logs; use it with:  source {ENV}")


def down() -> None:
    pids = running_pids()
    for name in STOP_ORDER:
        if name in pids:
            stop_pid(pids.pop(name), grace=30)
    for pid in pids.values():
        stop_pid(pid)
    shutil.rmtree(DEV, ignore_errors=True)
    print("down")


def status() -> int:
    pids = running_pids()
    for name in STOP_ORDER:
        print(f"{name:24} {'running, pid ' + str(pids[name]) if name in pids else 'stopped'}")
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

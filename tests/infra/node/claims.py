"""Which stack owns which network index, and what to clean when its owner died without stopping it.

A claim is /run/kubeloop-stack/<index>.json: the holder's pid and the node directories and cgroups
in use. A claim whose holder is gone is a crashed stack: its processes, mounts, cgroups and network
are removed before the index is reused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CLAIMS = Path("/run/kubeloop-stack")
MAX_STACKS = 40


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _path(index: int) -> Path:
    return CLAIMS / f"{index}.json"


def read(index: int) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(_path(index).read_text() or "{}")
    except (FileNotFoundError, ValueError):
        return {}
    return state


def _write(index: int, state: dict[str, Any]) -> None:
    temporary = _path(index).with_suffix(".tmp")
    temporary.write_text(json.dumps(state))
    temporary.replace(_path(index))


def claim() -> int:
    """The first index that no live process holds."""
    CLAIMS.mkdir(parents=True, exist_ok=True)
    for index in range(MAX_STACKS):
        try:
            fd = os.open(_path(index), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            owner = read(index).get("pid", 0)
            if owner and pid_alive(owner):
                continue
            clean(index)
            fd = os.open(_path(index), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, json.dumps({"pid": os.getpid(), "nodes": []}).encode())
        os.close(fd)
        return index
    raise RuntimeError(f"no free stack network: {MAX_STACKS} stacks are running")


def add_node(index: int, root: Path, cgroup: str) -> None:
    """Remember a node's directory and cgroup before anything runs in them."""
    state = read(index)
    state["nodes"] = [*state.get("nodes", []), {"root": str(root), "cgroup": cgroup}]
    _write(index, state)


def hand_over(index: int, pid: int) -> None:
    """Make `pid` the holder (`make dev-up` exits while its stack keeps running)."""
    _write(index, {**read(index), "pid": pid})


def release(index: int) -> None:
    _path(index).unlink(missing_ok=True)


def clean_if_abandoned(index: int) -> None:
    """`clean(index)` unless a live process holds the claim (another stack may have taken it since)."""
    owner = read(index).get("pid", 0)
    if not (owner and pid_alive(owner)):
        clean(index)


def clean(index: int) -> None:
    """Everything a dead holder of `index` left behind, then the claim itself."""
    from tests.infra.node.network import remove_network  # noqa: PLC0415 (network imports claims)
    from tests.infra.node.teardown import remove_node  # noqa: PLC0415

    for node in read(index).get("nodes", []):
        remove_node(Path(node["root"]), node["cgroup"])
    remove_network(index)
    release(index)

"""Removing a node without leaving anything behind, whether it stopped cleanly or its holder died.

Containers outlive the kubelet and containerd (their shims are reparented to init), so they are found
by what they are in, not by who started them: every process inside the node's cgroup subtree, and
every process whose command line names the node's directory (kubelet, containerd, its shims,
kube-proxy). Mounts under the directory (pod volumes, rootfs overlays, network namespaces) go next.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

CGROUPS = Path("/sys/fs/cgroup")


def processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry.name))
    return found


def cgroup_dirs(cgroup: str) -> list[Path]:
    """The node's cgroup in every v1 hierarchy (and the unified one), when it exists there."""
    relative = cgroup.strip("/")
    return [h / relative for h in CGROUPS.iterdir() if (h / relative).is_dir()] if relative else []


def processes_in(cgroup: str) -> set[int]:
    pids: set[int] = set()
    for top in cgroup_dirs(cgroup):
        for procs in top.rglob("cgroup.procs"):
            try:
                pids.update(int(line) for line in procs.read_text().split())
            except OSError:
                continue
    return pids


def kill_all(pids: set[int] | list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def remove_cgroup(cgroup: str) -> None:
    """Kill what runs in it until nothing does, then remove the directories, deepest first."""
    deadline = time.monotonic() + 10
    while (pids := processes_in(cgroup)) and time.monotonic() < deadline:
        kill_all(pids)
        time.sleep(0.1)
    for top in cgroup_dirs(cgroup):
        for directory in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):  # busy: a process is still leaving
                directory.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def mounts_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix) or point == str(root):
            points.append(point)
    return sorted(set(points), key=lambda p: -p.count("/"))


def unmount_under(root: Path) -> None:
    for _ in range(3):  # a lazy unmount of a parent can reveal nothing new, but stacked mounts can
        points = mounts_under(root)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def remove_node(root: Path, cgroup: str) -> None:
    """Every process, container, mount and cgroup of the node at `root`, then the directory."""
    kill_all(processes_naming(str(root)))
    remove_cgroup(cgroup)
    kill_all(processes_naming(str(root)))  # a shim that was still starting a container
    unmount_under(root)
    shutil.rmtree(root, ignore_errors=True)

"""Runs inside a fresh mount namespace (`unshare --mount --propagation private`): bind-mounts the
pod's volumes and termination-message file at their real paths, then execs the container.

Standard library only, and started as a script: it must be quick and import nothing of ours.
Usage: python launch.py PLAN.json
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys

MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC = 1, 32, 4096, 16384
CLONE_NEWNET = 0x40000000


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _mount(source: str, target: str, flags: int) -> None:
    if _libc.mount(source.encode(), target.encode(), None, flags, None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} -> {target}: {os.strerror(errno)}")


def bind(source: str, target: str) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            open(target, "a").close()  # an empty mount point; the per-pod file is bound over it
    _mount(source, target, MS_BIND | MS_REC)


def pinned(path: str) -> str:
    """A path that keeps naming `path` after mounts shadow it: an O_PATH fd, via /proc."""
    return f"/proc/self/fd/{os.open(path, os.O_PATH)}"


def under(path: str, target: str) -> bool:
    return path == target or path.startswith(target.rstrip("/") + "/")


def mount_volumes(mounts: list[dict[str, str]], keep: list[str]) -> None:
    """Bind each volume at its mountPath. Unlike a real container we share the host's root, so a
    volume may shadow what the process needs (the interpreter, the project, e.g. under /tmp):
    those `keep` paths are bound back on top. Read-only remounts come last."""
    ordered = sorted(mounts, key=lambda m: m["target"].count("/"))  # parents first
    sources = [pinned(m["source"]) for m in ordered]
    kept = [(path, pinned(path)) for path in keep if os.path.exists(path)]
    for mount, source in zip(ordered, sources, strict=True):
        bind(source, mount["target"])
        for path, handle in kept:
            if under(path, mount["target"]):
                bind(handle, path)
    for mount, source in zip(ordered, sources, strict=True):
        if mount.get("readOnly"):
            _mount(source, mount["target"], MS_BIND | MS_REMOUNT | MS_RDONLY)


def enter_network(path: str) -> None:
    """Join the pod's network namespace, shared by all its containers."""
    fd = os.open(path, os.O_RDONLY)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns {path}: {os.strerror(errno)}")
    os.close(fd)


def main() -> None:
    with open(sys.argv[1]) as handle:
        plan = json.load(handle)
    if plan.get("netns"):
        enter_network(plan["netns"])
    mount_volumes(plan["mounts"], plan.get("keep", []))
    if plan.get("cwd"):
        os.makedirs(plan["cwd"], exist_ok=True)
        os.chdir(plan["cwd"])
    argv = plan["argv"]
    try:
        # The container's own process replaces us: that is the point of this script.
        os.execvpe(argv[0], argv, plan["env"])  # noqa: S606
    except OSError as error:
        message = f"failed to start container process {argv[0]!r}: {error.strerror}"
        print(message, file=sys.stderr)
        if plan.get("terminationMessage"):
            with open(plan["terminationMessage"], "w") as handle:
                handle.write(message)
        sys.exit(128)


if __name__ == "__main__":
    main()

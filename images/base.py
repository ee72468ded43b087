"""A local stand-in for `python:3.11-slim-bookworm`, built from Debian's packages where no registry
is reachable (no Docker engine, nothing to pull from). See images/README.md for how it differs
from the official image.

debootstrap (minbase) with Python 3.11 from Debian, the machine's own apt mirror and suites
(security updates included), then what our Dockerfiles rely on: `python`, `python3` and `pip` in
/usr/local/bin, pip allowed to install (no EXTERNALLY-MANAGED), LANG=C.UTF-8, CMD ["python3"].
Docs, man pages, locales, apt lists and caches are removed, and dpkg is told to skip them in any
later install, as Debian's own slim images do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

BASE_REF = "docker.io/library/python:3.11-slim-bookworm"
SUITE = "bookworm"
PACKAGES = ("python3.11", "python3.11-venv", "python3-pip", "ca-certificates", "netbase", "tzdata")
TOOLS = {"buildah": "buildah", "podman": "podman", "debootstrap": "debootstrap"}  # command -> package
RECIPE_LABEL = "io.kubeloop.base.recipe"
PATH = "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # the official's
LINKS = {  # /usr/local/bin/<name> -> Debian's program, as the official image puts them there
    "python": "/usr/bin/python3.11",
    "python3": "/usr/bin/python3.11",
    "python3.11": "/usr/bin/python3.11",
    "pip": "/usr/bin/pip3",
    "pip3": "/usr/bin/pip3",
}
DPKG_EXCLUDES = """\
# As in Debian's slim images: no documentation, manuals or translations in later installs either.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
"""
REMOVE = (
    "var/lib/apt/lists/*", "var/cache/apt/*", "var/cache/debconf/*-old", "var/lib/dpkg/*-old",
    "var/log/*", "usr/share/man/*", "usr/share/groff/*", "usr/share/info/*", "usr/share/lintian/*",
    "usr/share/linda/*", "usr/share/locale/*", "dev/*", "proc/*", "sys/*", "run/*", "tmp/*",
    "root/.cache", "etc/hostname", "usr/lib/python3.11/EXTERNALLY-MANAGED",
)  # fmt: skip
# The packages, links, dpkg rules and removals define the image: a change to any rebuilds it.
_RECIPE_PARTS = [SUITE, PACKAGES, PATH, LINKS, DPKG_EXCLUDES, REMOVE]
RECIPE = hashlib.sha256(json.dumps(_RECIPE_PARTS).encode()).hexdigest()[:16]

Log = Callable[[str], None]


def ensure_tools(log: Log = print) -> None:
    """Install buildah, podman and debootstrap from Debian when one is missing (needs root)."""
    missing = sorted({pkg for cmd, pkg in TOOLS.items() if shutil.which(cmd) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"missing {', '.join(missing)}: run apt-get install {' '.join(missing)} as root")
    log(f"installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def apt_sources(suite: str = SUITE, root: Path = Path("/")) -> list[tuple[str, str, str]]:
    """(uri, suite, components) of the machine's Debian sources for `suite` and its -updates and
    -security pockets, from deb822 `.sources` files and the one-line format alike."""
    found: list[tuple[str, str, str]] = []
    apt = root / "etc" / "apt"
    for path in sorted(apt.glob("sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(_deb822_fields(stanza))
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                continue
            for uri in fields.get("uris", "").split():
                for s in fields.get("suites", "").split():
                    found.append((uri, s, fields.get("components", "main")))
    for path in [apt / "sources.list", *sorted(apt.glob("sources.list.d/*.list"))]:
        if path.exists():
            for line in path.read_text().splitlines():
                parts = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(parts) >= 3 and parts[0] == "deb":
                    found.append((parts[1], parts[2], " ".join(parts[3:]) or "main"))
    return [(u, s, c) for u, s, c in found if s == suite or s.startswith(suite + "-")]


def _deb822_fields(stanza: str) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for line in stanza.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line[0].isspace() and fields:  # a continuation line
            fields[-1] = (fields[-1][0], f"{fields[-1][1]} {line.strip()}")
        elif ":" in line:
            name, _, value = line.partition(":")
            fields.append((name.strip().lower(), value.strip()))
    return fields


def mirror(suite: str = SUITE, root: Path = Path("/")) -> str:
    for uri, s, _ in apt_sources(suite, root):
        if s == suite:
            return uri
    raise RuntimeError(f"no Debian source for {suite!r} in /etc/apt/sources.list(.d): cannot debootstrap")


def build_base(ref: str = BASE_REF, log: Log = print) -> None:
    """debootstrap, fit and import the base image as `ref` into the local containers storage."""
    with tempfile.TemporaryDirectory(prefix="kubeloop-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        log(f"debootstrap {SUITE} ({', '.join(PACKAGES)})")
        _in_mount_namespace(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                             SUITE, str(rootfs), mirror()])  # fmt: skip
        _configure(rootfs)
        log("apt-get -f install and upgrade inside the root")
        _in_mount_namespace(["sh", "-euc", _CHROOT_SCRIPT, "chroot", str(rootfs)])
        version = _clean(rootfs)
        _import(rootfs, ref, version)


# python3.11-venv's dependency on python3.11-distutils is not pulled in by --include: -f install it.
_CHROOT_SCRIPT = """
mount -t proc proc "$1/proc"
chroot "$1" env DEBIAN_FRONTEND=noninteractive LC_ALL=C sh -euc '
  apt-get update -qq
  apt-get -f install -y -qq --no-install-recommends
  apt-get dist-upgrade -y -qq --no-install-recommends
  apt-get clean'
"""


def _in_mount_namespace(argv: list[str]) -> None:
    """Mounts made by debootstrap or the chroot vanish with the namespace, even on failure.
    Quiet unless it fails; then the end of its output is in the error."""
    argv = ["unshare", "--mount", "--propagation", "private", *argv]
    result = subprocess.run(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[4:6])} exited {result.returncode}:\n{result.stdout[-6000:]}")


def _configure(rootfs: Path) -> None:
    sources = "".join(f"deb {uri} {suite} {components}\n" for uri, suite, components in apt_sources())
    (rootfs / "etc/apt/sources.list").write_text(sources)
    (rootfs / "etc/dpkg/dpkg.cfg.d/excludes").write_text(DPKG_EXCLUDES)
    shutil.copyfile("/etc/resolv.conf", rootfs / "etc/resolv.conf")


def _clean(rootfs: Path) -> str:
    """Remove what a slim image leaves out, add the /usr/local/bin links; returns Python's version."""
    for pattern in REMOVE:
        for path in rootfs.glob(pattern):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    for doc in (rootfs / "usr/share/doc").glob("*"):
        for path in doc.iterdir() if doc.is_dir() and not doc.is_symlink() else []:
            if path.name != "copyright":
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    (rootfs / "etc/resolv.conf").write_text("")  # the runtime mounts its own
    for name, target in LINKS.items():
        link = rootfs / "usr/local/bin" / name
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    out = subprocess.run(["chroot", str(rootfs), "/usr/bin/python3.11", "-c",
                          "import platform; print(platform.python_version())"],
                         check=True, capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip()


def _import(rootfs: Path, ref: str, python_version: str) -> None:
    changes = [
        f"ENV PATH={PATH}",
        "ENV LANG=C.UTF-8",
        f"ENV PYTHON_VERSION={python_version}",
        f"LABEL {RECIPE_LABEL}={RECIPE}",
        'LABEL org.opencontainers.image.description="python:3.11-slim-bookworm from Debian packages"',
        'CMD ["python3"]',
    ]
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    argv = ["podman", "import", "--quiet", *(a for c in changes for a in ("--change", c)), "-", ref]
    subprocess.run(argv, stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL)
    assert tar.stdout is not None
    tar.stdout.close()
    if tar.wait() != 0:
        raise RuntimeError(f"tar of {rootfs} failed")

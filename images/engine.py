"""The two ways an image gets built: a Docker engine when one answers, else buildah (with the local
base image, since there is no registry to pull the official one from)."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from images import base, oci

Log = Callable[[str], None]
# buildah/podman here: crun refuses cgroup v1 hybrid, and the default nofile limit (1048576) is
# above this machine's hard limit. Host networking lets RUN steps reach the package index as the
# host does.
BUILDAH_RUN_OPTIONS = ("--runtime", "runc", "--ulimit", "nofile=20000:20000", "--network", "host")
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # where Debian's pip and Python look


def host_ca_bundle() -> str | None:
    """The CA bundle the host's pip trusts (a TLS-inspecting proxy's CA may be in it)."""
    candidates = [os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                  ssl.get_default_verify_paths().cafile, IMAGE_CA_BUNDLE]  # fmt: skip
    return next((c for c in candidates if c and os.path.isfile(c)), None)


class Engine(Protocol):
    name: str

    def base_id(self, ref: str, log: Log) -> str:
        """The id of a FROM image, made available first (pulled, or built locally) when absent."""
        ...

    def build(self, dockerfile: Path, context: Path, ref: str, build_args: dict[str, str]) -> None: ...

    def export(self, ref: str, archive: Path) -> None:
        """Write the image as a tar archive that `ctr images import` reads, named `ref` inside."""
        ...


def _run(*argv: str) -> None:
    """Quiet unless it fails; then the end of its output is in the error."""
    result = subprocess.run(argv, text=True, capture_output=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-6000:]
        raise RuntimeError(f"{' '.join(argv[:2])} exited {result.returncode}:\n{output}")


def _build_arg_flags(build_args: dict[str, str]) -> list[str]:
    return [flag for k, v in sorted(build_args.items()) for flag in ("--build-arg", f"{k}={v}")]


class Docker:
    name = "docker"

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}

    def _id(self, ref: str) -> str | None:
        out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref],
                             capture_output=True, text=True, check=False)  # fmt: skip
        return out.stdout.strip() if out.returncode == 0 else None

    def base_id(self, ref: str, log: Log) -> str:
        if ref not in self._ids:
            found = self._id(ref)
            if found is None:
                log(f"docker pull {ref}")
                _run("docker", "pull", "--quiet", ref)
                found = self._id(ref)
            assert found, ref
            self._ids[ref] = found
        return self._ids[ref]

    def build(self, dockerfile: Path, context: Path, ref: str, build_args: dict[str, str]) -> None:
        _run("docker", "build", "--file", str(dockerfile), "--tag", ref, *_build_arg_flags(build_args),
             str(context))  # fmt: skip

    def export(self, ref: str, archive: Path) -> None:
        # Docker >= 25 writes an OCI layout in the same tar (index.json); older ones Docker's format.
        # ctr reads both.
        _run("docker", "save", "--output", str(archive), ref)


class Buildah:
    name = "buildah"

    def __init__(self, log: Log = print) -> None:
        base.ensure_tools(log)  # buildah, podman (exports) and debootstrap (the base), once
        self._ids: dict[str, str] = {}

    def _inspect(self, ref: str) -> dict[str, object] | None:
        out = subprocess.run(["buildah", "inspect", "--type", "image", ref],
                             capture_output=True, text=True, check=False)  # fmt: skip
        return json.loads(out.stdout) if out.returncode == 0 else None

    def _id_if_current(self, ref: str) -> str | None:
        """The image's id; for the local base only when built by the current recipe."""
        info = self._inspect(ref)
        if info is None:
            return None
        if ref == base.BASE_REF:
            # An official image put there by hand has no recipe label: it is used as it is.
            config = info.get("OCIv1")
            labels = config.get("config", {}).get("Labels") or {} if isinstance(config, dict) else {}
            if labels.get(base.RECIPE_LABEL, base.RECIPE) != base.RECIPE:
                return None
        image_id = info.get("FromImageID")
        return str(image_id) if image_id else None

    def base_id(self, ref: str, log: Log) -> str:
        if ref not in self._ids:
            found = self._id_if_current(ref)
            if found is None and ref == base.BASE_REF:
                found = self._build_base(ref, log)
            elif found is None:
                log(f"buildah pull {ref}")
                _run("buildah", "pull", "--quiet", ref)
                found = self._id_if_current(ref)
            if found is None:
                raise RuntimeError(f"base image {ref} is still not in the local containers storage")
            self._ids[ref] = found
        return self._ids[ref]

    def _build_base(self, ref: str, log: Log) -> str | None:
        # One base build at a time on the machine: a second caller waits, then finds it.
        with oci.locked(Path(tempfile.gettempdir()) / "kubeloop-base-image.lock"):
            if found := self._id_if_current(ref):
                return found
            log(f"building the local base image {ref} (a few minutes, once)")
            started = time.monotonic()
            base.build_base(ref, log)
            log(f"{ref:<42} built  {time.monotonic() - started:7.1f}s (local base)")
            return self._id_if_current(ref)

    def build(self, dockerfile: Path, context: Path, ref: str, build_args: dict[str, str]) -> None:
        # RUN steps see the host's CA bundle (mounted, so not part of any layer): pip then reaches
        # the package index exactly as the host does.
        bundle = host_ca_bundle()
        ca = ["--volume", f"{bundle}:{IMAGE_CA_BUNDLE}:ro"] if bundle else []
        # --force-rm: a failed step leaves no working container behind.
        args = _build_arg_flags(build_args)
        _run("buildah", "bud", "--layers", "--force-rm", "--quiet", *BUILDAH_RUN_OPTIONS, *ca,
             "--file", str(dockerfile), "--tag", ref, *args, str(context))  # fmt: skip

    def export(self, ref: str, archive: Path) -> None:
        # Uncompressed: gzip of a large image takes tens of seconds on 2 cores at every rebuild,
        # and containerd imports either kind. Through a layout shared by the archives of the cache
        # directory: podman skips the layers it already holds, so only new layers are exported.
        layout = archive.parent / "oci-layout"
        with oci.locked(archive.parent / ".oci-layout.lock"):
            _run("podman", "save", "--quiet", "--uncompressed", "--format", "oci-dir", "--output",
                 str(layout), ref)  # fmt: skip
            oci.write_archive(layout, ref, archive)
            oci.collect_garbage(layout)


def docker_answers() -> bool:
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def detect() -> Engine:
    """KUBELOOP_IMAGE_BUILDER=docker|buildah forces one; else Docker when its engine answers."""
    forced = os.environ.get("KUBELOOP_IMAGE_BUILDER", "")
    if forced not in ("", "docker", "buildah"):
        raise ValueError(f"KUBELOOP_IMAGE_BUILDER={forced!r}: expected docker or buildah")
    use_docker = forced == "docker" or (not forced and docker_answers())
    return Docker() if use_docker else Buildah()

"""Every image's Dockerfile: multi-stage, slim pinned base, only its own extra, non-root, read-only
friendly, OCI labels, an exec-form entrypoint that names a module that exists (and that the local
node runs for the same image). The installs themselves are in test_image_installs.py."""

from __future__ import annotations

import importlib.util
import re
import tomllib

import pytest

from tests.infra.localnode.images import KUBELOOP_MODULES
from tests.unit.packaging.images import (
    IMAGES,
    IMAGES_DIR,
    REPO,
    Image,
    copied_sources,
    dockerfile,
    extras,
)

BASE = re.compile(r"^python:3\.11-slim-bookworm(@sha256:[0-9a-f]{64})?$")
OCI_LABELS = ("title", "description", "version", "revision", "licenses", "base.name")
by_component = pytest.mark.parametrize("image", IMAGES, ids=[i.component for i in IMAGES])


def test_images_directory_holds_exactly_the_known_images() -> None:
    present = sorted(p.parent.name for p in IMAGES_DIR.glob("*/Dockerfile"))
    assert present == sorted(i.component for i in IMAGES)


def test_every_workload_package_has_an_image() -> None:
    """A package with a `python -m` entry point runs in some image (batch scoring runs in the server's)."""
    entry_points = {p.parent.name for p in (REPO / "operator" / "kubeloop").glob("*/__main__.py")}
    in_images = {i.module.removeprefix("kubeloop.") for i in IMAGES}
    assert entry_points - in_images <= {"cli", "batch"}, entry_points - in_images


@by_component
def test_dockerfile_installs_an_existing_extra_and_runs_an_existing_module(image: Image) -> None:
    docker = dockerfile(image.component)
    builder = docker.stage("builder")
    extra = docker.args(builder)["EXTRA"]
    assert extra == image.extra
    assert extra in extras() and extra != "dev"
    (install,) = [run for run in builder.all("RUN") if "[${EXTRA}]" in run]
    assert "/opt/kubeloop/bin/pip install" in install
    assert docker.entrypoint() == ["python", "-m", image.module]
    assert importlib.util.find_spec(image.module) is not None
    assert importlib.util.find_spec(f"{image.module}.__main__") is not None  # `python -m` needs it
    # The local node runs kubeloop/<component> images as the same module (tests/infra/localnode).
    assert KUBELOOP_MODULES[image.component] == image.module


@by_component
def test_dockerfile_is_multi_stage_on_a_pinned_slim_base(image: Image) -> None:
    docker = dockerfile(image.component)
    assert BASE.match(docker.global_args["PYTHON_IMAGE"]), docker.global_args
    assert [s.base for s in docker.stages] == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert [s.name for s in docker.stages] == ["builder", "runtime"]
    # The runtime stage only copies the builder's virtualenv: no RUN, so no build tools and no shell use.
    runtime = docker.runtime
    assert runtime.all("RUN") == []
    assert runtime.all("COPY") == ["--from=builder /opt/kubeloop /opt/kubeloop"]


@by_component
def test_runtime_is_non_root_and_read_only_friendly(image: Image) -> None:
    docker = dockerfile(image.component)
    runtime = docker.runtime
    assert runtime.all("USER") == ["65532:65532"]  # numeric, so runAsNonRoot can verify it
    env = docker.env(runtime)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == env["TMPDIR"] == "/tmp"  # the only writable place: an emptyDir in the pod
    assert env["PATH"].startswith("/opt/kubeloop/bin:")
    assert runtime.all("WORKDIR") == ["/tmp"]


@by_component
def test_runtime_carries_oci_labels_and_the_project_version(image: Image) -> None:
    docker = dockerfile(image.component)
    labels = docker.labels(docker.runtime)
    for name in OCI_LABELS:
        assert labels.get(f"org.opencontainers.image.{name}"), name
    assert labels["org.opencontainers.image.title"] == f"kubeloop-{image.component}"
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert docker.args(docker.runtime)["VERSION"] == version


@by_component
def test_build_context_has_what_the_builder_copies(image: Image) -> None:
    docker = dockerfile(image.component)
    sources = copied_sources(docker, docker.stage("builder"))
    assert sources == ["pyproject.toml", "README.md", "operator/"]
    for source in sources:
        assert (REPO / source).exists(), source
    ignore = (IMAGES_DIR / image.component / "Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in ignore
    for source in sources:
        assert f"!{source}" in ignore, f"{source} is filtered out of the build context"

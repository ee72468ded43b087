"""Every image's Dockerfile: multi-stage, slim pinned base, only its own extra, non-root, read-only
friendly, OCI labels, an exec-form entrypoint that names a module that exists. The installs
themselves are in test_image_installs.py."""

from __future__ import annotations

import importlib.util
import re
import tomllib

import pytest

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
    deps = docker.stage("deps")
    extra = docker.args(deps)["EXTRA"]
    assert extra == image.extra
    assert extra in extras() and extra != "dev"
    (install,) = [run for run in deps.all("RUN") if "[${EXTRA}]" in run]
    assert "venv --without-pip /opt/kubeloop" in install  # no pip in the image's virtualenv
    assert "pip --python /opt/kubeloop/bin/python install" in install
    assert docker.entrypoint() == ["python", "-m", image.module]
    assert importlib.util.find_spec(image.module) is not None
    assert importlib.util.find_spec(f"{image.module}.__main__") is not None  # `python -m` needs it


@by_component
def test_dockerfile_is_multi_stage_on_a_pinned_slim_base(image: Image) -> None:
    docker = dockerfile(image.component)
    assert BASE.match(docker.global_args["PYTHON_IMAGE"]), docker.global_args
    assert [s.name for s in docker.stages] == ["deps", "project", "app", "runtime"]
    assert [s.base for s in docker.stages] == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}", "deps", "deps"]
    # The runtime is deps plus the project's files: no RUN, so no build tools and no shell use.
    runtime = docker.runtime
    assert runtime.all("RUN") == []
    assert runtime.all("COPY") == ["--from=app /opt/app /opt/kubeloop"]
    # deps is the runtime's base: the pip settings of the build are ARGs, not ENV it would keep.
    assert docker.env(docker.stage("deps")) == {}


@by_component
def test_a_code_change_rebuilds_only_small_layers(image: Image) -> None:
    """The dependencies' layer depends on pyproject.toml alone; the project's files come in one layer
    after every other runtime instruction but the labels (the revision changes at every commit)."""
    docker = dockerfile(image.component)
    assert copied_sources(docker, docker.stage("deps")) == ["pyproject.toml"]
    assert docker.stage("app").all("COPY") == ["--from=project /opt/app /opt/app"]
    keywords = [keyword for keyword, _ in docker.runtime.instructions]
    assert keywords[-1] == "LABEL"
    assert keywords.index("COPY") > max(keywords.index(k) for k in ("ENV", "WORKDIR", "USER", "ENTRYPOINT"))
    assert set(keywords[keywords.index("COPY") + 1 :]) == {"ARG", "LABEL"}


def test_the_project_stage_is_the_same_in_every_image() -> None:
    """So that a layer cache builds the project once for all five images after a code change."""
    stages = {str(dockerfile(i.component).stage("project").instructions) for i in IMAGES}
    assert len(stages) == 1
    headers = {str(dockerfile(i.component).global_args) for i in IMAGES}
    assert len(headers) == 1


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
def test_build_context_has_what_the_project_stage_copies(image: Image) -> None:
    docker = dockerfile(image.component)
    sources = copied_sources(docker, docker.stage("project"))
    assert sources == ["pyproject.toml", "README.md", "operator/"]
    for source in sources:
        assert (REPO / source).exists(), source
    ignore = (IMAGES_DIR / image.component / "Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in ignore
    for source in sources:
        assert f"!{source}" in ignore, f"{source} is filtered out of the build context"

"""Each image's extra installed for real into a fresh virtualenv, as its Dockerfile does: the wheel
built from exactly what the project stage copies, with the extra's dependencies. Then the
entrypoint starts, every module of the image's packages imports, and what the image must not carry
is absent (`import sklearn` fails for the server and the operator, `import onnxruntime` for the
operator).

Bounded: downloads from PyPI land in a wheelhouse next to the test binaries (the package index here
sends no cache headers, so pip's own cache stays empty); later runs install from it offline, and go
back to PyPI only for what it lacks. The installs run in parallel.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kubeloop.contracts.tasks import EXIT_PERMANENT, TASK_ENV, TERMINATION_LOG_ENV
from kubeloop.router.__main__ import EX_CONFIG as ROUTER_EX_CONFIG
from kubeloop.serving.__main__ import EX_CONFIG
from tests.unit.packaging.images import IMAGES, REPO, Image, copied_sources, dockerfile
from tests.unit.packaging.wheelhouse import WHEELHOUSE, pip_offline_first, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
by_component = pytest.mark.parametrize("image", IMAGES, ids=[i.component for i in IMAGES])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from exactly the files the Dockerfiles' project stage copies."""
    root = tmp_path_factory.mktemp("image-build")
    src, out = root / "src", root / "wheels"
    sources = {
        tuple(copied_sources(d, d.stage("project"))) for d in map(dockerfile, (i.component for i in IMAGES))
    }
    (same,) = sources  # every image builds the same wheel
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for source in same:
        path = REPO / source
        if path.is_dir():
            shutil.copytree(path, src / source, ignore=ignore)
        else:
            (src / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / source)
    build_requires = tomllib.loads((src / "pyproject.toml").read_text())["build-system"]["requires"]
    python = Path(sys.executable)
    pip_offline_first(
        python, ["download", f"--dest={root / 'unused'}"], build_requires, WHEELHOUSE / "build", root
    )
    run(python, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
        f"--find-links={WHEELHOUSE / 'build'}", f"--wheel-dir={out}", src, cwd=root)  # fmt: skip
    (built,) = out.glob("kubeloop-*.whl")
    return built


def install(image: Image, wheel: Path, root: Path) -> Path:
    venv = root / f"venv-{image.component}"
    run(Path(sys.base_prefix) / "bin" / "python3", "-m", "venv", venv, cwd=root)
    python = venv / "bin" / "python"
    pip_offline_first(python, ["install"], [f"{wheel}[{image.extra}]"], WHEELHOUSE / image.extra, root)
    return python


@pytest.fixture(scope="module")
def venvs(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """component -> the python of a fresh virtualenv with only that image's extra."""
    root = tmp_path_factory.mktemp("image-venvs")
    with ThreadPoolExecutor(len(IMAGES)) as pool:
        futures = {i.component: pool.submit(install, i, wheel, root) for i in IMAGES}
        return {component: future.result() for component, future in futures.items()}


PROBE = textwrap.dedent(
    """
    import importlib, importlib.util, json, pkgutil, sys
    imported = []
    for package in {packages!r}:
        module = importlib.import_module(package)
        imported.append(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            if not info.name.endswith(".__main__"):  # those run their program on import
                importlib.import_module(info.name)
                imported.append(info.name)
    present = [name for name in {absent!r} if importlib.util.find_spec(name) is not None]
    print(json.dumps({{"imported": imported, "present": present, "prefix": sys.prefix,
                      "kubeloop": importlib.util.find_spec("kubeloop").origin}}))
    """
)


@by_component
def test_every_module_of_the_image_imports_and_nothing_else_is_installed(
    image: Image, venvs: dict[str, Path], tmp_path: Path
) -> None:
    python = venvs[image.component]
    probe = PROBE.format(packages=list(image.imports), absent=list(image.absent))
    report = json.loads(run(python, "-c", probe, cwd=tmp_path).stdout)
    assert report["kubeloop"].startswith(report["prefix"])  # the installed wheel, not the source tree
    assert set(image.imports) <= set(report["imported"])
    assert report["present"] == [], f"the {image.component} image must not carry {report['present']}"


@pytest.mark.parametrize(("component", "module"), [
    ("server", "sklearn"), ("operator", "sklearn"), ("operator", "onnxruntime"),
    ("router", "sklearn"), ("router", "onnxruntime"), ("monitor", "sklearn"),
])  # fmt: skip
def test_the_image_boundaries_hold(
    venvs: dict[str, Path], component: str, module: str, tmp_path: Path
) -> None:
    result = run(venvs[component], "-c", f"import {module}", cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert f"No module named '{module}'" in result.stderr


def test_operator_entrypoint_starts(venvs: dict[str, Path], tmp_path: Path) -> None:
    (image,) = [i for i in IMAGES if i.component == "operator"]
    result = run(venvs["operator"], "-m", image.module, "--help", cwd=tmp_path)
    assert result.stdout.startswith("usage: python -m kubeloop.operator")


def test_trainer_entrypoint_starts_and_reports_a_missing_task(venvs: dict[str, Path], tmp_path: Path) -> None:
    """The real start: no task in the environment is a permanent failure, reported in the termination
    message, which needs the whole training stack imported."""
    message = tmp_path / "termination-log"
    env = {TERMINATION_LOG_ENV: str(message)}
    result = run(venvs["trainer"], "-m", "kubeloop.trainer", cwd=tmp_path, check=False, **env)
    assert result.returncode == EXIT_PERMANENT, result.stderr
    summary = json.loads(message.read_text())
    assert summary["reason"] == "InvalidTask" and TASK_ENV in summary["message"]


def test_server_entrypoint_starts_and_refuses_a_missing_model(venvs: dict[str, Path], tmp_path: Path) -> None:
    result = run(venvs["server"], "-m", "kubeloop.serving", cwd=tmp_path, check=False)
    assert result.returncode == EX_CONFIG, result.stderr
    assert "Traceback" not in result.stderr
    assert "KUBELOOP_MODEL_URI" in result.stderr


def test_router_entrypoint_starts_and_refuses_a_missing_routing_source(
    venvs: dict[str, Path], tmp_path: Path
) -> None:
    result = run(venvs["router"], "-m", "kubeloop.router", cwd=tmp_path, check=False)
    assert result.returncode == ROUTER_EX_CONFIG, result.stderr
    assert "Traceback" not in result.stderr
    assert "KUBELOOP_ROUTING_CONFIGMAP" in result.stderr


def test_monitor_entrypoint_starts_and_reports_a_missing_task(venvs: dict[str, Path], tmp_path: Path) -> None:
    message = tmp_path / "termination-log"
    env = {TERMINATION_LOG_ENV: str(message)}
    result = run(venvs["monitor"], "-m", "kubeloop.monitor", cwd=tmp_path, check=False, **env)
    assert result.returncode == EXIT_PERMANENT, result.stderr
    summary = json.loads(message.read_text())
    assert (summary["outcome"], summary["reason"]) == ("Failed", "InvalidTask")
    assert TASK_ENV in summary["message"]


def test_the_wheel_carries_every_file_of_the_package(wheel: Path) -> None:
    """A directory without __init__.py, or a data file, would silently be left out of every image."""
    with zipfile.ZipFile(wheel) as archive:
        packed = {name for name in archive.namelist() if name.startswith("kubeloop/")}
    source = REPO / "operator"
    files = {
        str(path.relative_to(source))
        for path in (source / "kubeloop").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert files - packed == set()

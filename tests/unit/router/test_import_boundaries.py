"""The router image has no scikit-learn, onnxruntime, numpy, FastAPI, kubernetes client, MinIO client
or operator code: every router module must import with those blocked, and the app must come up."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.unit.api.crd_tools import REPO

BLOCKED = (
    "sklearn", "skl2onnx", "onnxruntime", "numpy", "pandas", "fastapi", "starlette", "uvicorn", "httpx",
    "aiohttp", "kopf", "kubernetes", "minio", "pydantic_settings", "kubeloop.controllers", "kubeloop.kube",
    "kubeloop.trainer", "kubeloop.planning", "kubeloop.operator", "kubeloop.store", "kubeloop.serving.app",
)  # fmt: skip

PROBE = textwrap.dedent(
    """
    import importlib.abc
    import pkgutil
    import sys

    BLOCKED = {blocked!r}

    def blocked(name):
        return any(name == b or name.startswith(b + ".") for b in BLOCKED)

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if blocked(name):
                raise ModuleNotFoundError(f"{{name}} is blocked: the router image does not have it")
            return None

    sys.meta_path.insert(0, Blocker())
    import {first}
    import kubeloop.router
    modules = [m.name for m in pkgutil.walk_packages(kubeloop.router.__path__, "kubeloop.router.")]
    for module in modules:
        __import__(module)
    from kubeloop.contracts.router import RouterSettings
    from kubeloop.router.app import Router
    router = Router(RouterSettings(routing_file="/nowhere.json"))
    leaked = sorted(m for m in sys.modules if blocked(m))
    assert not leaked, leaked
    print("imported", *modules)
    """
)


def run_probe(first: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(blocked=BLOCKED, first=first)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": f"{REPO / 'operator'}", "PATH": "/usr/bin:/bin"},
    )


def test_router_imports_without_what_its_image_lacks() -> None:
    result = run_probe("kubeloop.contracts.routing")
    assert result.returncode == 0, result.stderr
    for module in (
        "app",
        "httpserver",
        "upstream",
        "kubewatch",
        "filesource",
        "copies",
        "server",
        "__main__",
    ):
        assert f"kubeloop.router.{module}" in result.stdout


def test_the_blocker_really_blocks() -> None:
    result = run_probe("numpy")
    assert result.returncode != 0
    assert "numpy is blocked" in result.stderr

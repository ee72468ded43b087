"""The router image has no scikit-learn, onnxruntime, numpy, FastAPI, kubernetes client, MinIO client
or operator code: every router module must import with those blocked, and the app must come up."""

from __future__ import annotations

import subprocess

from tests.unit.import_probe import probe

BLOCKED = (
    "sklearn", "skl2onnx", "onnxruntime", "numpy", "pandas", "fastapi", "starlette", "uvicorn", "httpx",
    "aiohttp", "kopf", "kubernetes", "minio", "pydantic_settings", "kubeloop.controllers", "kubeloop.kube",
    "kubeloop.trainer", "kubeloop.planning", "kubeloop.operator", "kubeloop.store", "kubeloop.serving.app",
)  # fmt: skip

THEN = """
from kubeloop.contracts.router import RouterSettings
from kubeloop.router.app import Router
router = Router(RouterSettings(routing_file="/nowhere.json"))
"""


def run_probe(first: str) -> subprocess.CompletedProcess[str]:
    return probe("kubeloop.router", "router", BLOCKED, [first], then=THEN)


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

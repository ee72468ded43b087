"""The server image has no scikit-learn, kopf, kubernetes, pandas or pydantic-settings, and no operator
code: every serving module (and a whole app) must come up with those imports blocked."""

from __future__ import annotations

import subprocess

from tests.unit.import_probe import probe

BLOCKED = (
    "sklearn",
    "skl2onnx",
    "kopf",
    "kubernetes",
    "pandas",
    "scipy",
    "pyarrow",
    "pydantic_settings",
    "kubeloop.controllers",
    "kubeloop.kube",
    "kubeloop.trainer",
    "kubeloop.planning",
    "kubeloop.operator",
)

THEN = """
from kubeloop.contracts.serving import ServingSettings
from kubeloop.serving.app import create_app
from kubeloop.store.client import Store
settings = ServingSettings(model_name="m", model_version=1, model_uri="file:///nowhere/model.onnx",
                           model_sha256="0" * 64, store_root="file:///tmp/nowhere")
app = create_app(settings, Store())
assert "/v2/models/{name}/infer" in app.openapi()["paths"]
"""


def run_probe(first: list[str]) -> subprocess.CompletedProcess[str]:
    return probe("kubeloop.serving", "server", BLOCKED, first, then=THEN)


def test_server_imports_without_what_its_image_lacks() -> None:
    result = run_probe(["kubeloop.contracts.serving"])
    assert result.returncode == 0, result.stderr
    for module in (
        "app",
        "runtime",
        "decoding",
        "inference",
        "requestlog",
        "feedback",
        "validate",
        "__main__",
    ):
        assert f"kubeloop.serving.{module}" in result.stdout


def test_the_blocker_really_blocks() -> None:
    result = run_probe(["kubeloop.trainer"])
    assert result.returncode != 0
    assert "kubeloop.trainer is blocked" in result.stderr

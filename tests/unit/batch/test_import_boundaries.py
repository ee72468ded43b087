"""The batch workload runs with the server image: no scikit-learn, pandas, kopf, kubernetes or operator
code; pyarrow and onnxruntime are there. Every batch module must import with the others blocked."""

from __future__ import annotations

import subprocess

from tests.unit.import_probe import probe
from tests.unit.packaging.images import IMAGES

BLOCKED = (
    "sklearn", "skl2onnx", "kopf", "kubernetes", "pandas", "scipy", "pydantic_settings",
    "kubeloop.controllers", "kubeloop.kube", "kubeloop.trainer", "kubeloop.planning", "kubeloop.operator",
)  # fmt: skip


def run_probe(first: list[str]) -> subprocess.CompletedProcess[str]:
    return probe("kubeloop.batch", "server", BLOCKED, first, then="import kubeloop.batch.__main__\n",
                 import_main=False)  # fmt: skip


def test_batch_imports_without_what_the_server_image_lacks() -> None:
    result = run_probe(["kubeloop.contracts.batch"])
    assert result.returncode == 0, result.stderr
    for module in ("shard", "reading", "rows", "output", "notify", "units", "pipeline"):
        assert f"kubeloop.batch.{module}" in result.stdout


def test_the_blocker_really_blocks() -> None:
    result = run_probe(["kubeloop.planning"])
    assert result.returncode != 0 and "kubeloop.planning is blocked" in result.stderr


def test_the_server_image_carries_the_batch_workload() -> None:
    (server,) = [image for image in IMAGES if image.component == "server"]
    assert "kubeloop.batch" in server.imports

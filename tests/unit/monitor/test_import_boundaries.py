"""The monitor image has NumPy, SciPy and the store client only: every monitor module must import with
scikit-learn, onnxruntime, pandas, kopf, kubernetes and the operator's code blocked."""

from __future__ import annotations

import subprocess

from tests.unit.import_probe import probe

BLOCKED = (
    "sklearn", "onnxruntime", "skl2onnx", "pandas", "kopf", "kubernetes", "fastapi", "pydantic_settings",
    "kubeloop.controllers", "kubeloop.kube", "kubeloop.trainer", "kubeloop.planning", "kubeloop.operator",
    "kubeloop.serving",
)  # fmt: skip


def run_probe(first: str) -> subprocess.CompletedProcess[str]:
    return probe("kubeloop.monitor", "monitor", BLOCKED, [first], import_main=False)


def test_monitor_imports_without_what_its_image_lacks() -> None:
    result = run_probe("kubeloop.contracts.monitoring")
    assert result.returncode == 0, result.stderr
    for module in ("main", "run", "scan", "stats", "accumulate", "drift", "join", "metrics", "html"):
        assert f"kubeloop.monitor.{module}" in result.stdout


def test_the_blocker_really_blocks() -> None:
    result = run_probe("kubeloop.trainer")
    assert result.returncode != 0 and "kubeloop.trainer is blocked" in result.stderr

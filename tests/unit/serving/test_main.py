"""The entry point's exit codes for a pod template that cannot work (no model, no store needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kubeloop.contracts.results import ValidationResult
from tests.unit.api.crd_tools import REPO


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PYTHONPATH": str(REPO / "operator"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "kubeloop.serving", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_environment_exits_78_naming_the_variable() -> None:
    done = run(env={"KUBELOOP_MODEL_NAME": "churn", "KUBELOOP_MODEL_VERSION": "x"})
    assert done.returncode == 78
    entry = json.loads(done.stderr.strip().splitlines()[-1])  # a JSON log line
    assert entry["level"] == "ERROR" and "KUBELOOP_MODEL_VERSION" in entry["message"]
    assert "KUBELOOP_MODEL_URI" in entry["message"]


def test_half_configured_store_is_a_config_error() -> None:
    env = {
        "KUBELOOP_MODEL_NAME": "m",
        "KUBELOOP_MODEL_VERSION": "1",
        "KUBELOOP_MODEL_SHA256": "0" * 64,
        "KUBELOOP_MODEL_URI": "s3://kubeloop/x/model.onnx",
        "KUBELOOP_S3_ENDPOINT": "http://127.0.0.1:1",
    }
    done = run(env=env)
    assert done.returncode == 78 and "KUBELOOP_S3_ACCESS_KEY" in done.stderr


def test_unknown_command_is_a_usage_error() -> None:
    assert run("serve-please").returncode == 64


def test_validate_without_an_artifact_reports_a_permanent_failure(tmp_path: Path) -> None:
    termination = tmp_path / "termination-log"
    done = run("validate", env={"KUBELOOP_TERMINATION_LOG": str(termination)})
    assert done.returncode == 2
    result = ValidationResult.model_validate_json(termination.read_text())
    assert (result.ok, result.reason) == (False, "LoadFailed") and "KUBELOOP_MODEL_URI" in result.message

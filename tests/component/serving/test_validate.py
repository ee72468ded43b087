"""`python -m kubeloop.serving validate`, the ModelVersion validation Job, run as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubeloop.contracts.results import ValidationResult
from kubeloop.store.client import Store
from kubeloop.store.digest import sha256_bytes
from tests.component.serving.conftest import REPO, TrainedModel, s3_env
from tests.component.serving.test_loading import copy_model, tampered
from tests.infra.minio_server import MinioServer
from tests.infra.processes import free_port


def validate(
    tmp_path: Path, env_s3: dict[str, str], model_uri: str, sha256: str, card_uri: str | None = None
) -> tuple[int, ValidationResult]:
    termination = tmp_path / "termination-log"
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(REPO / "operator"),
        **env_s3,
        "KUBELOOP_MODEL_URI": model_uri,
        "KUBELOOP_MODEL_SHA256": sha256,
        "KUBELOOP_TERMINATION_LOG": str(termination),
    }
    if card_uri:
        env["KUBELOOP_CARD_URI"] = card_uri
    done = subprocess.run(
        [sys.executable, "-m", "kubeloop.serving", "validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    text = termination.read_text()
    assert len(text.encode()) <= 4096
    return done.returncode, ValidationResult.model_validate_json(text)


def test_a_good_artifact_is_validated(tmp_path: Path, classifier: TrainedModel, minio: MinioServer) -> None:
    code, result = validate(tmp_path, s3_env(minio), classifier.model_uri, classifier.sha256)
    assert (code, result.ok, result.reason) == (0, True, "Validated"), result
    assert result.rows == len(classifier.golden_rows) and result.max_abs_diff is not None
    assert result.max_abs_diff <= classifier.card.golden.tolerance


def test_the_regressor_is_validated(tmp_path: Path, regressor: TrainedModel, minio: MinioServer) -> None:
    code, result = validate(
        tmp_path, s3_env(minio), regressor.model_uri, regressor.sha256, regressor.card_uri
    )
    assert (code, result.reason) == (0, "Validated"), result


def test_a_tampered_artifact_is_a_digest_mismatch(
    tmp_path: Path, classifier: TrainedModel, minio: MinioServer, store: Store
) -> None:
    folder = copy_model(store, minio, classifier, onnx=tampered(store, classifier))
    code, result = validate(tmp_path, s3_env(minio), folder + "model.onnx", classifier.sha256)
    assert (code, result.ok, result.reason) == (2, False, "DigestMismatch"), result
    assert classifier.sha256 in result.message


@pytest.mark.parametrize("change", ["labels", "probabilities"])
def test_altered_golden_outputs_are_a_golden_mismatch(
    tmp_path: Path, classifier: TrainedModel, minio: MinioServer, store: Store, change: str
) -> None:
    golden = classifier.card.golden
    assert golden.labels is not None and golden.probabilities is not None
    if change == "labels":
        update = {
            "labels": [
                golden.labels[0] if i else ("no" if golden.labels[0] == "yes" else "yes")
                for i in range(len(golden.labels))
            ]
        }
    else:
        shifted = [[p + 0.01 * (i == 3) for p in row] for i, row in enumerate(golden.probabilities)]
        update = {"probabilities": shifted, "labels": golden.labels}
    card = classifier.card.model_copy(update={"golden": golden.model_copy(update=update)})
    folder = copy_model(store, minio, classifier, card=card)
    code, result = validate(tmp_path, s3_env(minio), folder + "model.onnx", classifier.sha256)
    assert (code, result.reason) == (2, "GoldenMismatch"), result
    assert (
        "labels differ at row 0" if change == "labels" else "probabilities differ by up to 0.01"
    ) in result.message


def test_garbage_with_the_right_digest_fails_to_load(
    tmp_path: Path, classifier: TrainedModel, minio: MinioServer, store: Store
) -> None:
    garbage = b"not an onnx graph"
    card = classifier.card.model_copy(update={"files": {}})
    folder = copy_model(store, minio, classifier, onnx=garbage, card=card)
    code, result = validate(tmp_path, s3_env(minio), folder + "model.onnx", sha256_bytes(garbage))
    assert (code, result.reason) == (2, "LoadFailed"), result


def test_missing_artifact_and_unavailable_store(tmp_path: Path, minio: MinioServer) -> None:
    code, result = validate(tmp_path, s3_env(minio), f"s3://{minio.bucket}/runs/none/model.onnx", "0" * 64)
    assert (code, result.reason) == (2, "ArtifactMissing"), result
    dead = {**s3_env(minio), "KUBELOOP_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    code, result = validate(tmp_path, dead, f"s3://{minio.bucket}/runs/x/model.onnx", "0" * 64)
    assert (code, result.reason) == (1, "StoreUnavailable"), result  # the Job may retry

"""Termination messages stay within the kubelet's 4 KiB and stay valid JSON, trials included."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeloop.contracts.results import TrainingResult, TrialResult, Violation, write_result
from kubeloop.contracts.tasks import RESULT_LIMIT


@pytest.mark.parametrize("kind", [TrainingResult, TrialResult])
def test_many_violations_are_trimmed_to_fit(
    kind: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBELOOP_TERMINATION_LOG", str(tmp_path / "log"))
    violations = [Violation(rule="range", column=f"c{i}", count=i, message="x" * 200) for i in range(60)]
    extra = {"index": 3, "params": {}, "metric": "accuracy"} if kind is TrialResult else {}
    result = kind(outcome="DataInvalid", reason="DataValidationFailed", message="m" * 3000,
                  violations=violations, **extra)  # fmt: skip
    text = write_result(result)
    assert len(text.encode()) <= RESULT_LIMIT and (tmp_path / "log").read_text() == text
    kept = kind.model_validate_json(text)
    assert len(kept.violations) == 5 and kept.violations[0] == violations[0] and len(kept.message) == 500

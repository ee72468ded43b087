"""`python -m kubeloop.serving validate`: the ModelVersion validation Job, run with the server image.

Download, check sha256, load in onnxruntime, replay the golden rows and compare. The verdict goes
to the termination message as a ValidationResult; the exit code tells the Job controller whether
a retry could help: 0 valid, 2 invalid (permanent), 1 store unavailable (retry).
"""

from __future__ import annotations

import logging

from kubeloop.contracts.results import ValidationResult, write_result
from kubeloop.contracts.serving import ArtifactSettings
from kubeloop.contracts.tasks import EXIT_OK, EXIT_PERMANENT, EXIT_TRANSIENT
from kubeloop.serving.loading import LoadError, fetch, load, replay_golden
from kubeloop.store.client import RetryPolicy, Store, StoreUnavailable

log = logging.getLogger("kubeloop.serving.validate")
# The workloads' shared exit codes: the Job's podFailurePolicy fails at once on EXIT_PERMANENT.
EXIT_VALID, EXIT_STORE_UNAVAILABLE, EXIT_INVALID = EXIT_OK, EXIT_TRANSIENT, EXIT_PERMANENT


def validate(store: Store, settings: ArtifactSettings) -> ValidationResult:
    try:
        model = load(fetch(store, settings))
        report = replay_golden(model)
    except StoreUnavailable as error:
        return ValidationResult(ok=False, reason="StoreUnavailable", message=str(error))
    except LoadError as error:
        return ValidationResult(ok=False, reason=error.reason, message=error.message)
    return ValidationResult(
        ok=True,
        reason="Validated",
        message=report.message,
        max_abs_diff=report.max_abs_diff,
        rows=report.rows,
    )


def exit_code(result: ValidationResult) -> int:
    if result.ok:
        return EXIT_VALID
    return EXIT_STORE_UNAVAILABLE if result.reason == "StoreUnavailable" else EXIT_INVALID


def main() -> int:
    try:
        settings = ArtifactSettings.from_env()
        store = Store.from_env(RetryPolicy(attempts=4, first_delay=0.5))  # then exit 1: the Job retries
    except ValueError as error:  # a bad pod template: say so in the result, as a permanent failure
        result = ValidationResult(ok=False, reason="LoadFailed", message=str(error))
    else:
        result = validate(store, settings)
    write_result(result)
    level = logging.INFO if result.ok else logging.ERROR
    log.log(level, "validation finished", extra={"reason": result.reason, "detail": result.message})
    return exit_code(result)

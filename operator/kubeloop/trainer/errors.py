"""Why a training stops: a reason for the condition, a message for people, an exit code for the Job."""

from __future__ import annotations

from collections.abc import Sequence

from kubeloop.contracts.model import DatasetRef
from kubeloop.contracts.results import Outcome, Violation
from kubeloop.contracts.tasks import EXIT_PERMANENT, EXIT_TRANSIENT


class TrainerFailure(Exception):
    """The run cannot go on. Permanent by default: the same input would fail the same way."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        exit_code: int = EXIT_PERMANENT,
        outcome: Outcome = "Failed",
        violations: Sequence[Violation] = (),
        dataset: DatasetRef | None = None,
    ) -> None:
        super().__init__(message)
        self.reason, self.message, self.exit_code = reason, message, exit_code
        self.outcome: Outcome = outcome
        self.violations = list(violations)
        self.dataset = dataset  # the fingerprint, when the data was read (DataInvalid)


def invalid_spec(message: str) -> TrainerFailure:
    return TrainerFailure("InvalidSpec", message)


def store_unavailable(message: str) -> TrainerFailure:
    # Transient: the Job's backoffLimit retries the pod once the store may be back.
    return TrainerFailure("StoreUnavailable", message, exit_code=EXIT_TRANSIENT)

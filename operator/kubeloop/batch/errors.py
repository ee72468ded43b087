"""Why a shard or a notification stops, and whether running it again could help."""

from __future__ import annotations

from kubeloop.contracts.tasks import EXIT_PERMANENT, EXIT_TRANSIENT


class BatchFailure(Exception):
    """`reason` is one CamelCase word for the status; permanent failures are not retried."""

    def __init__(self, reason: str, message: str, *, permanent: bool = True) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message, self.permanent = reason, message, permanent

    @property
    def exit_code(self) -> int:
        return EXIT_PERMANENT if self.permanent else EXIT_TRANSIENT

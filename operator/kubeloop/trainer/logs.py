"""JSON lines on stdout: one object per line, so `kubectl logs` stays machine-readable.

Only stages, timings and sizes are logged; never the task's store keys (they are not in the task)
nor data values.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any


def _line(level: str, fields: dict[str, Any]) -> None:
    record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": level, **fields}
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


def event(stage: str, **fields: Any) -> None:
    """A stage reached, with whatever figures describe it (rows, seconds, sha256...)."""
    _line("info", {"stage": stage, **fields})


def warning(stage: str, message: str, **fields: Any) -> None:
    _line("warning", {"stage": stage, "message": message, **fields})


@contextmanager
def timed(stage: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Log `stage` with its duration once the block ends; the block may add fields to the dict."""
    extra: dict[str, Any] = {}
    started = time.perf_counter()
    yield extra
    event(stage, seconds=round(time.perf_counter() - started, 3), **fields, **extra)


class JsonLinesHandler(logging.Handler):
    """Library logs (the store's retry warnings, captured Python warnings) as JSON lines too."""

    def emit(self, record: logging.LogRecord) -> None:
        _line(
            record.levelname.lower(),
            {"stage": "log", "logger": record.name, "message": record.getMessage()},
        )


def configure() -> None:
    """Idempotent; leaves other handlers alone (a test runner's, when main() runs in-process)."""
    root = logging.getLogger()
    if not any(isinstance(h, JsonLinesHandler) for h in root.handlers):
        root.addHandler(JsonLinesHandler())
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)  # sklearn's ConvergenceWarning etc. become lines, not stderr noise

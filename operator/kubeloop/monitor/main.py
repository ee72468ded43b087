"""Entry point: run the task, leave the summary in the termination message, exit 0 (any verdict),
1 (transient: the store is down; the Job retries) or 2 (permanent: bad task, no profile)."""

from __future__ import annotations

import json
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from kubeloop.contracts.monitoring import MonitorSummary, MonitorTask
from kubeloop.contracts.tasks import EXIT_OK, EXIT_PERMANENT, EXIT_TRANSIENT
from kubeloop.monitor.run import run
from kubeloop.store.client import ObjectMissing, Store, StoreUnavailable


def log(level: str, stage: str, **fields: Any) -> None:
    """One JSON object per line on stdout; figures only, never data values or keys."""
    record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": level, "stage": stage}
    sys.stdout.write(json.dumps({**record, **fields}, default=str) + "\n")
    sys.stdout.flush()


def failure(task: MonitorTask | None, reason: str, message: str) -> MonitorSummary:
    return MonitorSummary(outcome="Failed", reason=reason, message=message[:2000], time=datetime.now(UTC),
                          version=task.version if task else 1)  # fmt: skip


def execute(task: MonitorTask) -> tuple[MonitorSummary, int]:
    try:
        store = Store.from_env()
        started = time.perf_counter()
        report = run(task, store)
    except ObjectMissing as error:
        return failure(task, "ProfileMissing", f"the model version's profile or card is missing: {error}"), (
            EXIT_PERMANENT
        )
    except StoreUnavailable as error:
        return failure(
            task, "StoreUnavailable", f"the artifact store is unavailable: {error}"
        ), EXIT_TRANSIENT
    except (ValueError, ValidationError) as error:  # a profile or card that does not parse, a bad setting
        return failure(task, "InvalidInput", f"{type(error).__name__}: {error}"), EXIT_PERMANENT
    except Exception as error:  # a bug or a fault of the node: the Job's backoffLimit may retry
        log(
            "warning", "crashed", message=f"{type(error).__name__}: {error}", traceback=traceback.format_exc()
        )
        return failure(task, "InternalError", f"{type(error).__name__}: {error}"), EXIT_TRANSIENT
    log("info", "done", phase=report.phase, rows=report.samples, requests=report.requests, files=report.files,
        drifted=len(report.drifted_features), seconds=round(time.perf_counter() - started, 3),
        report=report.report_uri)  # fmt: skip
    return MonitorSummary.of(report), EXIT_OK


def main() -> int:
    try:
        task = MonitorTask.from_env()
    except (ValueError, ValidationError) as error:
        summary = failure(None, "InvalidTask", f"the monitor task is invalid: {error}")
        summary.write()
        log("error", "task", message=summary.message)
        return EXIT_PERMANENT
    log("info", "start", namespace=task.namespace, monitor=task.monitor, deployment=task.deployment,
        version=task.version, window_seconds=task.window_seconds)  # fmt: skip
    summary, code = execute(task)
    summary.write()
    if code != EXIT_OK:
        log("error", "failed", reason=summary.reason, message=summary.message)
    return code

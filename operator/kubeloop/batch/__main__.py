"""`python -m kubeloop.batch [score|notify]`, with the server image (the operator sets the command).

Exit codes (contracts/tasks.py): 0 done, 1 worth retrying (the store or a receiver was unreachable),
2 retrying cannot help (bad input, too many rejects, a tampered artifact, a refused notification).
"""

from __future__ import annotations

import logging
import os
import sys
import time

from pydantic import ValidationError

from kubeloop.batch.errors import BatchFailure
from kubeloop.batch.notify import UndeliverableNotification, notify
from kubeloop.batch.pipeline import available_cpus, return_freed_memory
from kubeloop.batch.shard import score_shard
from kubeloop.contracts.batch import (
    INDEX_ENV,
    JOB_NAME_ENV,
    THREADS_ENV,
    BatchTask,
    NotifyResult,
    NotifyTask,
    ShardResult,
)
from kubeloop.contracts.results import write_result
from kubeloop.contracts.tasks import EXIT_OK, EXIT_PERMANENT, EXIT_TRANSIENT
from kubeloop.serving import jsonlog
from kubeloop.store.client import RetryPolicy, Store, StoreUnavailable

EX_USAGE = 64
MESSAGE_LIMIT = 1500  # the whole result must stay valid JSON within the 4 KiB termination message
log = logging.getLogger("kubeloop.batch")


def _store() -> Store:
    return Store.from_env(RetryPolicy(attempts=5, first_delay=0.5))


def score() -> int:
    return_freed_memory()
    shard = int(os.environ.get(INDEX_ENV) or 0)
    started = _now()
    try:
        task = BatchTask.from_env()
        run = os.environ.get(JOB_NAME_ENV, "").strip()
        if not run:
            raise ValueError(f"{JOB_NAME_ENV} is not set: the pod template passes the Job's name in it")
        if not 0 <= shard < task.shards:
            raise ValueError(f"{INDEX_ENV}={shard} is outside the {task.shards} shards of the task")
        threads = int(os.environ.get(THREADS_ENV) or available_cpus())
        store = _store()
    except (ValueError, ValidationError) as error:
        refused = ShardResult(shard=shard, outcome="Failed", reason="BadConfiguration", message=str(error))
        return _report(refused, EXIT_PERMANENT)
    try:
        manifest = score_shard(task, shard, run, store, threads)
    except BatchFailure as failure:
        result = _failed(task, shard, failure.reason, failure.message, started)
        return _report(result, failure.exit_code)
    except StoreUnavailable as error:
        return _report(_failed(task, shard, "StoreUnavailable", str(error), started), EXIT_TRANSIENT)
    except Exception as error:  # a bug or an unexpected library error: one retry, then the Job gives up
        log.exception("shard failed")
        return _report(
            _failed(task, shard, "Crashed", f"{type(error).__name__}: {error}", started), EXIT_TRANSIENT
        )
    folder = task.output.uri.rstrip("/") + f"/{run}/"
    result = ShardResult(
        shard=shard, outcome="Succeeded", reason="Scored",
        message=f"scored {manifest.rows_out} of {manifest.rows_in} rows ({manifest.rejects} rejected)",
        rows_in=manifest.rows_in, rows_out=manifest.rows_out, rejects=manifest.rejects,
        version=task.model.version, sha256=task.model.sha256,
        manifest=folder + f"manifests/shard-{shard:05d}.json", seconds=round(_now() - started, 3),
    )  # fmt: skip
    return _report(result, EXIT_OK)


def _failed(task: BatchTask, shard: int, reason: str, message: str, started: float) -> ShardResult:
    return ShardResult(shard=shard, outcome="Failed", reason=reason, message=message,
                       version=task.model.version, sha256=task.model.sha256,
                       seconds=round(_now() - started, 3))  # fmt: skip


def notify_main() -> int:
    try:
        task = NotifyTask.from_env()
        store = _store()
    except (ValueError, ValidationError) as error:
        return _report(NotifyResult(ok=False, reason="BadConfiguration", message=str(error)), EXIT_PERMANENT)
    try:
        result = notify(store, task)
    except UndeliverableNotification as refused:
        return _report(refused.result, EXIT_PERMANENT)
    except BatchFailure as failure:
        return _report(
            NotifyResult(ok=False, reason=failure.reason, message=failure.message), failure.exit_code
        )
    except StoreUnavailable as error:
        return _report(NotifyResult(ok=False, reason="StoreUnavailable", message=str(error)), EXIT_TRANSIENT)
    return _report(result, EXIT_OK if result.ok else EXIT_TRANSIENT)


def _report(result: ShardResult | NotifyResult, code: int) -> int:
    trimmed = result.model_copy(update={"message": result.message[:MESSAGE_LIMIT]})
    write_result(trimmed)
    log.log(logging.INFO if code == EXIT_OK else logging.ERROR, "finished",
            extra={"reason": trimmed.reason, "detail": trimmed.message, "exitCode": code})  # fmt: skip
    return code


def _now() -> float:
    return time.perf_counter()


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "score"
    jsonlog.configure()
    if command == "score":
        return score()
    if command == "notify":
        return notify_main()
    print(f"usage: python -m kubeloop.batch [score|notify] (got {command!r})", file=sys.stderr)
    return EX_USAGE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

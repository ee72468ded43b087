"""The hot path: body -> decoded batch -> onnxruntime -> encoded answer, metrics and log hand-off.

Transport-free, so the raw ASGI front (fastpath.py) and the FastAPI routes share it exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NamedTuple

import numpy as np
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from kubeloop.serving import protocol as p
from kubeloop.serving.decoding import BadInput, Batch, decode_records, decode_v2, parse_json
from kubeloop.serving.inference import OnnxModel, Prediction
from kubeloop.serving.requestlog import Logged
from kubeloop.serving.runtime import Runtime

log = logging.getLogger("kubeloop.serving")
MAX_REQUEST_ID = 256
# Generated request ids: a random per-process prefix and a counter (unique across pods, and far
# cheaper per request than uuid4).
_PREFIX = secrets.token_hex(6)
_COUNTER = itertools.count(1)


class ClientGone(Exception):
    """The client disconnected before sending the whole body: nobody is left to answer."""


class Answer(NamedTuple):
    status: int
    content: bytes
    request_id: str | None


def new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):010x}"


async def read_body(chunks: AsyncIterator[bytes], declared: str | None, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to be over `limit` (before reading it all)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadInput(f"body of {declared} bytes is over the limit of {limit} bytes", status=413)
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BadInput(f"body is over the limit of {limit} bytes", status=413)
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def score(
    runtime: Runtime,
    read: Callable[[], Awaitable[bytes]],
    route: tuple[str, str | None, str],  # model name, version (or None), "v1" | "v2"
    header_id: str | None,
) -> Answer:
    started = time.perf_counter()
    name, version, protocol = route
    endpoint = f"{protocol}-infer"
    request_id = header_id if header_id and len(header_id) <= MAX_REQUEST_ID else None
    try:
        model = runtime.model_for(name, version)
        payload = parse_json(await read())
        if protocol == "v2":
            batch = decode_v2(payload, model.specs, runtime.settings.max_rows)
            _check_outputs(runtime, batch.outputs)
        else:
            batch = decode_records(payload, model.specs, runtime.settings.max_rows)
        request_id = request_id or batch.request_id or new_request_id()
        prediction = await _predict(runtime, model, batch)
    except BadInput as error:
        return Answer(error.status, runtime.failure(error, endpoint, started), request_id)
    except ClientGone:
        raise
    except InvalidArgument as error:  # the graph refused values our checks let through
        bad = BadInput(f"the model cannot score this input: {error}")
        return Answer(400, runtime.failure(bad, endpoint, started), request_id)
    except Exception:  # a bug of ours: answer in the protocol's error form and count it
        log.exception("inference failed", extra={"requestId": request_id})
        bad = BadInput("internal error while scoring; see the server log", status=500)
        return Answer(500, runtime.failure(bad, endpoint, started), request_id)
    return _answer(runtime, model, batch, prediction, (started, protocol, request_id))


def _answer(
    runtime: Runtime, model: OnnxModel, batch: Batch, prediction: Prediction, request: tuple[float, str, str]
) -> Answer:
    started, protocol, request_id = request
    flagged = _flag(runtime, prediction)
    if protocol == "v2":
        outputs = p.v2_outputs(prediction, flagged)
        content = p.encode_v2(
            runtime.settings.model_name,
            runtime.version,
            batch.request_id or request_id,
            outputs,
            batch.outputs,
        )
    else:
        content = p.encode_v1(
            runtime.settings.model_name,
            runtime.version,
            request_id,
            prediction,
            classes=model.classes,
            flagged=flagged,
        )
    elapsed = time.perf_counter() - started
    runtime.metrics.observe_request(f"{protocol}-infer", 200, elapsed, batch.rows)
    runtime.metrics.observe_prediction(prediction, 0 if flagged is None else int(np.count_nonzero(flagged)))
    item = Logged(request_id, time.time(), elapsed * 1000, protocol, batch.columns, prediction, flagged)
    runtime.offer_log(item, batch.rows)
    return Answer(200, content, request_id)


def runs_inline(estimate_ms: float, budget_ms: float, connections: int) -> bool:
    """Whether a run stays on the event loop: when it is cheap (a thread hop costs more than it
    does), or when one client connection is open (nobody else can be waiting for the loop, so the
    hop would add only its wake-ups). Else a thread, where onnxruntime releases the GIL and the loop
    keeps reading and decoding the other connections' requests. Requests in progress are no
    measure of that: a run on the loop keeps the others unread, so they would always look alone."""
    return estimate_ms <= budget_ms or connections <= 1


async def _predict(runtime: Runtime, model: OnnxModel, batch: Batch) -> Prediction:
    if runs_inline(model.estimate_ms(batch.rows), runtime.inline_ms, runtime.connections()):
        return model.run(batch.feeds)
    return await asyncio.get_running_loop().run_in_executor(runtime.executor, model.run, batch.feeds)


def _check_outputs(runtime: Runtime, wanted: list[str] | None) -> None:
    if wanted is None:
        return
    available = runtime.output_names()
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise BadInput(f"unknown output '{unknown[0]}'; the model has: {', '.join(available)}", "outputs")


def _flag(runtime: Runtime, prediction: Prediction) -> np.ndarray | None:
    threshold = runtime.settings.review_threshold
    if threshold is None or prediction.probabilities is None:
        return None
    flagged: np.ndarray = prediction.probabilities.max(axis=1) < threshold
    return flagged

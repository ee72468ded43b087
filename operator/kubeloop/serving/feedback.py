"""/v1/feedback: the truth about earlier predictions (users' outcomes, reviewers' labels) into the store.

Each post is written at once, as its own file, before the answer: feedback is rare and precious,
so the client learns whether it was stored (503 means "send it again") instead of trusting a buffer.
"""

from __future__ import annotations

import gzip
import itertools
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from kubeloop.contracts.serving import FeedbackItem
from kubeloop.serving.decoding import BadInput, parse_json
from kubeloop.serving.requestlog import BOOT, iso
from kubeloop.store.client import Store

MAX_ITEMS = 1000


def parse_feedback(body: bytes, classes: list[str] | None) -> list[FeedbackItem]:
    """One item or a list of them; `actual` must be one of the classes (or a finite number)."""
    payload = parse_json(body)
    many = isinstance(payload, list)
    raw = payload if many else [payload]
    if not raw or len(raw) > MAX_ITEMS:
        raise BadInput(f"send between 1 and {MAX_ITEMS} feedback items", field="items")
    items = []
    for index, entry in enumerate(raw):
        where = f"[{index}]." if many else ""
        try:
            item = FeedbackItem.model_validate(entry)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "body"
            raise BadInput(f"{where}{field}: {first['msg']}", field=field) from None
        _check_actual(item.actual, classes, where)
        items.append(item)
    return items


def _check_actual(actual: Any, classes: list[str] | None, where: str) -> None:
    if classes is not None:
        if str(actual) not in classes:
            raise BadInput(f"{where}actual: {actual!r} is not one of the classes {classes}", field="actual")
    elif isinstance(actual, bool) or not isinstance(actual, int | float) or not math.isfinite(actual):
        raise BadInput(f"{where}actual: a regressor's actual value must be a finite number", field="actual")


class FeedbackSink:
    def __init__(
        self, store: Store, prefix: Callable[[datetime], str], model: str, version: int, pod: str
    ) -> None:
        self.store, self.prefix, self.model, self.version, self.pod = store, prefix, model, version, pod
        self._seq = itertools.count(1)

    def write(self, items: list[FeedbackItem]) -> str:
        """Store the items as one gzip JSON-lines file (blocking: call it from a thread); returns where."""
        now = time.time()
        lines = [
            orjson.dumps(
                {
                    **item.model_dump(by_alias=True),
                    "time": iso(now),
                    "model": self.model,
                    "version": self.version,
                }
            )
            for item in items
        ]
        folder = self.prefix(datetime.fromtimestamp(now, UTC))
        location = f"{folder}{self.pod}-{BOOT}-{next(self._seq):06d}.jsonl.gz"
        self.store.put_bytes(location, gzip.compress(b"\n".join(lines) + b"\n"), "application/gzip")
        return location

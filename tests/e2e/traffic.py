"""Client traffic for the loop: customers scored through the router, the truth sent back as feedback.

Every request and its outcome is kept, so a scenario can assert that none failed from start to end.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import requests

from tests.datasets import churn_frame

TARGET = "churned"


@dataclass
class Traffic:
    base: str  # the router, http://<pod ip>:8080
    model: str
    rate: float = 20.0  # requests per second
    feedback_share: float = 0.5  # customers whose outcome is later reported
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    shift: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def customers(self, seed: int) -> pd.DataFrame:
        return churn_frame(2000, seed=seed, shift=self.shift)

    def set_shift(self, shift: float) -> None:
        """From now on the customers come from a moved population."""
        with self._lock:
            self.shift = shift

    def _one(self, session: requests.Session, row: dict[str, object], churned: bool, feedback: bool) -> None:
        self.sent += 1
        try:
            answer = session.post(f"{self.base}/v1/models/{self.model}:predict", json={"instances": [row]},
                                  timeout=10)  # fmt: skip
        except requests.RequestException as error:
            self.failures.append(repr(error))
            return
        self.statuses[answer.status_code] += 1
        self.versions[answer.headers.get("x-kubeloop-version", "?")] += 1
        if answer.status_code != 200:
            self.failures.append(f"{answer.status_code}: {answer.text[:200]}")
            return
        if feedback:
            body = answer.json()
            truth = {
                "requestId": body["requestId"],
                "actual": as_class(body["predictions"][0], churned),
            }
            sent = session.post(f"{self.base}/v1/feedback", json=truth, timeout=10)
            if sent.status_code != 200:
                self.failures.append(f"feedback {sent.status_code}: {sent.text[:200]}")

    def _run(self) -> None:
        seed, pause = 100, 1.0 / self.rate
        with requests.Session() as session:
            while not self._stop.is_set():
                with self._lock:
                    shift, frame = self.shift, self.customers(seed)
                seed += 1
                labels = frame.pop(TARGET).tolist()
                records = frame.astype(object).where(frame.notna(), None).to_dict("records")
                for index, (row, churned) in enumerate(zip(records, labels, strict=True)):
                    if self._stop.is_set() or self.shift != shift:  # stopped, or the population moved
                        break
                    self._one(session, row, bool(churned), index % 100 < self.feedback_share * 100)
                    time.sleep(pause)

    def start(self) -> Traffic:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=20)

    def summary(self) -> str:
        by_version = ", ".join(f"v{v}: {n}" for v, n in sorted(self.versions.items()))
        return f"{self.sent} requests ({by_version}), {len(self.failures)} failed"


def as_class(prediction: dict[str, Any], churned: bool) -> object:
    """The truth spelled as the model's classes are (bool, int, or text in the model's own case)."""
    label = prediction["label"]
    if isinstance(label, bool):
        return churned
    if isinstance(label, int):
        return int(churned)
    classes = list(prediction.get("probabilities") or {})
    return next((c for c in classes if c.lower() == str(churned).lower()), str(churned))

"""One pass over the window's request logs: every feature's accumulator, the predictions', the data
quality counts and the labelled predictions, fed file by file."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubeloop.contracts.monitoring import DataQuality, MonitorTask
from kubeloop.contracts.profile import CategoricalProfile, FeatureProfile, Profile
from kubeloop.monitor.accumulate import CategoricalAccumulator, NumericAccumulator
from kubeloop.monitor.join import FeedbackIndex, Labelled, label_cutoff
from kubeloop.monitor.reading import ReadCounts, Window, files_between, read_records, records_in
from kubeloop.store.client import Store

Accumulator = NumericAccumulator | CategoricalAccumulator


def accumulator(profile: FeatureProfile) -> Accumulator:
    if isinstance(profile, CategoricalProfile):
        return CategoricalAccumulator(profile)
    return NumericAccumulator(profile)


@dataclass
class Scan:
    features: dict[str, Accumulator]
    prediction: Accumulator
    signature: frozenset[str]  # every input the model takes (unexpected columns are the others)
    output: str  # "label" or "value"
    labelled: Labelled | None = None
    feedback: FeedbackIndex | None = None
    cutoff: datetime | None = None  # requests after this have no label due yet
    requests: int = 0
    rows: int = 0
    missing_columns: Counter[str] = field(default_factory=Counter)
    unexpected: set[str] = field(default_factory=set)
    reads: ReadCounts = field(default_factory=ReadCounts)

    def add(self, records: list[dict[str, Any]]) -> None:
        """One file's records: a few Python steps per record, vectorized work per column."""
        usable = [r for r in records if isinstance(r.get("inputs"), dict) and isinstance(r.get("rows"), int)]
        self.reads.bad_records += len(records) - len(usable)
        records = usable
        if not records:
            return
        self.requests += len(records)
        self.rows += sum(r["rows"] for r in records)
        for record in records:
            self.unexpected.update(set(record["inputs"]) - self.signature)
        for name, acc in self.features.items():
            acc.update(self._column(records, name))
        self.prediction.update(self._outputs(records))
        if self.labelled is not None and self.feedback is not None:
            self._join(records)

    def _column(self, records: list[dict[str, Any]], name: str) -> list[Any]:
        values: list[Any] = []
        for record in records:
            column = record["inputs"].get(name)
            if isinstance(column, list):
                values.extend(column)
            else:  # the column is not in the request at all: its rows count as missing
                self.missing_columns[name] += record["rows"]
                values.extend([None] * record["rows"])
        return values

    def _outputs(self, records: list[dict[str, Any]]) -> list[Any]:
        values: list[Any] = []
        for record in records:
            column = (record.get("outputs") or {}).get(self.output)
            if isinstance(column, list):
                values.extend(column)
        return values

    def _join(self, records: list[dict[str, Any]]) -> None:
        assert self.labelled is not None and self.feedback is not None and self.cutoff is not None
        for record in records:
            at = record["_at"]
            if at > self.cutoff:
                continue
            self.labelled.eligible += record["rows"]
            labels = self.feedback.by_request.get(record.get("requestId"))  # type: ignore[arg-type]
            if labels:
                self.labelled.collect(record, labels, at)

    def quality(self) -> DataQuality:
        numeric = {n: a for n, a in self.features.items() if isinstance(a, NumericAccumulator)}
        categorical = {n: a for n, a in self.features.items() if isinstance(a, CategoricalAccumulator)}
        return DataQuality(
            rows=self.rows,
            missing_columns=dict(self.missing_columns),
            unexpected_columns=sorted(self.unexpected)[:100],
            invalid_values={n: a.invalid for n, a in numeric.items() if a.invalid},
            out_of_range={n: a.below + a.above for n, a in numeric.items() if a.below + a.above},
            unseen_categories={n: a.unseen for n, a in categorical.items() if a.unseen},
            bad_records=self.reads.bad_records,
            bad_files=self.reads.bad_files,
        )


def read_feedback(store: Store, task: MonitorTask, window: Window, now: datetime) -> FeedbackIndex:
    """Labels for the window's requests arrive during it and after it, until now."""
    index = FeedbackIndex(limit=task.max_feedback)
    folder = f"{task.store_root}feedback/{task.namespace}/{task.deployment}/"
    counts = ReadCounts()
    for location in files_between(store, folder, window.start, now):
        for record in read_records(store, location, counts):
            index.add(record)
    return index


def scan_window(
    store: Store, task: MonitorTask, profile: Profile, features: list[str], *, window: Window, now: datetime
) -> Scan:
    regression = profile.task == "regression"
    scan = Scan(
        features={name: accumulator(profile.features[name]) for name in features},
        prediction=accumulator(profile.prediction),
        signature=frozenset(profile.features),
        output="value" if regression else "label",
    )
    if task.performance is not None:
        scan.feedback = read_feedback(store, task, window, now)
        scan.labelled = Labelled(regression=regression)
        scan.cutoff = label_cutoff(window.end, task.performance)
    folder = f"{task.store_root}logs/{task.namespace}/{task.deployment}/v{task.version}/"
    for _hour, records in records_in(store, folder, window, scan.reads):
        scan.add(records)
    return scan

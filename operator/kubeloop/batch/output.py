"""What a shard writes: prediction parts, rejects with their reasons, and its manifest."""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from kubeloop.batch.errors import BatchFailure
from kubeloop.contracts.batch import (
    PREDICTION_COLUMN,
    PROBABILITY_PREFIX,
    OutputRef,
    StoredPart,
    part_name,
    rejects_name,
)
from kubeloop.serving.inference import OnnxModel, Prediction
from kubeloop.store.client import Store

REJECTS_PER_FILE = 10_000  # rejected rows buffered before a rejects file is written
CONTENT_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def output_names(model: OnnxModel) -> list[str]:
    if not model.classification:
        return [PREDICTION_COLUMN]
    return [PREDICTION_COLUMN, *(f"{PROBABILITY_PREFIX}{c}" for c in model.classes)]


def copied_columns(output: OutputRef, columns: list[str], model: OnnxModel, uri: str) -> list[str]:
    """The input columns written next to the predictions; a clash with an output column is refused."""
    copied = list(columns) if output.include_input_columns else list(output.key_columns)
    missing = [name for name in copied if name not in columns]
    if missing:
        raise BatchFailure("InputInvalid", f"{uri} lacks the key column(s) {', '.join(missing)}")
    clash = sorted(set(copied) & set(output_names(model)))
    if clash:
        raise BatchFailure(
            "InputInvalid",
            f"{uri}: input column(s) {', '.join(clash)} would clash with the output columns; rename them",
        )
    return copied


def predictions_table(
    model: OnnxModel, chunk: pa.Table, copied: list[str], keep: np.ndarray, prediction: Prediction
) -> pa.Table:
    """The copied input columns of the kept rows, then the prediction columns."""
    base = chunk.select(copied)
    if not keep.all():
        base = base.filter(pa.array(keep))
    arrays, names = list(base.columns), list(base.column_names)
    if model.classification:
        assert prediction.labels is not None and prediction.probabilities is not None
        arrays.append(pa.array(prediction.labels))
        names.append(PREDICTION_COLUMN)
        for index, label in enumerate(model.classes):
            arrays.append(pa.array(prediction.probabilities[:, index]))
            names.append(f"{PROBABILITY_PREFIX}{label}")
    else:
        assert prediction.values is not None
        arrays.append(pa.array(prediction.values))
        names.append(PREDICTION_COLUMN)
    return pa.Table.from_arrays(arrays, names=names)


def encode(table: pa.Table, file_format: str) -> bytes:
    sink = io.BytesIO()
    if file_format == "parquet":
        pq.write_table(table, sink, compression="snappy")
    else:
        pacsv.write_csv(table, sink)
    return sink.getvalue()


@dataclass
class PartWriter:
    """Writes part-<shard>-<seq> files under the run folder; names are deterministic, so a retried pod
    overwrites its own earlier attempt instead of adding to it."""

    store: Store
    folder: str
    shard: int
    file_format: str
    parts: list[StoredPart] = field(default_factory=list)

    def write(self, table: pa.Table) -> StoredPart:
        data = encode(table, self.file_format)
        location = self.folder + part_name(self.shard, len(self.parts), self.file_format)
        digest = self.store.put_bytes(location, data, CONTENT_TYPES[self.file_format])
        part = StoredPart(uri=location, rows=table.num_rows, bytes=len(data), sha256=digest)
        self.parts.append(part)
        return part


@dataclass
class Rejects:
    """Rejected rows: the piece they came from, their row number in it, the reason, and their values."""

    store: Store
    folder: str
    shard: int
    rows: list[dict[str, object]] = field(default_factory=list)
    files: list[StoredPart] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    count: int = 0

    def add(self, uri: str, piece: str | None, row: int, reason: str, values: dict[str, object]) -> None:
        self.rows.append({"file": uri, "range": piece or "", "row": row, "reason": reason,
                          "values": json.dumps(values, default=str)})  # fmt: skip
        self.reasons[_reason_kind(reason)] += 1
        self.count += 1
        if len(self.rows) >= REJECTS_PER_FILE:
            self.flush()

    def add_chunk(self, uri: str, piece: str | None, offset: int, chunk: pa.Table, *, columns: list[str],
                  reasons: dict[int, str]) -> None:  # fmt: skip
        for row in sorted(reasons):
            values = {name: chunk.column(name)[row].as_py() for name in columns}
            self.add(uri, piece, offset + row, reasons[row], values)

    def flush(self) -> None:
        if not self.rows:
            return
        table = pa.Table.from_pylist(self.rows)
        data = encode(table, "csv")
        location = self.folder + rejects_name(self.shard, len(self.files))
        digest = self.store.put_bytes(location, data, "text/csv")
        self.files.append(StoredPart(uri=location, rows=len(self.rows), bytes=len(data), sha256=digest))
        self.rows = []

    def top_reasons(self, limit: int = 20) -> dict[str, int]:
        return dict(self.reasons.most_common(limit))


def _reason_kind(reason: str) -> str:
    """The reason without the offending value, so that alike rows are counted together."""
    head = reason.partition(", got ")[0]
    return head.rsplit(": ", 1)[0] if "out of range" in head else head

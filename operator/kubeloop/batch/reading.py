"""Streaming a unit of input as tables of `chunk_rows` rows, never the whole file in memory.

Objects in the store are read through ranged GETs (each retried on its own) behind a buffer, so
CSV streams front to back and parquet reads only the footer and the column chunks it needs.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from kubeloop.batch.errors import BatchFailure
from kubeloop.batch.units import InputUnit
from kubeloop.store.client import ObjectMissing, Store
from kubeloop.store.uri import StoreUri

BUFFER_BYTES = 8 << 20  # one ranged GET per 8 MiB read


class StoreFile(io.RawIOBase):
    """A seekable, read-only view of one object; every read is a ranged GET."""

    def __init__(self, store: Store, uri: str, size: int) -> None:
        super().__init__()
        self.store, self.uri, self.size, self.position = store, uri, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(base + offset, 0)
        return self.position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self.size - self.position)
        if wanted <= 0:
            return 0
        data = self.store.get_range(self.uri, self.position, wanted)
        view[: len(data)] = data
        self.position += len(data)
        return len(data)


def open_input(store: Store, uri: str, size: int) -> BinaryIO:
    """A buffered, seekable stream over a stored file."""
    location = StoreUri.parse(uri)
    if location.scheme == "file":
        try:
            return open(location.key, "rb")  # the caller closes it
        except FileNotFoundError:
            raise BatchFailure("InputMissing", f"input file {uri} does not exist") from None
    return io.BufferedReader(StoreFile(store, uri, size), buffer_size=BUFFER_BYTES)


@dataclass
class Malformed:
    """Rows the parser skipped (CSV lines with the wrong number of fields), kept as rejects."""

    rows: list[tuple[int, str]] = field(default_factory=list)  # (row number or -1, reason with the text)
    seen: int = 0
    ignore: int = 0  # rows met again by a second pass (see csvinput), already recorded

    def handler(self, row: Any) -> str:
        if self.ignore:
            self.ignore -= 1
            return "skip"
        text = (row.text or "")[:200]
        reason = (
            f"malformed CSV row: expected {row.expected_columns} fields, got {row.actual_columns}: {text}"
        )
        self.rows.append((row.number if row.number is not None else -1, reason))
        self.seen += 1
        return "skip"

    def take(self) -> list[tuple[int, str]]:
        taken, self.rows = self.rows, []
        return taken


@dataclass
class Source:
    """An open unit: its column names and its tables of chunk_rows rows."""

    columns: list[str]
    tables: Iterator[pa.Table]
    malformed: Malformed
    close: Callable[[], None]


def open_unit(store: Store, unit: InputUnit, file_format: str, *, wanted: list[str] | None,
              required: list[str], numeric: set[str], chunk_rows: int) -> Source:  # fmt: skip
    """Stream `unit`; `wanted` columns only (None: all); a file lacking a `required` one is refused.
    CSV `numeric` columns are parsed as numbers when they all are (see csvinput)."""
    from kubeloop.batch.csvinput import csv_source  # noqa: PLC0415 - csvinput builds on this module

    stream = open_input(store, unit.uri, unit.size)
    try:
        if file_format == "parquet":
            return _parquet(stream, unit, wanted, required, chunk_rows)
        return csv_source(
            stream, unit, wanted=wanted, required=required, numeric=numeric, chunk_rows=chunk_rows
        )
    except BatchFailure:
        stream.close()
        raise
    except (pa.ArrowException, OSError) as error:
        stream.close()
        raise BatchFailure("InputInvalid", f"{unit.uri}: unreadable {file_format}: {error}") from None


def require(columns: list[str], required: list[str], uri: str) -> None:
    missing = [name for name in required if name not in columns]
    if missing:
        raise BatchFailure(
            "InputInvalid", f"{uri} lacks the column(s) {', '.join(missing)} (it has {', '.join(columns)})"
        )


def _parquet(stream: BinaryIO, unit: InputUnit, wanted: list[str] | None, required: list[str],
             chunk_rows: int) -> Source:  # fmt: skip
    parquet = pq.ParquetFile(stream)
    columns = list(parquet.schema_arrow.names)
    require(columns, required, unit.uri)
    keep = columns if wanted is None else [name for name in columns if name in wanted]
    groups = (
        list(range(unit.start, unit.end)) if unit.kind == "rowgroups" else list(range(parquet.num_row_groups))
    )
    record_batches = parquet.iter_batches(batch_size=chunk_rows, row_groups=groups, columns=keep)
    tables = rechunk(batches(record_batches, unit.uri, "parquet"), chunk_rows)
    return Source(keep, tables, Malformed(), stream.close)


def row_groups(store: Store, uri: str, size: int) -> int:
    """Row groups of a parquet file (reads its footer)."""
    with open_input(store, uri, size) as stream:
        try:
            return int(pq.ParquetFile(stream).num_row_groups)
        except (pa.ArrowException, OSError) as error:
            raise BatchFailure("InputInvalid", f"{uri}: unreadable parquet: {error}") from None
        except ObjectMissing:
            raise BatchFailure("InputMissing", f"input file {uri} does not exist") from None


def batches(source: Any, uri: str, file_format: str) -> Iterator[pa.RecordBatch]:
    """Record batches, with a parse error named after its file (retrying would read the same bytes)."""
    iterator = iter(source)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except pa.ArrowException as error:
            raise BatchFailure("InputInvalid", f"{uri}: unreadable {file_format}: {error}") from None
        yield batch


def rechunk(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly `rows` rows (the last one shorter) from batches of any size."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)

"""Streaming a unit of input as tables of `chunk_rows` rows, never the whole file in memory.

Objects in the store are read through ranged GETs (each retried on its own) behind a buffer, so
CSV streams front to back and parquet reads only the footer and the column chunks it needs. CSV
columns are read as text: the validator converts them and names any value that does not fit.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from kubeloop.batch.errors import BatchFailure
from kubeloop.batch.units import InputUnit
from kubeloop.store.client import ObjectMissing, Store
from kubeloop.store.uri import StoreUri

BUFFER_BYTES = 8 << 20  # one ranged GET per 8 MiB read
SCAN_BYTES = 64 << 10
# CSV blocks parsed at a time. The streaming reader keeps several blocks ahead, so this bounds its
# memory; a block of a few thousand rows is already enough to amortize the per-block costs.
BLOCK_BYTES = 256 << 10
MAX_HEADER_BYTES = 1 << 20


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


class LineRange(io.RawIOBase):
    """The header line, then the lines of a CSV file that start in [start, end).

    A range starting mid-line skips to the next line; the line that starts before `end` is read to
    its end even past `end`. Together the ranges of a file cover each line exactly once (quoted
    values must not contain line breaks for this to hold)."""

    def __init__(self, stream: BinaryIO, header: bytes, start: int, end: int) -> None:
        super().__init__()
        self.stream, self.pending, self.end, self.done = stream, header, end, False
        if start <= len(header):
            self.position = len(header)
            stream.seek(self.position)
            self.done = self.position >= end  # the range holds no more than the header
        else:
            self.position = start - 1  # from the byte before: a line starting exactly at start is ours
            stream.seek(self.position)
            self._skip_partial_line()

    def _skip_partial_line(self) -> None:
        while not self.done:
            data = self.stream.read(SCAN_BYTES)
            if not data:
                self.done = True
                return
            cut = data.find(b"\n")
            if cut < 0:
                self.position += len(data)
                continue
            self.position += cut + 1
            self.done = self.position >= self.end
            self._feed(data[cut + 1 :])
            return

    def _feed(self, data: bytes) -> None:
        """Queue `data` (it starts at self.position), stopping after the line that holds byte end-1."""
        if self.done or not data:
            return
        last_inside = self.end - 1 - self.position  # index of byte end-1 in data (negative: passed)
        if last_inside < len(data):
            newline = data.find(b"\n", max(last_inside, 0))
            if newline >= 0:
                data, self.done = data[: newline + 1], True
        self.pending += data
        self.position += len(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self.pending and not self.done:
            data = self.stream.read(max(len(view), SCAN_BYTES))
            if not data:
                self.done = True
                break
            self._feed(data)
        count = min(len(view), len(self.pending))
        view[:count] = self.pending[:count]
        self.pending = self.pending[count:]
        return count


def header_line(stream: BinaryIO, uri: str) -> bytes:
    """The first line of a CSV file, with its line break."""
    stream.seek(0)
    data = b""
    while len(data) < MAX_HEADER_BYTES:
        more = stream.read(SCAN_BYTES)
        data += more
        cut = data.find(b"\n")
        if cut >= 0:
            return data[: cut + 1]
        if not more:
            return data + b"\n" if data else b""
    raise BatchFailure("InputInvalid", f"{uri}: no line break in the first MiB: not a CSV file with a header")


def csv_columns(header: bytes, uri: str) -> list[str]:
    try:
        return list(pacsv.read_csv(io.BytesIO(header)).column_names) if header.strip() else []
    except pa.ArrowInvalid as error:
        raise BatchFailure("InputInvalid", f"{uri}: unreadable CSV header: {error}") from None


@dataclass
class Malformed:
    """CSV rows with the wrong number of fields: skipped by the parser, kept here as rejects."""

    rows: list[tuple[int, str]] = field(default_factory=list)  # (row number or -1, reason with the text)

    def handler(self, row: Any) -> str:
        text = (row.text or "")[:200]
        reason = (
            f"malformed CSV row: expected {row.expected_columns} fields, got {row.actual_columns}: {text}"
        )
        self.rows.append((row.number if row.number is not None else -1, reason))
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
              required: list[str], chunk_rows: int) -> Source:  # fmt: skip
    """Stream `unit`; `wanted` columns only (None: all); a file lacking a `required` one is refused."""
    stream = open_input(store, unit.uri, unit.size)
    try:
        if file_format == "parquet":
            return _parquet(stream, unit, wanted, required, chunk_rows)
        return _csv(stream, unit, wanted, required, chunk_rows)
    except BatchFailure:
        stream.close()
        raise
    except (pa.ArrowException, OSError) as error:
        stream.close()
        raise BatchFailure("InputInvalid", f"{unit.uri}: unreadable {file_format}: {error}") from None


def _require(columns: list[str], required: list[str], uri: str) -> None:
    missing = [name for name in required if name not in columns]
    if missing:
        raise BatchFailure(
            "InputInvalid", f"{uri} lacks the column(s) {', '.join(missing)} (it has {', '.join(columns)})"
        )


def _csv(stream: BinaryIO, unit: InputUnit, wanted: list[str] | None, required: list[str],
         chunk_rows: int) -> Source:  # fmt: skip
    header = header_line(stream, unit.uri)
    columns = csv_columns(header, unit.uri)
    _require(columns, required, unit.uri)
    body: BinaryIO = stream
    if unit.kind == "bytes":
        body = io.BufferedReader(LineRange(stream, header, unit.start, unit.end), buffer_size=1 << 20)
    else:
        stream.seek(0)
    malformed = Malformed()
    keep = columns if wanted is None else [name for name in columns if name in wanted]
    reader = pacsv.open_csv(
        body,
        read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=malformed.handler),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(keep, pa.string()), include_columns=keep, strings_can_be_null=True
        ),
    )
    return Source(keep, rechunk(_batches(reader, unit.uri, "csv"), chunk_rows), malformed, stream.close)


def _parquet(stream: BinaryIO, unit: InputUnit, wanted: list[str] | None, required: list[str],
             chunk_rows: int) -> Source:  # fmt: skip
    parquet = pq.ParquetFile(stream)
    columns = list(parquet.schema_arrow.names)
    _require(columns, required, unit.uri)
    keep = columns if wanted is None else [name for name in columns if name in wanted]
    groups = (
        list(range(unit.start, unit.end)) if unit.kind == "rowgroups" else list(range(parquet.num_row_groups))
    )
    batches = parquet.iter_batches(batch_size=chunk_rows, row_groups=groups, columns=keep)
    tables = rechunk(_batches(batches, unit.uri, "parquet"), chunk_rows)
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


def _batches(source: Any, uri: str, file_format: str) -> Iterator[pa.RecordBatch]:
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

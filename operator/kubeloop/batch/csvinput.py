"""CSV input: the header, byte ranges of a file, and a fast typed parse that falls back to text.

Numeric model columns are first parsed as numbers by Arrow's CSV reader, which is what clean data
costs. A value that is not a number stops that parse; the piece is then read again with every
column as text, skipping the rows already delivered, and the validator names each bad value.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from kubeloop.batch.errors import BatchFailure
from kubeloop.batch.reading import Malformed, Source, batches, rechunk, require
from kubeloop.batch.units import InputUnit

log = logging.getLogger("kubeloop.batch.csv")
SCAN_BYTES = 64 << 10
# CSV blocks parsed at a time. The streaming reader keeps several blocks ahead, so this bounds its
# memory; a block of a few thousand rows is already enough to amortize the per-block costs.
BLOCK_BYTES = 256 << 10
MAX_HEADER_BYTES = 1 << 20


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


def csv_source(stream: BinaryIO, unit: InputUnit, *, wanted: list[str] | None, required: list[str],
               numeric: set[str], chunk_rows: int) -> Source:  # fmt: skip
    header = header_line(stream, unit.uri)
    columns = csv_columns(header, unit.uri)
    require(columns, required, unit.uri)
    keep = columns if wanted is None else [name for name in columns if name in wanted]
    malformed = Malformed()
    text = dict.fromkeys(keep, pa.string())
    typed = {**text, **{name: pa.float64() for name in keep if name in numeric}}

    def read(types: dict[str, pa.DataType]) -> Any:
        body: BinaryIO = stream
        if unit.kind == "bytes":
            body = io.BufferedReader(LineRange(stream, header, unit.start, unit.end), buffer_size=1 << 20)
        else:
            stream.seek(0)
        return pacsv.open_csv(
            body,
            read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=malformed.handler),
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=keep, strings_can_be_null=True
            ),
        )

    def tables() -> Iterator[pa.Table]:
        delivered = 0
        if typed != text:
            try:
                for table in rechunk(iter(read(typed)), chunk_rows):
                    delivered += table.num_rows
                    yield table
                return
            except pa.ArrowException as error:  # the text pass names the value, or the real problem
                log.info(
                    "a value is not a number; reading as text", extra={"uri": unit.uri, "detail": str(error)}
                )
            malformed.ignore = malformed.seen  # the second pass meets them again
        rows = _skip(batches(read(text), unit.uri, "csv"), delivered)
        yield from rechunk(rows, chunk_rows)

    return Source(keep, tables(), malformed, stream.close)


def _skip(source: Iterator[pa.RecordBatch], count: int) -> Iterator[pa.RecordBatch]:
    """`source` without its first `count` rows."""
    for batch in source:
        if count >= batch.num_rows:
            count -= batch.num_rows
            continue
        yield batch.slice(count) if count else batch
        count = 0

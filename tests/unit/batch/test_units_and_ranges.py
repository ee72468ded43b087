"""How input is split between shards: every row read exactly once, whatever the cut points."""

from __future__ import annotations

import io
import itertools
import random

import pytest

from kubeloop.batch.csvinput import LineRange, header_line
from kubeloop.batch.reading import rechunk
from kubeloop.batch.units import InputUnit, assign, split


def _pieces(data: bytes, bounds: list[int]) -> bytes:
    body = b""
    for start, end in itertools.pairwise(bounds):
        stream = io.BytesIO(data)
        header = header_line(stream, "x.csv")
        text = io.BufferedReader(
            LineRange(stream, header, start, end), buffer_size=random.choice([1, 7, 8192])
        ).read()
        assert text.startswith(header)  # every piece is a CSV file of its own
        body += text[len(header) :]
    return body


@pytest.mark.parametrize("seed", range(40))
def test_byte_ranges_cover_each_line_once(seed: int) -> None:
    random.seed(seed)
    lines = [b"a,b\r\n" if seed % 3 == 0 else b"a,b\n"]
    lines += [f"{i},{'x' * random.randint(0, 12)}\n".encode() for i in range(random.randint(0, 40))]
    if seed % 4 == 0 and len(lines) > 1:
        lines[-1] = lines[-1].rstrip(b"\n")  # no final line break
    data = b"".join(lines)
    cuts = sorted({0, len(data), *(random.randint(0, len(data)) for _ in range(random.randint(0, 8)))})
    assert _pieces(data, cuts) == data[len(lines[0]) :]


def test_whole_files_go_to_the_least_loaded_shard_largest_first() -> None:
    files = [("s3://b/a.csv", 100), ("s3://b/b.csv", 300), ("s3://b/c.csv", 250), ("s3://b/d.csv", 50)]
    shards = assign(split(files, 2, "csv", lambda uri: 1), 2)
    assert [[u.uri[-5:] for u in units] for units in shards] == [["b.csv", "d.csv"], ["a.csv", "c.csv"]]


def test_fewer_files_than_shards_are_cut_in_pieces() -> None:
    csv = split([("s3://b/a.csv", 10 << 20)], 4, "csv", lambda uri: 1)
    assert [(u.kind, u.start, u.end) for u in csv] == [
        ("bytes", 0, 2621440), ("bytes", 2621440, 5242880), ("bytes", 5242880, 7864320),
        ("bytes", 7864320, 10485760)]  # fmt: skip
    small = split([("s3://b/a.csv", 3 << 20)], 8, "csv", lambda uri: 1)
    assert len(small) == 3  # pieces of at least 1 MiB
    parquet = split([("s3://b/a.parquet", 1000), ("s3://b/b.parquet", 10)], 3, "parquet", lambda uri: 5)
    assert [u.describe() for u in parquet] == ["row groups 0-1", "row groups 2-4", "row groups 0-1",
                                               "row groups 2-4"]  # fmt: skip
    one_group = split([("s3://b/a.parquet", 1000)], 3, "parquet", lambda uri: 1)
    assert one_group == [InputUnit("s3://b/a.parquet", 1000, weight=1000.0)]


def test_rechunk_yields_exact_chunks_from_any_batches() -> None:
    import pyarrow as pa  # noqa: PLC0415

    batches = [
        pa.record_batch({"x": list(range(start, start + size))}) for start, size in ((0, 3), (3, 0), (3, 9))
    ]
    chunks = list(rechunk(iter(batches), 5))
    assert [c.num_rows for c in chunks] == [5, 5, 2]
    assert [v for c in chunks for v in c.column("x").to_pylist()] == list(range(12))

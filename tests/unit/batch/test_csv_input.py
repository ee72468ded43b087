"""CSV input: numbers parsed as numbers while they all are; after the first that is not, the rest is
read again as text without losing, repeating or double-counting a row."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from kubeloop.batch.reading import open_unit
from kubeloop.batch.units import InputUnit
from kubeloop.store.client import Store


def unit(tmp_path: Path, lines: list[str]) -> InputUnit:
    path = tmp_path / "in.csv"
    path.write_text("id,x,label\n" + "".join(lines))
    return InputUnit(f"file://{path}", path.stat().st_size)


def read(source_unit: InputUnit, chunk_rows: int = 1000) -> tuple[list[pa.Table], list[tuple[int, str]]]:
    source = open_unit(Store(), source_unit, "csv", wanted=None, required=["x"], numeric={"x"},
                       chunk_rows=chunk_rows)  # fmt: skip
    tables, malformed = [], []
    for table in source.tables:
        tables.append(table)
        malformed += source.malformed.take()
    malformed += source.malformed.take()
    source.close()
    return tables, malformed


def test_clean_numbers_are_parsed_as_numbers(tmp_path: Path) -> None:
    tables, malformed = read(unit(tmp_path, [f"r{i},{i}.5,a\n" for i in range(3000)]))
    assert [t.num_rows for t in tables] == [1000, 1000, 1000] and malformed == []
    assert (
        tables[0].schema.field("x").type == pa.float64() and tables[0].schema.field("id").type == pa.string()
    )


def test_a_bad_number_late_in_the_file_switches_to_text_without_losing_rows(tmp_path: Path) -> None:
    lines = [f"r{i},{i}.5,a\n" for i in range(40_000)]  # several parse blocks before the bad value
    lines[100] = "r100,1,a,surplus\n"  # malformed: recorded once, in the first pass
    lines[30_000] = "r30000,thirty,a\n"  # not a number: the rest is read again as text
    lines[35_000] = "r35000,2\n"  # malformed again, seen only in the second pass
    tables, malformed = read(unit(tmp_path, lines))
    ids = [i for t in tables for i in t.column("id").to_pylist()]
    assert len(ids) == len(set(ids)) == 39_998  # every good row once
    assert "r30000" in ids and "r100" not in ids and "r35000" not in ids
    assert sorted(reason.split(":")[1].strip() for _, reason in malformed) == [
        "expected 3 fields, got 2", "expected 3 fields, got 4"]  # fmt: skip
    assert tables[0].schema.field("x").type == pa.float64()
    assert tables[-1].schema.field("x").type == pa.string()  # after the switch

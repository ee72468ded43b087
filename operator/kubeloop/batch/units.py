"""Which pieces of the input each shard scores. Every pod of a run computes the same split from the
same listing, so no coordinator is needed.

With at least as many files as shards, a unit is a whole file. With fewer, each file is cut into
pieces: byte ranges for CSV (each range takes the lines that start in it, see reading.LineRange)
and row-group ranges for parquet. Units go to shards largest first, each to the least loaded shard.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from kubeloop.batch.errors import BatchFailure
from kubeloop.contracts.batch import InputRef
from kubeloop.store.client import ObjectMissing, Store

EXTENSIONS = {"csv": (".csv",), "parquet": (".parquet", ".pq")}
MIN_PIECE_BYTES = 1 << 20  # smaller CSV pieces are not worth a pod of their own
UnitKind = Literal["file", "bytes", "rowgroups"]


@dataclass(frozen=True)
class InputUnit:
    uri: str
    size: int  # bytes of the whole file
    kind: UnitKind = "file"
    start: int = 0  # first byte, or first row group
    end: int = 0  # past the last byte, or past the last row group (0 with kind "file")
    weight: float = 0.0  # estimated bytes, for balancing

    def describe(self) -> str | None:
        """How the manifest and the rejects name the piece; None for a whole file."""
        if self.kind == "bytes":
            return f"bytes {self.start}-{self.end - 1}"
        if self.kind == "rowgroups":
            return f"row groups {self.start}-{self.end - 1}"
        return None


def list_inputs(store: Store, source: InputRef) -> list[tuple[str, int]]:
    """The input files with their sizes: the file itself, or the format's files under a folder.

    Names starting with '_' or '.' (markers such as _SUCCESS) are skipped, as Spark and Hive do."""
    if not source.uri.endswith("/"):
        try:
            return [(source.uri, store.size(source.uri))]
        except ObjectMissing:
            raise BatchFailure("InputMissing", f"input file {source.uri} does not exist") from None
    wanted = EXTENSIONS[source.format]
    found = []
    for location, size in store.list_sized(source.uri):
        name = location.rsplit("/", 1)[-1]
        if name.lower().endswith(wanted) and not name.startswith(("_", ".")):
            found.append((location, size))
    if not found:
        raise BatchFailure(
            "InputMissing", f"no {'/'.join(wanted)} files under {source.uri}: there is nothing to score"
        )
    return found


def split(
    files: list[tuple[str, int]],
    shards: int,
    file_format: str,
    row_groups: Callable[[str], int],
    min_piece_bytes: int = MIN_PIECE_BYTES,
) -> list[InputUnit]:
    """The units of work: whole files, or pieces of them when there are fewer files than shards."""
    if len(files) >= shards:
        return [InputUnit(uri, size, weight=float(size)) for uri, size in files]
    per_file = math.ceil(shards / len(files))
    units: list[InputUnit] = []
    for uri, size in files:
        if file_format == "parquet":
            units += _row_group_pieces(uri, size, row_groups(uri), per_file)
        else:
            units += _byte_pieces(uri, size, min(per_file, max(size // min_piece_bytes, 1)))
    return units


def _byte_pieces(uri: str, size: int, pieces: int) -> list[InputUnit]:
    if pieces <= 1:
        return [InputUnit(uri, size, weight=float(size))]
    bounds = [size * i // pieces for i in range(pieces + 1)]
    return [
        InputUnit(uri, size, "bytes", start, end, float(end - start))
        for start, end in itertools.pairwise(bounds)
        if end > start
    ]


def _row_group_pieces(uri: str, size: int, groups: int, pieces: int) -> list[InputUnit]:
    pieces = min(pieces, groups)
    if pieces <= 1:
        return [InputUnit(uri, size, weight=float(size))]
    bounds = [groups * i // pieces for i in range(pieces + 1)]
    return [
        InputUnit(uri, size, "rowgroups", start, end, size * (end - start) / groups)
        for start, end in itertools.pairwise(bounds)
        if end > start
    ]


def assign(units: list[InputUnit], shards: int) -> list[list[InputUnit]]:
    """Largest first onto the least loaded shard (ties: the lowest index); each shard reads its units
    in name order."""
    loads = [0.0] * shards
    chosen: list[list[InputUnit]] = [[] for _ in range(shards)]
    for unit in sorted(units, key=lambda u: (-u.weight, u.uri, u.start)):
        target = min(range(shards), key=lambda i: (loads[i], i))
        loads[target] += unit.weight
        chosen[target].append(unit)
    return [sorted(mine, key=lambda u: (u.uri, u.start)) for mine in chosen]

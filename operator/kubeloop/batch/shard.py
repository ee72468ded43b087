"""One shard of a run: verify and load the model, then read -> validate -> score -> write, chunk by chunk."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from kubeloop.batch.errors import BatchFailure
from kubeloop.batch.output import PartWriter, Rejects, copied_columns, predictions_table
from kubeloop.batch.pipeline import BackgroundWriter, Stopwatch, prefetch
from kubeloop.batch.reading import Source, open_unit, row_groups
from kubeloop.batch.rows import Checked, check
from kubeloop.batch.units import InputUnit, assign, list_inputs, split
from kubeloop.contracts.batch import (
    BatchTask,
    ModelUsed,
    ShardManifest,
    Timings,
    UnitReport,
    run_folder,
    shard_manifest_name,
)
from kubeloop.contracts.serving import ArtifactSettings
from kubeloop.serving.inference import OnnxModel
from kubeloop.serving.loading import LoadError, fetch, load, replay_golden
from kubeloop.store.client import Store

log = logging.getLogger("kubeloop.batch")
READ_AHEAD = 2  # chunks the reader may hold ahead of scoring (and the writer behind it)


def load_model(store: Store, task: BatchTask, threads: int) -> OnnxModel:
    """The registered artifact, refused unless its digest matches and it replays its golden rows."""
    settings = ArtifactSettings(
        model_uri=task.model.uri, model_sha256=task.model.sha256, card_uri=task.model.card_uri
    )
    try:
        model = load(fetch(store, settings), threads)
        replay_golden(model)
    except LoadError as error:
        raise BatchFailure(error.reason, error.message) from None
    return model


def my_units(store: Store, task: BatchTask, shard: int) -> list[InputUnit]:
    files = list_inputs(store, task.input)
    sizes = dict(files)
    units = split(files, task.shards, task.input.format, lambda uri: row_groups(store, uri, sizes[uri]))
    return assign(units, task.shards)[shard]


@dataclass
class ShardRun:
    """The scoring of one shard; `manifest` is filled as it goes (rows, parts, rejects, timings)."""

    task: BatchTask
    shard: int
    run: str
    store: Store  # read by the reader thread; the writers get clients of their own
    model: OnnxModel
    watch: Stopwatch = field(default_factory=Stopwatch)

    def __post_init__(self) -> None:
        self.folder = run_folder(self.task.output.uri, self.run)
        self.write_store = Store(self.store.settings, self.store.retry)
        self.parts = PartWriter(self.write_store, self.folder, self.shard, self.task.output.format)
        self.rejects = Rejects(Store(self.store.settings, self.store.retry), self.folder, self.shard)
        self.reports: list[UnitReport] = []
        self.required = list(self.model.specs)
        # CSV columns parsed as numbers straight away; those copied to the output stay text, so that
        # every part has the same schema and the input's own spelling.
        output = self.task.output
        copied = set(output.key_columns) | (set(self.required) if output.include_input_columns else set())
        self.numeric = {
            name for name, spec in self.model.specs.items() if spec.element not in ("string", "bool")
        } - copied
        self.wanted = (
            None
            if self.task.output.include_input_columns
            else [*self.required, *(c for c in self.task.output.key_columns if c not in self.required)]
        )

    @property
    def rows_in(self) -> int:
        return sum(r.rows_in for r in self.reports)

    @property
    def rows_out(self) -> int:
        return sum(r.rows_out for r in self.reports)

    def score(self, units: list[InputUnit]) -> None:
        writer: BackgroundWriter[pa.Table] = BackgroundWriter(self.parts.write, self.watch, READ_AHEAD)
        try:
            for unit in units:
                self._unit(unit, writer)
        finally:
            writer.close()
        self.watch.timed("write", self.rejects.flush)

    def _unit(self, unit: InputUnit, writer: BackgroundWriter[pa.Table]) -> None:
        piece = unit.describe()
        report = UnitReport(uri=unit.uri, range=piece)
        self.reports.append(report)
        task = self.task
        source = self.watch.timed("read", lambda: open_unit(
            self.store, unit, task.input.format, wanted=self.wanted, required=self.required,
            numeric=self.numeric, chunk_rows=task.chunk_rows))  # fmt: skip
        try:
            copied = copied_columns(self.task.output, source.columns, self.model, unit.uri)
            offset = 0
            # Reading and validating run in their own thread: this one only scores.
            for chunk, checked, malformed in prefetch(self._checked(source), READ_AHEAD, self.watch, None):
                self._malformed(unit, piece, report, malformed)
                report.rows_in += chunk.num_rows
                report.rejects += checked.rejected
                self.rejects.add_chunk(
                    unit.uri, piece, offset, chunk, columns=self.required, reasons=checked.reasons
                )
                offset += chunk.num_rows
                kept = chunk.num_rows - checked.rejected
                if kept == 0:
                    continue
                prediction = self.watch.timed("score", lambda feeds=checked.feeds: self.model.run(feeds))  # type: ignore[misc]
                writer.put(predictions_table(self.model, chunk, copied, checked.keep, prediction))
                report.rows_out += kept
            self._malformed(unit, piece, report, source.malformed.take())
        finally:
            source.close()

    def _checked(self, source: Source) -> Iterator[tuple[pa.Table, Checked, list[tuple[int, str]]]]:
        """Chunks with their validation, and the malformed CSV rows the parser skipped meanwhile."""
        chunks = iter(source.tables)
        while True:
            chunk = self.watch.timed("read", lambda: next(chunks, None))
            if chunk is None:
                return
            checked = self.watch.timed("validation", lambda chunk=chunk: check(chunk, self.model.specs))  # type: ignore[misc]
            yield chunk, checked, source.malformed.take()

    def _malformed(self, unit: InputUnit, piece: str | None, report: UnitReport,
                   rows: list[tuple[int, str]]) -> None:  # fmt: skip
        for row, reason in rows:
            self.rejects.add(unit.uri, piece, row, reason, {})
        report.rows_in += len(rows)
        report.rejects += len(rows)

    def manifest(self, started: datetime, seconds: float) -> ShardManifest:
        spent = self.watch.seconds
        return ShardManifest(
            batch_prediction=self.task.batch_prediction,
            run=self.run,
            shard=self.shard,
            shards=self.task.shards,
            model=ModelUsed(
                name=self.task.model.name, version=self.task.model.version, sha256=self.task.model.sha256
            ),
            inputs=self.reports,
            parts=self.parts.parts,
            rejects_files=self.rejects.files,
            rows_in=self.rows_in,
            rows_out=self.rows_out,
            rejects=self.rejects.count,
            reject_reasons=self.rejects.top_reasons(),
            timings=Timings(
                read=round(spent.get("read", 0.0), 3),
                validation=round(spent.get("validation", 0.0), 3),
                score=round(spent.get("score", 0.0), 3),
                write=round(spent.get("write", 0.0), 3),
                total=round(seconds, 3),
            ),
            started_at=started.isoformat(timespec="seconds"),
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    def too_many_rejects(self) -> BatchFailure | None:
        limit = self.task.max_reject_fraction
        if self.rejects.count <= limit * self.rows_in:
            return None
        fraction = self.rejects.count / max(self.rows_in, 1)
        top = ", ".join(f"{reason} ({count})" for reason, count in list(self.rejects.top_reasons(3).items()))
        return BatchFailure(
            "TooManyRejects",
            f"shard {self.shard} rejected {self.rejects.count} of {self.rows_in} rows ({fraction:.2%}, "
            f"allowed {limit:.2%}); most frequent: {top}; see {self.folder}rejects/",
        )


def score_shard(task: BatchTask, shard: int, run: str, store: Store, threads: int) -> ShardManifest:
    """Score the shard, write its manifest (also when it has too many rejects), and return it."""
    started, clock = datetime.now(UTC), time.perf_counter()
    model = load_model(store, task, threads)
    units = my_units(store, task, shard)
    log.info("scoring shard", extra={"shard": shard, "units": len(units), "run": run})
    work = ShardRun(task, shard, run, store, model)
    work.score(units)
    manifest = work.manifest(started, time.perf_counter() - clock)
    work.write_store.put_bytes(
        work.folder + shard_manifest_name(shard), manifest.to_json().encode(), "application/json"
    )
    failure = work.too_many_rejects()
    if failure is not None:
        raise failure
    return manifest

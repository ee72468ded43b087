"""What the router counts: the current epoch's RouterStats (GET /stats) and Prometheus metrics.

Counts are plain integers on the request path (a pydantic model is built only when /stats is read)
and restart from zero when the routing table's epoch changes. A record carries the epoch its
request started in, so a copy finishing after a step change does not leak into the next step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kubeloop.contracts.routing import (
    ComparisonStats,
    RouterStats,
    SideStats,
    bucket_of,
    empty_buckets,
)
from kubeloop.router.compare import PairComparison
from kubeloop.router.decide import Side

LATENCY_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class SideCounts:
    requests: int = 0
    errors: int = 0
    buckets: list[int] = field(default_factory=empty_buckets)

    def model(self) -> SideStats:
        return SideStats(requests=self.requests, errors=self.errors, latencyBuckets=list(self.buckets))


@dataclass(slots=True)
class EpochCounts:
    epoch: str
    stable: SideCounts = field(default_factory=SideCounts)
    candidate: SideCounts = field(default_factory=SideCounts)
    pairs: int = 0
    rows: int = 0
    agreed: int = 0
    probability_delta_sum: float = 0.0
    probability_rows: int = 0
    value_delta_sum: float = 0.0
    value_rows: int = 0
    copy_errors: int = 0
    dropped: int = 0

    def model(self) -> RouterStats:
        comparison = ComparisonStats(
            requests=self.pairs,
            rows=self.rows,
            agreed=self.agreed,
            probabilityDeltaSum=self.probability_delta_sum,
            probabilityRows=self.probability_rows,
            valueDeltaSum=self.value_delta_sum,
            valueRows=self.value_rows,
            candidateErrors=self.copy_errors,
            dropped=self.dropped,
        )
        return RouterStats(
            epoch=self.epoch,
            stable=self.stable.model(),
            candidate=self.candidate.model(),
            comparison=comparison,
        )


class Metrics:
    """The Prometheus side: cumulative over the process's life, labelled by version and side."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("version", "side", "kind")
        self.requests = Counter(
            "kubeloop_router_requests",
            "Predictions sent to a side (kind: answer or copy).",
            labels,
            registry=registry,
        )
        self.errors = Counter(
            "kubeloop_router_errors",
            "Predictions a side failed: 5xx, connection failure or timeout.",
            labels,
            registry=registry,
        )
        self.latency = Histogram(
            "kubeloop_router_upstream_latency_seconds",
            "Time from sending a prediction to a side to its complete answer, measured by the router.",
            labels,
            buckets=LATENCY_SECONDS,
            registry=registry,
        )
        self.copies = Counter(
            "kubeloop_router_copies",
            "Copies of predictions to the other side, by outcome (sent, dropped, failed).",
            ("outcome",),
            registry=registry,
        )
        self.agreement = Gauge(
            "kubeloop_router_agreement", "Share of compared rows that agree, this epoch.", registry=registry
        )
        self.probability_delta = Gauge(
            "kubeloop_router_probability_delta",
            "Mean over compared rows of the largest probability gap, this epoch.",
            registry=registry,
        )
        self.compared_rows = Gauge(
            "kubeloop_router_compared_rows",
            "Rows compared between the two sides, this epoch.",
            registry=registry,
        )
        self._children: dict[tuple[int, Side, bool], tuple[Counter, Counter, Histogram]] = {}
        self.sent, self.dropped, self.failed = (self.copies.labels(o) for o in ("sent", "dropped", "failed"))

    def side(self, version: int, side: Side, copy: bool) -> tuple[Counter, Counter, Histogram]:
        key = (version, side, copy)
        found = self._children.get(key)
        if found is None:  # .labels() costs microseconds: resolve each child once
            values = (str(version), side.value, "copy" if copy else "answer")
            found = (self.requests.labels(*values), self.errors.labels(*values), self.latency.labels(*values))
            self._children[key] = found
        return found


class Recorder:
    """The current epoch's counts and the process's metrics, updated together."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.current: EpochCounts | None = None

    def start_epoch(self, epoch: str) -> None:
        """A new epoch starts the counts again; the same epoch (a table re-read) keeps them."""
        if self.current is None or self.current.epoch != epoch:
            self.current = EpochCounts(epoch)
            for gauge in (self.metrics.agreement, self.metrics.probability_delta, self.metrics.compared_rows):
                gauge.set(0)

    def snapshot(self) -> RouterStats | None:
        return self.current.model() if self.current else None

    def _counts(self, epoch: str) -> EpochCounts | None:
        current = self.current
        return current if current is not None and current.epoch == epoch else None

    def side(
        self, epoch: str, side: Side, version: int, *, latency_s: float, error: bool, copy: bool
    ) -> None:
        requests, errors, latency = self.metrics.side(version, side, copy)
        requests.inc()
        latency.observe(latency_s)
        if error:
            errors.inc()
        counts = self._counts(epoch)
        if counts is not None:
            mine = counts.stable if side is Side.STABLE else counts.candidate
            mine.requests += 1
            mine.errors += error
            mine.buckets[bucket_of(latency_s * 1000)] += 1

    def copy_sent(self) -> None:
        self.metrics.sent.inc()

    def copy_dropped(self, epoch: str) -> None:
        self.metrics.dropped.inc()
        counts = self._counts(epoch)
        if counts is not None:
            counts.dropped += 1

    def copy_failed(self, epoch: str) -> None:
        self.metrics.failed.inc()
        counts = self._counts(epoch)
        if counts is not None:
            counts.copy_errors += 1

    def pair(self, epoch: str, result: PairComparison) -> None:
        counts = self._counts(epoch)
        if counts is None:
            return
        counts.pairs += 1
        counts.rows += result.rows
        counts.agreed += result.agreed
        counts.probability_delta_sum += result.probability_delta_sum
        counts.probability_rows += result.probability_rows
        counts.value_delta_sum += result.value_delta_sum
        counts.value_rows += result.value_rows
        if counts.rows:
            self.metrics.agreement.set(counts.agreed / counts.rows)
            self.metrics.compared_rows.set(counts.rows)
        if counts.probability_rows:
            self.metrics.probability_delta.set(counts.probability_delta_sum / counts.probability_rows)

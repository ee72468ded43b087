"""The router's per-epoch statistics: what /stats returns, the reset on a new epoch, and the
operator's merge of several router pods."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kubeloop.contracts.routing import LATENCY_BOUNDS_MS, RouterStats, bucket_of, merge
from kubeloop.router.compare import PairComparison
from kubeloop.router.decide import Side
from kubeloop.router.stats import Recorder


def traffic(recorder: Recorder, epoch: str, answers: int, copies: int, errors: int = 0) -> None:
    for i in range(answers):
        recorder.side(epoch, Side.STABLE, 1, latency_s=0.002, error=i < errors, copy=False)
    for _ in range(copies):
        recorder.copy_sent()
        recorder.side(epoch, Side.CANDIDATE, 2, latency_s=0.004, error=False, copy=True)
        recorder.pair(epoch, PairComparison(rows=2, agreed=1, probability_delta_sum=0.3, probability_rows=2))


def metric(recorder: Recorder, name: str, **labels: str) -> float:
    text = generate_latest(recorder.registry).decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_counts_of_the_current_epoch() -> None:
    recorder = Recorder()
    recorder.start_epoch("e1")
    traffic(recorder, "e1", answers=10, copies=4, errors=3)
    recorder.copy_dropped("e1")
    recorder.copy_failed("e1")
    stats = recorder.snapshot()
    assert stats is not None and stats.epoch == "e1" and stats.pods == 1
    assert (stats.stable.requests, stats.stable.errors) == (10, 3)
    assert (stats.candidate.requests, stats.candidate.errors) == (4, 0)
    assert stats.stable.latency_buckets[bucket_of(2.0)] == 10
    assert stats.candidate.p(0.5) == LATENCY_BOUNDS_MS[bucket_of(4.0)]
    c = stats.comparison
    assert (c.requests, c.rows, c.agreed, c.probability_rows) == (4, 8, 4, 8)
    assert c.probability_delta_sum == pytest.approx(1.2)
    assert (c.dropped, c.candidate_errors) == (1, 1)
    assert stats.agreement == 0.5 and stats.probability_delta == pytest.approx(0.15)
    assert metric(recorder, "kubeloop_router_agreement") == 0.5


def test_a_new_epoch_restarts_at_zero_and_the_same_epoch_keeps_counting() -> None:
    recorder = Recorder()
    recorder.start_epoch("e1")
    traffic(recorder, "e1", answers=5, copies=5)
    recorder.start_epoch("e1")  # the same table read again
    assert recorder.snapshot().stable.requests == 5  # type: ignore[union-attr]
    recorder.start_epoch("e2")
    fresh = recorder.snapshot()
    assert fresh == RouterStats(epoch="e2")
    assert metric(recorder, "kubeloop_router_agreement") == 0
    # Prometheus counters are cumulative over the process's life, whatever the epoch.
    assert metric(recorder, "kubeloop_router_requests_total", side="stable", version="1", kind="answer") == 5


def test_late_records_of_a_previous_epoch_do_not_leak_into_the_new_one() -> None:
    recorder = Recorder()
    recorder.start_epoch("e1")
    recorder.start_epoch("e2")
    traffic(recorder, "e1", answers=3, copies=3)  # copies that started before the step change
    recorder.copy_dropped("e1")
    assert recorder.snapshot() == RouterStats(epoch="e2")


def test_nothing_to_report_before_a_table() -> None:
    assert Recorder().snapshot() is None


def test_stats_travel_by_alias_and_merge_over_pods() -> None:
    pods = []
    for answers, copies in ((10, 4), (6, 6), (1, 1)):
        recorder = Recorder()
        recorder.start_epoch("e7")
        traffic(recorder, "e7", answers=answers, copies=copies, errors=1)
        stats = recorder.snapshot()
        assert stats is not None
        wire = stats.model_dump_json(by_alias=True)
        assert '"latencyBuckets"' in wire and '"probabilityDeltaSum"' in wire
        pods.append(RouterStats.model_validate_json(wire))  # what the operator reads from each pod
    stale = Recorder()
    stale.start_epoch("e6")  # a pod still on the previous step
    traffic(stale, "e6", answers=100, copies=100)
    pods.append(stale.snapshot())  # type: ignore[arg-type]

    total = merge(pods, "e7")
    assert total.pods == 3 and total.epoch == "e7"
    assert (total.stable.requests, total.stable.errors) == (17, 3)
    assert total.candidate.requests == 11
    assert total.stable.latency_buckets[bucket_of(2.0)] == 17
    assert (total.comparison.requests, total.comparison.rows, total.comparison.agreed) == (11, 22, 11)
    assert total.comparison.probability_delta_sum == pytest.approx(3.3)
    assert total.agreement == 0.5
    assert merge(pods, "e8") == RouterStats(epoch="e8", pods=0)

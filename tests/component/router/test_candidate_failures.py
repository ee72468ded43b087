"""A candidate that is slow, failing or gone never touches the stable answers: copies time out, fail
or are dropped, and are counted as such."""

from __future__ import annotations

from collections.abc import Callable

from tests.component.router.conftest import CANDIDATE, STABLE, FakeBackend, Router, address, table
from tests.component.serving.conftest import Server, TrainedModel, v2_body
from tests.infra.processes import free_port, wait_until

REQUESTS = 20


def shadow_through(router: Router, stable: Server, body: dict[str, object], count: int) -> None:
    """`count` predictions through the router, each identical to the stable server's own answer."""
    for index in range(count):
        headers = {"x-request-id": f"req-{index}"}
        routed = router.infer(body, headers=headers)
        assert routed.status_code == 200, routed.text
        assert routed.content == stable.infer(body, headers=headers).content
        assert routed.headers["x-kubeloop-version"] == "1"


def test_a_slow_candidate_times_out_off_the_response_path(
    serve: Callable[..., Server],
    classifier: TrainedModel,
    start_router: Callable[..., Router],
    fake_backend: Callable[[str], FakeBackend],
) -> None:
    stable, slow = serve(classifier), fake_backend("slow:3")
    routing = table(mode="Shadow", shadowPercent=100, shadowTimeoutMs=300)
    router = start_router(routing, {STABLE: [address(stable)], CANDIDATE: [address(slow)]})
    shadow_through(router, stable, v2_body(stable, classifier.golden_rows[:2]), REQUESTS)
    stats = router.wait_stats(lambda s: s.candidate.requests == REQUESTS, "every copy timed out")
    assert stats.stable.requests == REQUESTS and stats.stable.errors == 0
    assert stats.candidate.errors == stats.comparison.candidate_errors == REQUESTS
    assert stats.comparison.requests == 0 and stats.comparison.dropped == 0
    assert slow.count() == {"requests": REQUESTS, "shadow": REQUESTS}  # each copy marked as one


def test_a_failing_then_killed_candidate_is_only_counted(
    serve: Callable[..., Server],
    classifier: TrainedModel,
    start_router: Callable[..., Router],
    fake_backend: Callable[[str], FakeBackend],
) -> None:
    stable, failing = serve(classifier), fake_backend("fail")
    routing = table(mode="Shadow", shadowPercent=100)
    router = start_router(routing, {STABLE: [address(stable)], CANDIDATE: [address(failing)]})
    body = v2_body(stable, classifier.golden_rows[:2])
    shadow_through(router, stable, body, REQUESTS)
    stats = router.wait_stats(lambda s: s.candidate.requests == REQUESTS, "every copy answered 500")
    assert stats.candidate.errors == stats.comparison.candidate_errors == REQUESTS
    assert failing.count()["shadow"] == REQUESTS
    failing.process.stop()  # now nothing listens there: connections are refused
    shadow_through(router, stable, body, REQUESTS)
    stats = router.wait_stats(lambda s: s.candidate.requests == 2 * REQUESTS, "every copy refused")
    assert stats.candidate.errors == stats.comparison.candidate_errors == 2 * REQUESTS
    assert stats.stable.requests == 2 * REQUESTS and stats.stable.errors == 0
    assert stats.comparison.requests == 0
    assert router.get("/router/config").json()["backends"][CANDIDATE]["ejected"] == [address(failing)]


def test_copies_beyond_the_queue_are_dropped_and_counted(
    serve: Callable[..., Server],
    classifier: TrainedModel,
    start_router: Callable[..., Router],
    fake_backend: Callable[[str], FakeBackend],
) -> None:
    stable, slow = serve(classifier), fake_backend("slow:4")
    routing = table(mode="Shadow", shadowPercent=100, shadowQueue=1, shadowTimeoutMs=10_000)
    endpoints = {STABLE: [address(stable)], CANDIDATE: [address(slow)]}
    router = start_router(routing, endpoints, KUBELOOP_COPY_CONCURRENCY="1")
    shadow_through(router, stable, v2_body(stable, classifier.golden_rows[:1]), REQUESTS)
    # One copy in flight, one waiting; the rest arrived while both places were taken.
    stats = router.stats()
    assert stats.comparison.dropped >= REQUESTS - 4, stats.comparison
    sent = REQUESTS - stats.comparison.dropped
    done = router.wait_stats(lambda s: s.candidate.requests == sent, "the queued copies sent")
    assert done.comparison.dropped == REQUESTS - sent
    wait_until(lambda: slow.count()["shadow"] == sent, 10, "the copies reached the candidate")
    metrics = router.get("/metrics").text
    assert f'kubeloop_router_copies_total{{outcome="dropped"}} {float(REQUESTS - sent)}' in metrics


def test_an_unreachable_canary_is_answered_by_stable_and_counted(
    serve: Callable[..., Server], classifier: TrainedModel, start_router: Callable[..., Router]
) -> None:
    stable = serve(classifier)
    routing = table(mode="Canary", weight=100, comparePercent=0)
    router = start_router(routing, {STABLE: [address(stable)], CANDIDATE: [address(free_port())]})
    body = v2_body(stable, classifier.golden_rows[:1])
    versions = [router.infer(body).headers["x-kubeloop-version"] for _ in range(REQUESTS)]
    assert versions == ["1"] * REQUESTS
    stats = router.stats()
    assert stats.candidate.requests == stats.candidate.errors == REQUESTS
    assert stats.stable.requests == REQUESTS and stats.stable.errors == 0

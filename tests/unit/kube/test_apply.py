"""RecentApplies: an unchanged child is applied once a period, a changed one at once, and the
record of deleted owners' children does not grow without bound."""

from __future__ import annotations

from kubeloop.kube.apply import RecentApplies

PERIOD = 60.0


def service(port: int) -> str:
    """The digest of a Service exposing `port`."""
    return RecentApplies.digest(
        {"kind": "Service", "metadata": {"name": "churn"}, "spec": {"ports": [{"port": port}]}}
    )


def test_an_unchanged_child_is_skipped_within_the_period_and_applied_again_after_it() -> None:
    recent, key = RecentApplies(PERIOD), ("uid-1", "Service", "churn")
    assert recent.due(key, service(80), now=0.0)
    recent.applied(key, service(80), now=0.0)
    assert not recent.due(key, service(80), now=PERIOD - 1)
    assert recent.due(key, service(80), now=PERIOD)


def test_a_changed_child_is_due_at_once() -> None:
    recent, key = RecentApplies(PERIOD), ("uid-1", "Service", "churn")
    recent.applied(key, service(80), now=0.0)
    assert recent.due(key, service(8080), now=1.0)
    assert recent.due(("uid-2", "Service", "churn"), service(80), now=1.0)  # another owner's child


def test_entries_older_than_the_period_are_forgotten_on_the_next_apply() -> None:
    recent = RecentApplies(PERIOD)
    for owner in range(100):  # deployments since deleted: nothing will apply their children again
        recent.applied((f"uid-{owner}", "Service", "churn"), service(80), now=float(owner) / 10)
    assert len(recent) == 100
    recent.applied(("uid-live", "Service", "churn"), service(80), now=PERIOD + 10)
    assert len(recent) == 1

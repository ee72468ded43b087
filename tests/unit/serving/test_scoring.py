"""Where a model run happens: on the event loop or on an inference thread."""

from __future__ import annotations

from kubeloop.serving.scoring import runs_inline

BUDGET_MS = 0.25


def test_a_cheap_run_stays_on_the_loop_however_busy_the_server_is() -> None:
    assert runs_inline(0.05, BUDGET_MS, scoring=32)


def test_a_costly_run_goes_to_a_thread_while_other_requests_are_being_scored() -> None:
    assert not runs_inline(1.5, BUDGET_MS, scoring=2)


def test_a_costly_run_stays_on_the_loop_when_it_is_the_only_request() -> None:
    # Nobody waits for the loop: a thread hop would add only its wake-ups to this request.
    assert runs_inline(1.5, BUDGET_MS, scoring=1)

"""Where a model run happens: on the event loop or on an inference thread."""

from __future__ import annotations

from kubeloop.serving.scoring import runs_inline

BUDGET_MS = 0.25


def test_a_cheap_run_stays_on_the_loop_however_busy_the_server_is() -> None:
    assert runs_inline(0.05, BUDGET_MS, connections=32)


def test_a_costly_run_goes_to_a_thread_while_other_clients_are_connected() -> None:
    assert not runs_inline(1.5, BUDGET_MS, connections=2)


def test_a_costly_run_stays_on_the_loop_for_a_single_connection() -> None:
    # Nobody waits for the loop: a thread hop would add only its wake-ups to this request.
    assert runs_inline(1.5, BUDGET_MS, connections=1)

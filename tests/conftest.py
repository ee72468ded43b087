"""Shared pytest set-up: the real-component fixtures live in tests/infra/fixtures.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.infra.fixtures import LOG_SOURCES, cluster, log_report, minio, namespace, network, stack

__all__ = ["cluster", "minio", "namespace", "network", "stack"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the last lines of every running component's log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and LOG_SOURCES:
        report.sections.append(("component logs", log_report()))

"""Packaging tests: the images' Dockerfiles, the Helm chart and the kustomize manifests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: installs packages into fresh virtualenvs (about a minute with a warm wheelhouse); "
        "part of `make test`, deselect with -m 'not slow' when iterating",
    )

"""Cluster-tier fixtures: the generated CRDs installed into the session's real control plane."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.fixtures import Cluster

CRDS = Path(__file__).resolve().parents[2] / "crds"


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> Cluster:
    """The checked-in CRDs applied and Established; returns the cluster for convenience."""
    cluster.kubectl("apply", "--server-side", "-f", str(CRDS))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRDS))
    return cluster

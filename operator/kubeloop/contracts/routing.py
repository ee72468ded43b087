"""The router's contract with the operator: the routing table it follows and the statistics it keeps.

The operator writes `RoutingTable` as JSON under the key `routing.json` of the ConfigMap
`<mdep>-routing`; every router pod watches that ConfigMap and the EndpointSlices of the backend
Services named in it. The operator reads each router pod's `GET /stats` (`RouterStats`) and adds
them up (`merge`) for the rollout analysis. Counts restart from zero whenever `epoch` changes, so
the analysis of a step sees that step's traffic only.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

ROUTING_KEY = "routing.json"
ROUTER_PORT = 8080
# Upper bounds (ms) of the latency histogram buckets; a last, open bucket holds everything slower.
LATENCY_BOUNDS_MS: tuple[float, ...] = tuple(
    round(0.05 * 1.25**i, 4)
    for i in range(60)  # 0.05 ms .. ~26 s in 25% steps
)
# Regressors "agree" when the values differ by at most this fraction of the stable value's magnitude.
REGRESSION_AGREEMENT_TOLERANCE = 0.05


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RoutingMode(StrEnum):
    """What the candidate does."""

    STABLE_ONLY = "StableOnly"  # no candidate: everything to stable
    CANARY = "Canary"  # `weight` percent answered by the candidate
    SHADOW = "Shadow"  # everything answered by stable; `shadowPercent` copied to the candidate


class Backend(_Wire):
    """One version's model servers: the Service whose EndpointSlices list its ready pods."""

    version: int = Field(ge=1)
    service: str = Field(min_length=1, max_length=63)
    port: int = Field(default=8080, ge=1, le=65535)


class RoutingTable(_Wire):
    """What every router pod of a deployment does with each request."""

    deployment: str
    model: str
    epoch: str = Field(description="Changes with every step; statistics restart with a new epoch.")
    mode: RoutingMode = RoutingMode.STABLE_ONLY
    stable: Backend
    candidate: Backend | None = None
    weight: int = Field(default=0, ge=0, le=100, description="Canary: percent answered by the candidate.")
    shadow_percent: int = Field(
        default=0, alias="shadowPercent", ge=0, le=100, description="Shadow: percent copied to the candidate."
    )
    compare_percent: int = Field(
        default=100,
        alias="comparePercent",
        ge=0,
        le=100,
        description="Canary: percent of requests also sent to the other side (off the response path) "
        "so the two answers can be compared.",
    )
    shadow_timeout_ms: int = Field(default=2000, alias="shadowTimeoutMs", ge=1)
    shadow_queue: int = Field(
        default=256, alias="shadowQueue", ge=1, description="Copies waiting beyond this are dropped."
    )


def percentile_ms(buckets: list[int], q: float) -> float | None:
    """The q-quantile (0..1) of a histogram over LATENCY_BOUNDS_MS: the upper bound of its bucket."""
    total = sum(buckets)
    if total == 0:
        return None
    rank, seen = q * total, 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= rank and count:
            return LATENCY_BOUNDS_MS[min(index, len(LATENCY_BOUNDS_MS) - 1)]
    return LATENCY_BOUNDS_MS[-1]


def bucket_of(latency_ms: float) -> int:
    """Index of the histogram bucket a latency falls in (len(LATENCY_BOUNDS_MS) is the open one)."""
    return bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)


def empty_buckets() -> list[int]:
    return [0] * (len(LATENCY_BOUNDS_MS) + 1)


class SideStats(_Wire):
    """Requests one side answered (or, for shadow copies, was sent) in this epoch."""

    requests: int = 0
    errors: int = 0  # 5xx, connection failures and timeouts; 4xx are the client's and not counted
    latency_buckets: list[int] = Field(default_factory=empty_buckets, alias="latencyBuckets")

    def p(self, q: float) -> float | None:
        return percentile_ms(self.latency_buckets, q)


class ComparisonStats(_Wire):
    """Pairs of answers to the same request from both sides, compared row by row."""

    requests: int = 0  # request pairs where both sides answered
    rows: int = 0  # rows compared
    agreed: int = 0  # rows with the same label (classifiers) or values within tolerance (regressors)
    probability_delta_sum: float = Field(default=0.0, alias="probabilityDeltaSum")  # max |p_s - p_c| per row
    probability_rows: int = Field(default=0, alias="probabilityRows")
    value_delta_sum: float = Field(default=0.0, alias="valueDeltaSum")  # |v_s - v_c| per row
    value_rows: int = Field(default=0, alias="valueRows")
    candidate_errors: int = Field(default=0, alias="candidateErrors")  # copies that failed or timed out
    dropped: int = 0  # copies not sent because the queue was full


class RouterStats(_Wire):
    """GET /stats of one router pod (or the sum over pods)."""

    epoch: str
    pods: int = 1
    stable: SideStats = Field(default_factory=SideStats)
    candidate: SideStats = Field(default_factory=SideStats)
    comparison: ComparisonStats = Field(default_factory=ComparisonStats)

    @property
    def agreement(self) -> float | None:
        return self.comparison.agreed / self.comparison.rows if self.comparison.rows else None

    @property
    def probability_delta(self) -> float | None:
        c = self.comparison
        return c.probability_delta_sum / c.probability_rows if c.probability_rows else None


def merge(stats: Iterable[RouterStats], epoch: str) -> RouterStats:
    """The sum over router pods of the statistics of `epoch` (pods still on another epoch are left out)."""
    total = RouterStats(epoch=epoch, pods=0)
    for one in stats:
        if one.epoch != epoch:
            continue
        total.pods += 1
        for side, add in ((total.stable, one.stable), (total.candidate, one.candidate)):
            side.requests += add.requests
            side.errors += add.errors
            pairs = zip(side.latency_buckets, add.latency_buckets, strict=True)
            side.latency_buckets = [a + b for a, b in pairs]
        mine, theirs = total.comparison, one.comparison
        for name in ComparisonStats.model_fields:
            setattr(mine, name, getattr(mine, name) + getattr(theirs, name))
    return total

"""Rollout analysis: the routers' statistics of one step against the deployment's gates.

Fail is decided as soon as enough requests are in (a bad candidate leaves at once); Pass only
counts at the end of a step. Too few requests is Wait, never a verdict either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kubeloop.api.v1alpha1.modeldeployment import Analysis
from kubeloop.contracts.routing import RouterStats


class Outcome(StrEnum):
    PASS = "Pass"  # noqa: S105 (a verdict, not a password)
    FAIL = "Fail"
    WAIT = "Wait"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str  # CamelCase, for conditions and the rollout history
    message: str


def analyse(stats: RouterStats | None, gates: Analysis) -> Verdict:
    """The verdict on the candidate side of `stats` (answers in canary, copies in shadow)."""
    if stats is None:
        return Verdict(Outcome.WAIT, "NoStatistics", "no router has reported statistics for this step yet")
    seen = stats.candidate.requests
    if seen < gates.min_requests:
        return Verdict(
            Outcome.WAIT, "InsufficientRequests", f"{seen} of {gates.min_requests} candidate requests so far"
        )
    error_rate = stats.candidate.errors / seen
    if error_rate > gates.max_error_rate:
        return Verdict(
            Outcome.FAIL,
            "ErrorRateExceeded",
            f"candidate error rate {error_rate:.3f} > {gates.max_error_rate} "
            f"({stats.candidate.errors} of {seen} requests)",
        )
    stable_p99, candidate_p99 = stats.stable.p(0.99), stats.candidate.p(0.99)
    if stable_p99 and candidate_p99 and candidate_p99 / stable_p99 > gates.max_latency_ratio:
        return Verdict(
            Outcome.FAIL,
            "LatencyRatioExceeded",
            f"candidate p99 {candidate_p99:.2f} ms is {candidate_p99 / stable_p99:.2f}x the stable "
            f"{stable_p99:.2f} ms > {gates.max_latency_ratio}x",
        )
    return _model_gates(stats, gates)


def _model_gates(stats: RouterStats, gates: Analysis) -> Verdict:
    """The ML-aware gates: do both models answer alike on the same requests?"""
    if gates.min_agreement is None and gates.max_probability_delta is None:
        return Verdict(Outcome.PASS, "AnalysisPassed", _summary(stats))
    compared = stats.comparison.requests
    if compared < gates.min_requests:
        return Verdict(
            Outcome.WAIT,
            "InsufficientComparisons",
            f"{compared} of {gates.min_requests} requests answered by both versions so far",
        )
    agreement, delta = stats.agreement, stats.probability_delta
    if gates.min_agreement is not None and agreement is not None and agreement < gates.min_agreement:
        return Verdict(
            Outcome.FAIL,
            "AgreementTooLow",
            f"the candidate agrees with the stable version on {agreement:.3f} of "
            f"{stats.comparison.rows} rows < {gates.min_agreement}",
        )
    limit = gates.max_probability_delta
    if limit is not None and delta is not None and delta > limit:
        return Verdict(
            Outcome.FAIL,
            "ProbabilityDeltaExceeded",
            f"mean probability difference {delta:.3f} > {limit}",
        )
    return Verdict(Outcome.PASS, "AnalysisPassed", _summary(stats))


def _summary(stats: RouterStats) -> str:
    parts = [f"{stats.candidate.requests} candidate requests, {stats.candidate.errors} errors"]
    if stats.agreement is not None:
        parts.append(f"agreement {stats.agreement:.3f}")
    if stats.probability_delta is not None:
        parts.append(f"probability delta {stats.probability_delta:.3f}")
    return ", ".join(parts)


def comparison(stats: RouterStats) -> dict[str, Any]:
    """status.comparison (camelCase, as written to the API) from merged statistics."""

    def latency(side: Any) -> dict[str, float]:
        found = {"p50Ms": side.p(0.5), "p99Ms": side.p(0.99)}
        return {key: value for key, value in found.items() if value is not None}

    figures: dict[str, Any] = {
        "requests": {"stable": stats.stable.requests, "candidate": stats.candidate.requests},
        "errors": {"stable": stats.stable.errors, "candidate": stats.candidate.errors},
        "compared": stats.comparison.requests,
        "latency": {"stable": latency(stats.stable), "candidate": latency(stats.candidate)},
    }
    if stats.agreement is not None:
        figures["agreement"] = round(stats.agreement, 6)
    if stats.probability_delta is not None:
        figures["probabilityDelta"] = round(min(stats.probability_delta, 1.0), 6)
    return figures

"""Drift statistics on binned counts, each the textbook (or scipy's) definition.

Only scipy.special is imported up front (scipy.stats would double the monitor's memory). Every
function takes counts, not rows: the accumulators (accumulate.py) reduce any number of live
rows to a few bins in vectorized passes, so these cost microseconds whatever the traffic.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

# Proportions below this count as this much in PSI: an empty bin would otherwise make it infinite.
PSI_FLOOR = 1e-4


def proportions(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def psi(reference: np.ndarray, current: np.ndarray, floor: float = PSI_FLOOR) -> float:
    """Population stability index: sum over bins of (cur - ref) * ln(cur / ref), on proportions
    floored at `floor`. 0 for identical distributions; 0.1 is usually read as a moderate shift,
    0.2 as a significant one."""
    ref = np.maximum(proportions(reference), floor)
    cur = np.maximum(proportions(current), floor)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def js_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance in base 2, in [0, 1] (scipy.spatial.distance.jensenshannon)."""
    p, q = proportions(reference), proportions(current)
    if not p.any() or not q.any():
        return 0.0
    m = (p + q) / 2
    divergence = (special.rel_entr(p, m).sum() + special.rel_entr(q, m).sum()) / 2 / math.log(2)
    return float(math.sqrt(max(divergence, 0.0)))


def wasserstein(
    ref_positions: np.ndarray,
    reference: np.ndarray,
    cur_positions: np.ndarray,
    current: np.ndarray,
) -> float:
    """Earth mover's distance between two weighted point sets (scipy.stats.wasserstein_distance),
    as the integral of |F_ref - F_cur| over the merged support."""
    u, v = np.asarray(ref_positions, np.float64), np.asarray(cur_positions, np.float64)
    uw, vw = proportions(reference), proportions(current)
    if not uw.any() or not vw.any():
        return 0.0
    points = np.concatenate([u, v])
    order = np.argsort(points, kind="mergesort")
    points = points[order]
    deltas = np.diff(points)
    u_cdf = np.cumsum(np.concatenate([uw, np.zeros_like(vw)])[order])[:-1]
    v_cdf = np.cumsum(np.concatenate([np.zeros_like(uw), vw])[order])[:-1]
    return float(np.sum(np.abs(u_cdf - v_cdf) * deltas))


def chi2_contingency(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-squared test of homogeneity on the 2 x k table of counts (buckets empty on
    both sides left out; no continuity correction): (statistic, p-value)."""
    table = np.vstack([np.asarray(reference, np.float64), np.asarray(current, np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or (rows == 0).any():
        return 0.0, 1.0
    expected = np.outer(rows, table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(special.chdtrc(table.shape[1] - 1, statistic))  # chi2.sf, without scipy.stats


def ks_statistic(ref_cdf: np.ndarray, below: np.ndarray, at_most: np.ndarray, total: int) -> float:
    """Two-sample Kolmogorov-Smirnov statistic from counts.

    `ref_cdf[k]` is the reference sample's CDF at its k-th distinct value u_k; `below[k]` and
    `at_most[k]` count current values < u_k and <= u_k. Between two reference points the reference
    CDF is flat and the current one rises, so the supremum of |F_ref - F_cur| is reached at one of
    these 2k places: the statistic is exact, not an approximation on bins."""
    if total == 0 or len(ref_cdf) == 0:
        return 0.0
    before = np.concatenate([[0.0], ref_cdf[:-1]])
    at_points = np.abs(ref_cdf - at_most / total)
    just_below = np.abs(before - below / total)
    return float(max(at_points.max(), just_below.max()))


def ks_pvalue(statistic: float, reference_size: int, current_size: int) -> float:
    """Smirnov's asymptotic p-value, as scipy.stats.ks_2samp(method="asymp") computes it. Imported
    here: scipy.stats costs the monitor ~50 MB of memory, and only the ks method needs it."""
    from scipy import stats as scipy_stats  # noqa: PLC0415

    if reference_size == 0 or current_size == 0:
        return 1.0
    m, n = sorted([float(reference_size), float(current_size)], reverse=True)
    effective = round(m * n / (m + n))
    return float(np.clip(scipy_stats.kstwo.sf(statistic, effective), 0.0, 1.0))

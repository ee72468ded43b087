"""Per-feature verdicts: every statistic from an accumulator, the declared one as the score.

Numeric features are scored with the monitor's method. Categorical ones with chi2 when chi2 is
chosen, js when js is, and psi otherwise (KS and Wasserstein need an order categories lack).
A feature also drifts when its missing rate moves more than `max_missing_rate_change`.
"""

from __future__ import annotations

import itertools

from kubeloop.contracts.monitoring import DriftRule, FeatureDrift, Histogram, Method
from kubeloop.monitor import stats
from kubeloop.monitor.accumulate import CategoricalAccumulator, NumericAccumulator

Accumulator = NumericAccumulator | CategoricalAccumulator
PSI_THRESHOLD = 0.2  # the usual "significant shift" reading, for categories when the method is not theirs


def categorical_method(method: Method) -> Method:
    return method if method in ("chi2", "js", "psi") else "psi"


def threshold_for(rule: DriftRule, method: Method, categorical: bool) -> float:
    if categorical and rule.categorical_threshold is not None:
        return rule.categorical_threshold
    return rule.threshold if method == rule.method else PSI_THRESHOLD


def numeric_statistics(acc: NumericAccumulator, with_ks_pvalue: bool = False) -> dict[str, float]:
    reference, current = acc.reference_bins(), acc.current_bins()
    chi2, p_value = stats.chi2_contingency(reference, current)
    below, at_most = acc.ks_counts()
    ks = stats.ks_statistic(acc.ref_cdf, below, at_most, acc.present)
    ref_at, ref_w, cur_at, cur_w = acc.positions()
    extra = {"ks_pvalue": stats.ks_pvalue(ks, len(acc.profile.sample), acc.present)} if with_ks_pvalue else {}
    return {
        "psi": stats.psi(reference, current),
        "ks": ks,
        **extra,
        "js": stats.js_distance(reference, current),
        "wasserstein": stats.wasserstein(ref_at, ref_w, cur_at, cur_w) / acc.scale(),
        "chi2": 1.0 - p_value,
        "chi2_statistic": chi2,
        "chi2_pvalue": p_value,
    }


def categorical_statistics(acc: CategoricalAccumulator) -> dict[str, float]:
    reference, current = acc.reference_bins(), acc.current_bins()
    chi2, p_value = stats.chi2_contingency(reference, current)
    return {
        "psi": stats.psi(reference, current),
        "js": stats.js_distance(reference, current),
        "chi2": 1.0 - p_value,
        "chi2_statistic": chi2,
        "chi2_pvalue": p_value,
    }


def histogram(acc: Accumulator) -> Histogram:
    reference = stats.proportions(acc.reference_bins()).round(6).tolist()
    current = stats.proportions(acc.current_bins()).round(6).tolist()
    if isinstance(acc, CategoricalAccumulator):
        return Histogram(buckets=acc.buckets(), reference=reference, current=current)
    edges = [float(e) for e in acc.edges]
    if len(edges) == 1:
        value = f"{edges[0]:.4g}"
        return Histogram(buckets=[f"< {value}", f"= {value}", f"> {value}"], reference=reference,
                         current=current)  # fmt: skip
    buckets = [f"{low:.4g} to {high:.4g}" for low, high in itertools.pairwise(edges)]
    return Histogram(buckets=buckets, edges=edges, reference=reference, current=current)


def feature_drift(name: str, acc: Accumulator, rule: DriftRule) -> FeatureDrift:
    """The verdict on one feature (or on the predictions)."""
    categorical = isinstance(acc, CategoricalAccumulator)
    method = categorical_method(rule.method) if categorical else rule.method
    threshold = threshold_for(rule, method, categorical)
    missing_rate = acc.missing / acc.rows if acc.rows else 0.0
    reference_missing = acc.profile.missing_rate
    has_reference = bool(acc.reference_bins().sum())
    drift = FeatureDrift(
        name=name,
        kind="categorical" if categorical else "numeric",
        method=method,
        score=None,
        threshold=threshold,
        samples=acc.present,
        missing_rate=round(missing_rate, 6),
        reference_missing_rate=round(reference_missing, 6),
    )
    if isinstance(acc, CategoricalAccumulator):
        drift.unseen = acc.unseen
        computed = categorical_statistics(acc) if acc.present and has_reference else {}
    else:
        drift.out_of_range = acc.below + acc.above
        computed = numeric_statistics(acc, rule.method == "ks") if acc.present and has_reference else {}
    if computed:
        drift.statistics = {k: round(v, 6) for k, v in computed.items()}
        drift.score = computed[method]
        drift.histogram = histogram(acc)
        if drift.score > threshold:
            drift.drifted, drift.reason = True, "Score"
    if acc.rows and abs(missing_rate - reference_missing) > rule.max_missing_rate_change:
        drift.drifted, drift.reason = True, drift.reason or "MissingRate"
    return drift

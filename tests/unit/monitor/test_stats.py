"""Each drift statistic against scipy (or its direct formula) on fixed data, and the verdicts they give:
zero on identical data, known shifts flagged, unshifted samples left alone at the declared thresholds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from kubeloop.contracts.monitoring import DriftRule
from kubeloop.contracts.profile import CategoricalProfile, NumericProfile
from kubeloop.monitor import stats
from kubeloop.monitor.accumulate import UNSEEN, CategoricalAccumulator, NumericAccumulator, as_numbers
from kubeloop.monitor.drift import feature_drift, numeric_statistics
from kubeloop.trainer.profile import categorical_profile, numeric_profile

REF = np.array([120, 80, 95, 105, 100, 0, 60])
CUR = np.array([90, 110, 100, 50, 130, 15, 5])


def test_psi_is_the_direct_formula_with_a_floor_for_empty_bins() -> None:
    p, q = REF / REF.sum(), CUR / CUR.sum()
    p_floored, q_floored = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    expected = sum((b - a) * math.log(b / a) for a, b in zip(p_floored, q_floored, strict=True))
    assert stats.psi(REF, CUR) == pytest.approx(expected, rel=1e-12)
    assert stats.psi(REF, REF) == 0.0
    assert stats.psi(REF, REF * 7) == pytest.approx(0.0, abs=1e-15)  # proportions, not counts


def test_js_distance_equals_scipy() -> None:
    assert stats.js_distance(REF, CUR) == pytest.approx(jensenshannon(REF, CUR, base=2), rel=1e-12)
    assert stats.js_distance(REF, REF) == pytest.approx(0.0, abs=1e-7)
    assert stats.js_distance(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)


def test_wasserstein_equals_scipy_on_weighted_points() -> None:
    at_ref, at_cur = np.array([0.0, 1.5, 2.0, 7.0, 3.0]), np.array([-1.0, 1.5, 2.5, 9.0, 3.0])
    w_ref, w_cur = np.array([3, 1, 0, 2, 5]), np.array([1, 1, 4, 2, 0])
    expected = scipy_stats.wasserstein_distance(at_ref, at_cur, w_ref, w_cur)
    assert stats.wasserstein(at_ref, w_ref, at_cur, w_cur) == pytest.approx(expected, rel=1e-12)
    assert stats.wasserstein(at_ref, w_ref, at_ref, w_ref) == 0.0


def test_chi2_equals_scipy_contingency_and_drops_empty_buckets() -> None:
    table = np.vstack([REF, CUR])
    kept = table[:, table.sum(axis=0) > 0]
    expected = scipy_stats.chi2_contingency(kept, correction=False)
    statistic, p_value = stats.chi2_contingency(REF, CUR)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)
    with_empty = stats.chi2_contingency(np.append(REF, 0), np.append(CUR, 0))
    assert with_empty == pytest.approx((statistic, p_value))
    assert stats.chi2_contingency(np.array([5, 0]), np.array([0, 0])) == (0.0, 1.0)


def profile_of(values: np.ndarray, seed: int = 1) -> NumericProfile:
    return numeric_profile(values, seed=seed)


@pytest.mark.parametrize("integers", [False, True], ids=["continuous", "ties"])
def test_ks_from_streamed_counts_equals_scipy_ks_2samp(integers: bool) -> None:
    rng = np.random.default_rng(4)
    reference = rng.normal(10, 3, 8000)
    current = rng.normal(10.6, 3.5, 12_345)
    if integers:  # heavy ties on both sides, and values equal to the reference sample's points
        reference, current = np.round(reference), np.round(current)
    profile = profile_of(reference)
    acc = NumericAccumulator(profile)
    for chunk in np.array_split(current, 7):  # streamed in pieces, as log files arrive
        acc.update(chunk.tolist())
    below, at_most = acc.ks_counts()
    statistic = stats.ks_statistic(acc.ref_cdf, below, at_most, acc.present)
    expected = scipy_stats.ks_2samp(profile.sample, current, method="asymp")
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert stats.ks_pvalue(statistic, len(profile.sample), len(current)) == pytest.approx(expected.pvalue)


def test_numeric_bins_follow_np_histogram_with_open_outer_bins() -> None:
    rng = np.random.default_rng(5)
    reference = rng.uniform(0, 100, 5000)
    profile = profile_of(reference)
    current = np.concatenate([rng.uniform(-20, 130, 3000), profile.edges[:], [np.nan, np.nan]])
    acc = NumericAccumulator(profile)
    acc.update([None if np.isnan(v) else v for v in current])
    inside = current[(current >= profile.edges[0]) & (current <= profile.edges[-1])]
    expected, _ = np.histogram(inside, bins=profile.edges)
    assert acc.inner.tolist() == expected.tolist()
    assert acc.below == int((current < profile.edges[0]).sum()) and acc.above == int(
        (current > profile.edges[-1]).sum()
    )
    assert acc.missing == 2 and acc.present == len(current) - 2
    bins = acc.current_bins()
    assert bins.sum() == acc.present and bins[0] == expected[0] + acc.below


def test_wasserstein_statistic_is_scipys_on_the_binned_points_in_standard_deviations() -> None:
    rng = np.random.default_rng(6)
    profile = profile_of(rng.normal(50, 10, 5000))
    current = rng.normal(80, 10, 4000)  # mostly beyond the training range
    acc = NumericAccumulator(profile)
    acc.update(current)
    edges = np.asarray(profile.edges)
    middles = (edges[:-1] + edges[1:]) / 2
    beyond_low, beyond_high = current[current < edges[0]], current[current > edges[-1]]
    inside, _ = np.histogram(current[(current >= edges[0]) & (current <= edges[-1])], bins=edges)
    points = np.concatenate([[beyond_low.mean() if len(beyond_low) else edges[0]], middles,
                             [beyond_high.mean()]])  # fmt: skip
    expected = scipy_stats.wasserstein_distance(
        points, points, np.concatenate([[0], profile.counts, [0]]),
        np.concatenate([[len(beyond_low)], inside, [len(beyond_high)]]),
    ) / profile.std  # fmt: skip
    assert numeric_statistics(acc)["wasserstein"] == pytest.approx(expected, rel=1e-9)
    # The overflow bin keeps the shift's real size: about 3 standard deviations, not a bin's width.
    assert 2.5 < expected < 3.5


def test_non_numbers_in_a_numeric_column_are_counted_and_left_out() -> None:
    numbers, invalid = as_numbers([1.5, None, "abc", "2", True])
    assert invalid == 1
    assert numbers[0] == 1.5 and math.isnan(numbers[1]) and math.isnan(numbers[2]) and numbers[3] == 2.0
    assert as_numbers([1, 2, None])[1] == 0


def test_categories_are_counted_with_an_unseen_bucket_and_missing_apart() -> None:
    profile = categorical_profile(pd.Series(["a"] * 60 + ["b"] * 30 + ["c"] * 10))
    acc = CategoricalAccumulator(profile)
    acc.update(["a", "b", "", None, "z", "z", "y"])
    acc.update(np.array(["a", "a", "c"], dtype=object))
    assert acc.buckets() == ["a", "b", "c", UNSEEN]
    assert acc.current_bins().tolist() == [3, 1, 1, 3]
    assert acc.reference_bins().tolist() == [60, 30, 10, 0]
    assert (acc.missing, acc.present, acc.unseen) == (2, 8, 3)
    assert acc.unseen_names == {"z": 2, "y": 1}
    drift = feature_drift("plan", acc, DriftRule(method="chi2", threshold=0.95))
    expected = scipy_stats.chi2_contingency(np.array([[60, 30, 10, 0], [3, 1, 1, 3]]), correction=False)
    assert drift.statistics["chi2_statistic"] == pytest.approx(expected.statistic, rel=1e-5)
    assert drift.score == pytest.approx(1 - expected.pvalue, abs=1e-6)
    assert drift.unseen == 3 and drift.method == "chi2"


def test_booleans_count_as_the_trainers_text() -> None:
    profile = categorical_profile(pd.Series(["true"] * 20 + ["false"] * 80))
    acc = CategoricalAccumulator(profile)
    acc.update([True, False, False, "false"])
    assert acc.current_bins().tolist() == [3, 1, 0]  # false, true, unseen (ordered by training count)


# --- verdicts at the declared thresholds -------------------------------------------------------------

RULES = {
    "psi": DriftRule(method="psi", threshold=0.2),
    "ks": DriftRule(method="ks", threshold=0.1),
    "js": DriftRule(method="js", threshold=0.1),
    "wasserstein": DriftRule(method="wasserstein", threshold=0.1),
    "chi2": DriftRule(method="chi2", threshold=0.99),
}
by_method = pytest.mark.parametrize("method", sorted(RULES))


def numeric_verdict(method: str, reference: np.ndarray, current: np.ndarray) -> tuple[float, bool]:
    acc = NumericAccumulator(profile_of(reference))
    acc.update(current)
    drift = feature_drift("x", acc, RULES[method])
    assert drift.score is not None and drift.method == method
    return drift.score, drift.drifted


@by_method
def test_identical_data_scores_zero_or_near_and_is_not_flagged(method: str) -> None:
    reference = np.random.default_rng(7).normal(0, 1, 5000)
    score, drifted = numeric_verdict(method, reference, reference)
    assert not drifted
    if method in ("psi", "js", "wasserstein", "chi2"):
        assert score == pytest.approx(0.0, abs=1e-9)
    else:
        assert score < 0.03  # against the 1000-value reference sample


@by_method
def test_a_fresh_sample_of_the_same_distribution_is_not_flagged(method: str) -> None:
    rng = np.random.default_rng(8)
    score, drifted = numeric_verdict(method, rng.normal(0, 1, 20_000), rng.normal(0, 1, 5000))
    assert not drifted, score


@by_method
def test_a_mean_shift_of_one_standard_deviation_is_flagged(method: str) -> None:
    rng = np.random.default_rng(9)
    score, drifted = numeric_verdict(method, rng.normal(0, 1, 20_000), rng.normal(1, 1, 5000))
    assert drifted, score


@pytest.mark.parametrize("method", ["ks", "psi", "chi2"])
def test_a_wider_spread_with_the_same_mean_is_flagged(method: str) -> None:
    rng = np.random.default_rng(10)
    score, drifted = numeric_verdict(method, rng.normal(0, 1, 20_000), rng.normal(0, 2, 5000))
    assert drifted, score


@pytest.mark.parametrize("method", ["psi", "chi2", "js"])
def test_categorical_shift_and_new_categories_are_flagged_same_mix_is_not(method: str) -> None:
    rng = np.random.default_rng(11)
    reference = rng.choice(["dsl", "fiber", "none"], 20_000, p=[0.35, 0.45, 0.2])
    profile = categorical_profile(pd.Series(reference))
    rule = RULES[method]

    def verdict(current: np.ndarray) -> bool:
        acc = CategoricalAccumulator(profile)
        acc.update(current)
        return feature_drift("internet", acc, rule).drifted

    assert not verdict(rng.choice(["dsl", "fiber", "none"], 5000, p=[0.35, 0.45, 0.2]))
    assert verdict(rng.choice(["dsl", "fiber", "none"], 5000, p=[0.1, 0.7, 0.2]))
    assert verdict(rng.choice(["dsl", "fiber", "none", "satellite"], 5000, p=[0.2, 0.3, 0.1, 0.4]))


def test_categorical_features_use_psi_when_the_method_needs_an_order() -> None:
    profile = categorical_profile(pd.Series(["a", "b"] * 50))
    acc = CategoricalAccumulator(profile)
    acc.update(["a"] * 90 + ["b"] * 10)
    drift = feature_drift("c", acc, DriftRule(method="ks", threshold=0.1))
    assert drift.method == "psi" and drift.threshold == 0.2 and drift.drifted
    custom = feature_drift("c", acc, DriftRule(method="ks", threshold=0.1, categorical_threshold=5.0))
    assert custom.threshold == 5.0 and not custom.drifted


def test_a_missing_rate_change_is_drift_even_when_the_values_match() -> None:
    rng = np.random.default_rng(12)
    reference = rng.normal(0, 1, 5000)
    acc = NumericAccumulator(profile_of(reference))
    values: list[float | None] = list(rng.normal(0, 1, 800))
    acc.update(values + [None] * 200)  # 20% missing, none at training
    drift = feature_drift("x", acc, DriftRule(method="psi", threshold=0.2, max_missing_rate_change=0.1))
    assert drift.drifted and drift.reason == "MissingRate" and drift.missing_rate == pytest.approx(0.2)
    assert drift.score is not None and drift.score < 0.2


def test_a_constant_training_column_compares_below_equal_above() -> None:
    acc = NumericAccumulator(profile_of(np.full(100, 3.0)))
    acc.update([3.0] * 50 + [4.0] * 50)
    assert acc.current_bins().tolist() == [0, 50, 50]
    assert feature_drift("k", acc, RULES["psi"]).drifted


def test_a_feature_never_seen_at_training_or_now_has_no_score() -> None:
    acc = NumericAccumulator(NumericProfile(edges=[], counts=[], missing_rate=1.0))
    acc.update([1.0, 2.0])
    drift = feature_drift("x", acc, RULES["psi"])
    assert drift.score is None and drift.drifted  # a column that was always missing is now filled
    recorded = CategoricalProfile(frequencies={"a": 1.0}, counts={"a": 3}, missing_rate=0)
    empty = CategoricalAccumulator(recorded)
    assert feature_drift("c", empty, RULES["psi"]).score is None

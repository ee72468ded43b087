"""Streaming per-feature accumulators: any number of live values in, a few counts kept.

Memory per feature is O(bins + reference sample), whatever the window holds; each update sorts the
batch once and searches the few bin edges and sample points in it (vectorized NumPy), never a
Python loop over rows. Categories are counted by collections.Counter (a C loop over a hash table)
and merged per distinct value. No pandas: it would add ~50 MB to every monitor pod.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kubeloop.contracts.profile import OTHER, CategoricalProfile, NumericProfile

UNSEEN = "(unseen)"  # live categories not among the recorded ones (with the training's OTHER)
MISSING_TEXT = ""  # how the server logs a missing category
MAX_UNSEEN_NAMES = 1000  # distinct unseen categories remembered by name, for the report


def _number(value: Any) -> float:
    if isinstance(value, int | float):  # booleans included, as NumPy reads them (1 / 0)
        return float(value)
    try:
        return float(value) if isinstance(value, str) and value.strip() else math.nan
    except ValueError:
        return math.nan


_to_number = np.frompyfunc(_number, 1, 1)


def as_numbers(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, int]:
    """Float64 values (None -> NaN) and how many were not numbers at all (also NaN)."""
    try:
        return np.asarray(values, dtype=np.float64), 0
    except (TypeError, ValueError):  # text in a numeric column: the slow path, for bad batches only
        raw = np.asarray(values, dtype=object)
        numbers = _to_number(raw).astype(np.float64)
        present = raw != None  # noqa: E711 - elementwise on an object array
        return numbers, int((np.isnan(numbers) & present).sum())


@dataclass
class NumericAccumulator:
    """Counts of live values on the reference's quantile bins, its overflow, and the reference
    sample's points (for an exact KS statistic)."""

    profile: NumericProfile
    edges: np.ndarray = field(init=False)
    sample_points: np.ndarray = field(init=False)  # distinct values of the reference sample
    ref_cdf: np.ndarray = field(init=False)
    inner: np.ndarray = field(init=False)  # per reference bin (edges[0]..edges[-1])
    below: int = 0
    above: int = 0
    below_sum: float = 0.0
    above_sum: float = 0.0
    ks_below: np.ndarray = field(init=False)  # live values < each sample point
    ks_at_most: np.ndarray = field(init=False)  # live values <= each sample point
    missing: int = 0
    invalid: int = 0
    present: int = 0

    def __post_init__(self) -> None:
        self.edges = np.asarray(self.profile.edges, dtype=np.float64)
        self.inner = np.zeros(max(len(self.edges) - 1, 1), dtype=np.int64)
        points, counts = np.unique(np.asarray(self.profile.sample, dtype=np.float64), return_counts=True)
        self.sample_points = points
        self.ref_cdf = np.cumsum(counts) / max(int(counts.sum()), 1)
        self.ks_below = np.zeros(len(points), dtype=np.int64)
        self.ks_at_most = np.zeros(len(points), dtype=np.int64)

    @property
    def rows(self) -> int:
        return self.missing + self.present

    def update(self, values: Sequence[Any] | np.ndarray) -> None:
        numbers, invalid = as_numbers(values)
        finite = np.isfinite(numbers)
        self.invalid += invalid
        self.missing += int(len(numbers) - finite.sum())
        x = numbers[finite]
        self.present += len(x)
        if not len(x) or not len(self.edges):
            return
        # One sort of the batch, then every count is a search of the few edges and sample points in
        # it: cheaper than searching each value among the points (and no per-value bin codes).
        xs = np.sort(x)
        low = int(np.searchsorted(xs, self.edges[0], "left"))  # values below the training range
        high = int(np.searchsorted(xs, self.edges[-1], "right"))  # values up to its top
        self.below += low
        self.above += len(xs) - high
        self.below_sum += float(xs[:low].sum())
        self.above_sum += float(xs[high:].sum())
        if len(self.edges) > 1:
            # np.histogram's convention: bins closed on the left, the last one on both sides.
            starts = np.searchsorted(xs, self.edges, "left")
            starts[-1] = high
            self.inner += np.diff(starts)
        else:
            self.inner[0] += high - low
        if len(self.sample_points):
            self.ks_below += np.searchsorted(xs, self.sample_points, "left")
            self.ks_at_most += np.searchsorted(xs, self.sample_points, "right")

    # --- views for the statistics --------------------------------------------------------------------

    def reference_bins(self) -> np.ndarray:
        """The training counts on the drift bins (see `current_bins`)."""
        counts = np.asarray(self.profile.counts, dtype=np.int64)
        return counts if len(self.edges) > 1 else np.array([0, int(counts.sum()), 0])

    def current_bins(self) -> np.ndarray:
        """Live counts on the drift bins: the reference bins with the outer ones open-ended (as the
        profile contract says); a constant reference gets below / equal / above."""
        if len(self.edges) > 1:
            bins = self.inner.copy()
            bins[0] += self.below
            bins[-1] += self.above
            return bins
        return np.array([self.below, int(self.inner[0]), self.above])

    def positions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(reference positions, reference weights, current positions, current weights) for the
        Wasserstein distance: bin midpoints, plus two overflow bins placed at the mean of the live
        values beyond the training range, so a shift far outside it is measured in full."""
        low, high = self.edges[0], self.edges[-1]
        middles = (self.edges[:-1] + self.edges[1:]) / 2 if len(self.edges) > 1 else self.edges[:1]
        below_at = self.below_sum / self.below if self.below else low
        above_at = self.above_sum / self.above if self.above else high
        positions = np.concatenate([[below_at], middles, [above_at]])
        counts = np.asarray(self.profile.counts, dtype=np.float64)
        reference = np.concatenate([[0.0], counts, [0.0]])
        current = np.concatenate([[self.below], self.inner, [self.above]]).astype(np.float64)
        return positions, reference, positions, current

    def scale(self) -> float:
        """What the Wasserstein distance is divided by: the training standard deviation."""
        std = self.profile.std or 0.0
        if std > 0:
            return float(std)
        spread = float(self.edges[-1] - self.edges[0]) if len(self.edges) > 1 else 0.0
        return spread if spread > 0 else 1.0

    def ks_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(live values < u_k, live values <= u_k) for each distinct reference sample value u_k."""
        return self.ks_below, self.ks_at_most


@dataclass
class CategoricalAccumulator:
    """Counts of live categories on the recorded ones, plus an unseen bucket."""

    profile: CategoricalProfile
    categories: list[str] = field(init=False)
    index: dict[str, int] = field(init=False)
    counts: np.ndarray = field(init=False)  # per category, the unseen bucket last
    unseen_names: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    present: int = 0

    def __post_init__(self) -> None:
        self.categories = [c for c in self.profile.counts if c != OTHER]
        self.index = {c: i for i, c in enumerate(self.categories)}
        self.counts = np.zeros(len(self.categories) + 1, dtype=np.int64)

    @property
    def rows(self) -> int:
        return self.missing + self.present

    @property
    def unseen(self) -> int:
        return int(self.counts[-1])

    def update(self, values: Sequence[Any] | np.ndarray) -> None:
        tally = Counter(values.tolist() if isinstance(values, np.ndarray) else values)
        for value, count in tally.items():  # one step per distinct value, not per row
            if value is None or value == MISSING_TEXT or (isinstance(value, float) and math.isnan(value)):
                self.missing += int(count)
                continue
            name = value if isinstance(value, str) else _category_text(value)
            self.present += int(count)
            position = self.index.get(name)
            if position is None:
                self.counts[-1] += int(count)
                if name in self.unseen_names or len(self.unseen_names) < MAX_UNSEEN_NAMES:
                    self.unseen_names[name] = self.unseen_names.get(name, 0) + int(count)
            else:
                self.counts[position] += int(count)

    def buckets(self) -> list[str]:
        return [*self.categories, UNSEEN]

    def reference_bins(self) -> np.ndarray:
        recorded = [self.profile.counts[c] for c in self.categories]
        return np.array([*recorded, self.profile.counts.get(OTHER, 0)], dtype=np.int64)

    def current_bins(self) -> np.ndarray:
        return self.counts.copy()


def _category_text(value: Any) -> str:
    """The text a non-string category would have had at training (booleans as the trainer writes)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)

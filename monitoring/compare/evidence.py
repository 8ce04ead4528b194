"""What a comparison knows about one version over a window: counts, means and the order
statistics its percentile intervals need. Built from SQL (`queries.window_stats`, exact
order statistics), from a latency histogram (`from_histogram`, the alert rule's cumulative
looks, within the sketch's ±0.5%), or from arrays (`from_arrays`, tests and simulations).
The judgement (`verdict.judge`) reads only this, whichever way it was built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..metrics import sketch
from . import stats

QS = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Quantiles:
    """Successful latencies of one version: n, point estimates (linear interpolation, as
    quantile_cont and numpy) and the value at each rank any interval asks for.
    `ranks` is sorted; the value of rank r is values[first index with ranks >= r]."""
    n: int
    estimates: dict[float, float]
    ranks: np.ndarray
    values: np.ndarray

    def at(self, rank: int) -> float:
        if rank <= 0:
            return -math.inf
        if rank > self.n:
            return math.inf
        i = int(np.searchsorted(self.ranks, rank))
        return float(self.values[i]) if i < len(self.values) else math.inf

    def interval(self, q: float, z: float) -> stats.Interval:
        lo, hi = stats.quantile_ranks(self.n, q, z)
        return (self.at(lo), self.at(hi))


@dataclass(frozen=True)
class Moments:
    n: int
    mean: float
    var: float


@dataclass(frozen=True)
class VersionStats:
    version: str
    requests: int
    errors: int
    latency: Quantiles
    score: Moments | None = None
    labelled: int | None = None          # None: no labels anywhere; 0: none for this version
    correct: int = 0
    classes: dict[str, int] | None = None   # class predictions: count per class
    prediction: Moments | None = None       # numeric (regression) predictions
    error_types: dict[str, int] = field(default_factory=dict)
    first: float | None = None           # epoch seconds of the first and last request
    last: float | None = None
    has_latency: bool = True             # False: the logs have no latency_ms (batch logs)
    has_status: bool = True              # False: no status column, so no error rate


def empty_quantiles() -> Quantiles:
    return Quantiles(0, {q: math.nan for q in QS}, np.zeros(0, dtype=np.int64), np.zeros(0))


def quantiles_from_sorted(x: np.ndarray) -> Quantiles:
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n == 0:
        return empty_quantiles()
    return Quantiles(n, {q: float(np.quantile(x, q)) for q in QS}, np.arange(1, n + 1), x)


def quantiles_from_histogram(bins_rep: np.ndarray, counts: np.ndarray) -> Quantiles:
    """From a latency histogram (bin representatives ascending, counts per bin)."""
    keep = counts > 0
    reps, counts = np.asarray(bins_rep, dtype=float)[keep], np.asarray(counts)[keep].astype(np.int64)
    n = int(counts.sum())
    if n == 0:
        return empty_quantiles()
    cum = np.cumsum(counts)
    return Quantiles(n, {q: float(sketch.interpolate(reps, cum, q, n)) for q in QS}, cum, reps)


@dataclass(frozen=True)
class BinnedQuantiles(Quantiles):
    """Quantiles from a histogram whose intervals are conservative: a lower rank reads its
    bin's lower edge, an upper rank its bin's upper edge (the exact order statistics lie
    between), so an interval never narrows to one bin's representative."""
    lower: np.ndarray = field(default_factory=lambda: np.zeros(0))
    upper: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def interval(self, q: float, z: float) -> stats.Interval:
        lo, hi = stats.quantile_ranks(self.n, q, z)
        return (self._edge(lo, self.lower, -math.inf), self._edge(hi, self.upper, math.inf))

    def _edge(self, rank: int, edges: np.ndarray, beyond: float) -> float:
        if rank <= 0 or rank > self.n:
            return beyond
        return float(edges[int(np.searchsorted(self.ranks, rank))])


def binned_quantiles(bins: np.ndarray, counts: np.ndarray) -> Quantiles:
    """quantiles_from_histogram of latency sketch bins (`metrics.sketch`), with
    conservative intervals (BinnedQuantiles)."""
    bins, counts = np.asarray(bins, dtype=np.int64), np.asarray(counts, dtype=np.int64)
    keep = counts > 0
    bins, counts = bins[keep], counts[keep]
    q = quantiles_from_histogram(sketch.representative(bins), counts)
    if q.n == 0:
        return q
    lower, upper = sketch.edges(bins)
    return BinnedQuantiles(q.n, q.estimates, q.ranks, q.values, lower, upper)


def moments(x: np.ndarray) -> Moments | None:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return None
    return Moments(len(x), float(x.mean()), float(x.var(ddof=1)) if len(x) > 1 else 0.0)


def from_arrays(version: str, latency_ms: np.ndarray, is_error: np.ndarray, *,
                score: np.ndarray | None = None, correct: np.ndarray | None = None,
                predictions: np.ndarray | None = None) -> VersionStats:
    """VersionStats of one version's rows. `correct`: per row True/False/NaN (not labelled),
    successful rows only counted; `predictions`: class labels (strings) of successful rows."""
    is_error = np.asarray(is_error, dtype=bool)
    ok = ~is_error
    lat = np.sort(np.asarray(latency_ms, dtype=float)[ok])
    labelled = k = None
    if correct is not None:
        c = np.asarray(correct, dtype=float)[ok]
        has = ~np.isnan(c)
        labelled, k = int(has.sum()), int(c[has].sum())
    classes = None
    if predictions is not None:
        vals, counts = np.unique(np.asarray(predictions)[ok].astype(str), return_counts=True)
        classes = dict(zip(vals.tolist(), counts.tolist(), strict=True))
    return VersionStats(version=version, requests=int(len(is_error)), errors=int(is_error.sum()),
                        latency=quantiles_from_sorted(lat),
                        score=moments(np.asarray(score)[ok]) if score is not None else None,
                        labelled=labelled, correct=k or 0, classes=classes)

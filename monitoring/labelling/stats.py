"""Pure statistics for labelling: intervals, agreement, per-class scores.

Every function takes plain Python sequences and returns numbers or small records, so each
is checked against hand-worked and published values (tests/test_labelling_stats.py).

    wilson_interval(81, 100)                     # (0.7222..., 0.8749...)
    cohen_kappa(["y", "n"], ["y", "y"])          # 0.0
    krippendorff_alpha_nominal([[1, 1], [2, 2, None]])
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def wilson_interval(successes: float, n: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a proportion: (low, high); (nan, nan) when n == 0.

    Unlike the normal approximation it stays inside [0, 1] and is honest at 0/n and n/n,
    which small review queues hit often. `n` may be fractional (an effective sample size).
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return (math.nan, math.nan)
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # Clamp float noise at the edges: 0/n must give exactly 0 as its lower bound.
    return (max(0.0, centre - half) if successes > 0 else 0.0,
            min(1.0, centre + half) if successes < n else 1.0)


@dataclass(frozen=True)
class Proportion:
    """An estimated proportion with its interval. `n` items, `n_eff` effective size."""

    value: float        # nan when n == 0
    low: float
    high: float
    n: int
    successes: float    # weighted when weights differ
    n_eff: float


def proportion(outcomes: Sequence[bool], weights: Sequence[float] | None = None,
               confidence: float = CONFIDENCE) -> Proportion:
    """Weighted share of True with a Wilson interval at Kish's effective sample size.

    With equal weights (a uniform sample) this is exactly k/n with the Wilson interval.
    Unequal design weights (a stratified sample with equal allocation) widen the interval
    by the design effect n/n_eff instead of pretending the sample is uniform.
    """
    n = len(outcomes)
    if weights is None:
        weights = [1.0] * n
    if len(weights) != n:
        raise ValueError("outcomes and weights differ in length")
    if any(w <= 0 or not math.isfinite(w) for w in weights):
        raise ValueError("weights must be positive and finite")
    if n == 0:
        return Proportion(math.nan, math.nan, math.nan, 0, 0.0, 0.0)
    k = sum(1 for o in outcomes if o)
    if all(w == weights[0] for w in weights):  # exact, free of float noise
        low, high = wilson_interval(k, n, confidence)
        return Proportion(k / n, low, high, n, float(k), float(n))
    total = sum(weights)
    p = sum(w for o, w in zip(outcomes, weights, strict=True) if o) / total
    n_eff = total * total / sum(w * w for w in weights)
    low, high = wilson_interval(p * n_eff, n_eff, confidence)
    return Proportion(p, low, high, n, p * n_eff, n_eff)


def percent_agreement(units: Sequence[Sequence[Hashable | None]]) -> tuple[float, int]:
    """Pairwise raw agreement over units with >= 2 values: (share of agreeing pairs, units)."""
    agree = pairs = used = 0
    for unit in units:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        used += 1
        counts = Counter(values)
        agree += sum(c * (c - 1) for c in counts.values())
        pairs += m * (m - 1)
    return (agree / pairs if pairs else math.nan, used)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa of two raters over the same items; nan when undefined (one category).

    kappa = (p_o - p_e) / (1 - p_e), p_e from each rater's own category shares.
    """
    if len(a) != len(b):
        raise ValueError("both raters must rate the same items")
    n = len(a)
    if n == 0:
        return math.nan
    p_o = sum(1 for x, y in zip(a, b, strict=True) if x == y) / n
    ca, cb = Counter(a), Counter(b)
    p_e = sum(ca[c] * cb[c] for c in ca.keys() | cb.keys()) / (n * n)
    if p_e == 1:
        return math.nan
    return (p_o - p_e) / (1 - p_e)


def krippendorff_alpha_nominal(units: Sequence[Sequence[Hashable | None]]) -> float:
    """Krippendorff's alpha for nominal data, any number of raters, missing values allowed.

    `units` holds, per unit (item), the values the raters gave (None or absent = missing).
    Units with fewer than two values are not pairable and are left out, as in
    Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability". nan when undefined
    (fewer than two pairable values or a single category overall).
    """
    coincidences: Counter = Counter()
    for unit in units:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, nc in counts.items():
            for k, nk in counts.items():
                pairs = nc * (nk - 1) if c == k else nc * nk
                if pairs:
                    coincidences[(c, k)] += pairs / (m - 1)
    n = sum(coincidences.values())
    if n < 2:
        return math.nan
    n_c: Counter = Counter()
    for (c, _k), v in coincidences.items():
        n_c[c] += v
    observed = sum(v for (c, k), v in coincidences.items() if c != k)
    expected = (n * n - sum(v * v for v in n_c.values())) / (n - 1)
    if expected == 0:
        return math.nan
    return 1 - observed / expected


@dataclass(frozen=True)
class ClassScore:
    label: str
    precision: float    # nan when the class was never predicted among known labels
    recall: float       # nan when the class never occurred
    f1: float
    support: float      # weighted count of items whose true label is this class
    predicted: float    # weighted count of items predicted as this class


def precision_recall_f1(truth: Sequence[Hashable], predicted: Sequence[Hashable],
                        weights: Sequence[float] | None = None) -> list[ClassScore]:
    """Per-class precision, recall and F1 (weighted counts), classes sorted by name."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted differ in length")
    weights = weights if weights is not None else [1.0] * len(truth)
    tp: Counter = Counter()
    n_true: Counter = Counter()
    n_pred: Counter = Counter()
    for t, p, w in zip(truth, predicted, weights, strict=True):
        n_true[t] += w
        n_pred[p] += w
        if t == p:
            tp[t] += w
    out = []
    for label in sorted(n_true.keys() | n_pred.keys(), key=str):
        prec = tp[label] / n_pred[label] if n_pred[label] else math.nan
        rec = tp[label] / n_true[label] if n_true[label] else math.nan
        f1 = (2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0) \
            if not (math.isnan(prec) or math.isnan(rec)) else math.nan
        out.append(ClassScore(str(label), prec, rec, f1, n_true[label], n_pred[label]))
    return out


def majority(values: Sequence[Hashable]) -> tuple[Hashable | None, bool]:
    """Most frequent value and whether the top is tied: (value or None on a tie, tie)."""
    if not values:
        return (None, False)
    counts = Counter(values).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return (None, True)
    return (counts[0][0], False)

"""The statistics of a version comparison: pure functions on counts and order statistics.

Every interval here is a function of a critical value `z`, so one sequential rule sets the
width of all of them:

- `wilson(k, n, z)`: Wilson score interval of a proportion.
- `mover(...)`: Zou & Donner's MOVER interval for a difference `b - w*a` from the two
  intervals of `a` and `b`; with Wilson intervals it is Newcombe's hybrid score interval
  (Newcombe 1998, method 10), `newcombe(...)`.
- `quantile_ranks(n, q, z)`: the ranks of the distribution-free order-statistic interval of
  the q-quantile (exact binomial, as `scipy.stats.quantile_test`); with MOVER it gives the
  interval of a difference of percentiles (Price & Bonett 2002 in the symmetric case).
- `mixture_z(alpha, n_a, n_b, n_ref)`: the critical value of the always-valid normal-mixture
  confidence sequence (mixture SPRT; Robbins 1970, Johari et al. 2017, Howard et al. 2021):
  an interval built with it may be looked at after every new request and still covers with
  probability 1 - alpha at every look at once. `mixture_alpha` is its inverse (the
  always-valid p-value of an interval that just touches the null).
- `holm_levels(p, alpha)`: Holm's step-down levels across the guarded metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from scipy.special import bdtr, bdtrc, bdtrik, ndtr, ndtri

Interval = tuple[float, float]

# Critical values are taken from this grid (rounded up: never narrower than asked), so that
# the ranks of percentile intervals can be fetched from SQL in one query for every z.
Z_STEP = 0.05
Z_MAX = 12.0
Z_GRID = np.round(np.arange(0.0, Z_MAX + Z_STEP / 2, Z_STEP), 2)


def grid_z(z: float) -> float:
    """The smallest grid value >= z (Z_MAX at most)."""
    if not math.isfinite(z) or z >= Z_MAX:
        return float(Z_MAX)
    return float(Z_GRID[int(np.searchsorted(Z_GRID, z - 1e-12))])


def wilson(k: float, n: float, z: float) -> Interval:
    """Wilson score interval of k successes in n trials; (nan, nan) when n == 0."""
    if n <= 0:
        return (math.nan, math.nan)
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def mover(est_a: float, ci_a: Interval, est_b: float, ci_b: Interval, w_a: float = 1.0) -> Interval:
    """MOVER interval of `est_b - w_a * est_a` (w_a >= 0) from each estimate's interval."""
    la, ua = ci_a
    lb, ub = ci_b
    d = est_b - w_a * est_a
    lo = d - math.sqrt((est_b - lb) ** 2 + (w_a * (ua - est_a)) ** 2)
    hi = d + math.sqrt((ub - est_b) ** 2 + (w_a * (est_a - la)) ** 2)
    return (lo, hi)


def newcombe(k_a: int, n_a: int, k_b: int, n_b: int, z: float) -> Interval:
    """Newcombe's hybrid score interval of p_b - p_a."""
    if n_a <= 0 or n_b <= 0:
        return (math.nan, math.nan)
    return mover(k_a / n_a, wilson(k_a, n_a, z), k_b / n_b, wilson(k_b, n_b, z))


def normal_interval(mean: float, var: float, n: int, z: float) -> Interval:
    """mean ± z·sqrt(var/n) (large-sample interval of a mean)."""
    if n <= 1:
        return (-math.inf, math.inf)
    half = z * math.sqrt(max(var, 0.0) / n)
    return (mean - half, mean + half)


@lru_cache(maxsize=65536)
def quantile_ranks(n: int, q: float, z: float) -> tuple[int, int]:
    """1-based ranks (l, u) with P(x_(l) <= xi_q <= x_(u)) >= 1 - 2(1 - Phi(z)) (exact
    binomial). l == 0 means the interval is unbounded below, u == n + 1 above."""
    if n <= 0:
        return (0, 1)
    tail = float(ndtr(-z))     # norm.sf(z), as scipy computes it, without its argument checks
    if tail <= 0:
        return (0, n + 1)
    lo = _binom_ppf(tail, n, q)
    hi = _binom_isf(tail, n, q) + 1
    return (max(lo, 0), min(hi, n + 1))


def _binom_isf(t: float, n: int, q: float) -> int:
    """The smallest k with P(B > k) <= t, B ~ Bin(n, q): binom.ppf(1 - t) computed on the
    survival function, so that tiny tails keep their precision."""
    k = min(max(round(n * q + float(-ndtri(t)) * math.sqrt(n * q * (1 - q))), 0), n)   # a close start
    while k > 0 and bdtrc(k - 1, n, q) <= t:
        k -= 1
    while k < n and bdtrc(k, n, q) > t:
        k += 1
    return k


def _binom_ppf(p: float, n: int, q: float) -> int:
    """scipy.stats.binom.ppf(p, n, q) without the distribution machinery (its own _ppf)."""
    if p >= 1:
        return n
    k = math.ceil(bdtrik(p, n, q)) if p > 0 else 0
    k = min(max(k, 0), n)
    below = max(k - 1, 0)
    return below if k > 0 and bdtr(below, n, q) >= p else k


def grid_ranks(n: int, q: float) -> np.ndarray:
    """Every rank an interval at any grid z asks for, for the q-quantile of n values (within
    1..n, sorted, unique): the same `quantile_ranks`, so SQL fetches exactly what is read."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    r = np.array([quantile_ranks(n, q, float(z)) for z in Z_GRID], dtype=np.int64).ravel()
    return np.unique(r[(r >= 1) & (r <= n)])


def mixture_z(alpha: float, n_a: float, n_b: float, n_ref: float) -> float:
    """Critical value of the two-sided normal-mixture confidence sequence at this look.

    With V the variance of the estimated difference and tau^2 the mixture's variance, the
    sequence is estimate ± sqrt(V) * sqrt((1 + r) * (2 ln(1/alpha) + ln(1 + 1/r))), r = V/tau^2.
    tau^2 is set to the variance the difference would have with `n_ref` requests per version
    (effective), so r = n_ref / n_eff with n_eff = 1 / (1/n_a + 1/n_b): unit-free, and the
    sequence is tightest near that amount of traffic.
    """
    if n_a <= 0 or n_b <= 0:
        return math.inf
    n_eff = 1.0 / (1.0 / n_a + 1.0 / n_b)
    r = n_ref / n_eff
    return math.sqrt((1 + r) * (2 * math.log(1 / alpha) + math.log1p(1 / r)))


def mixture_alpha(z: float, n_a: float, n_b: float, n_ref: float) -> float:
    """The alpha whose `mixture_z` is z: the always-valid p-value of an interval at z."""
    if n_a <= 0 or n_b <= 0:
        return 1.0
    n_eff = 1.0 / (1.0 / n_a + 1.0 / n_b)
    r = n_ref / n_eff
    return min(1.0, math.exp(-(z * z / (1 + r) - math.log1p(1 / r)) / 2))


def p_value(interval_at: Callable[[float], Interval], excludes: Callable[[Interval], bool],
            n_a: float, n_b: float, n_ref: float) -> float:
    """Always-valid p-value of a null: the mixture alpha of the largest grid z whose
    interval still excludes it (1 when even z = 0 does not). Intervals widen with z."""
    if not excludes(interval_at(0.0)):
        return 1.0
    lo, hi = 0, len(Z_GRID) - 1
    if excludes(interval_at(float(Z_GRID[hi]))):
        return mixture_alpha(float(Z_GRID[hi]), n_a, n_b, n_ref)
    while hi - lo > 1:                       # excludes at lo, not at hi
        mid = (lo + hi) // 2
        if excludes(interval_at(float(Z_GRID[mid]))):
            lo = mid
        else:
            hi = mid
    return mixture_alpha(float(Z_GRID[lo]), n_a, n_b, n_ref)


def holm_levels(p: Sequence[float], alpha: float) -> tuple[list[float], list[bool]]:
    """Holm's step-down procedure: the level each hypothesis is judged at, and whether it is
    rejected. Sorted by p, the i-th (0-based) of m is judged at alpha/(m - i) while all before
    it were rejected; from the first one kept, every later one is judged at that level."""
    m = len(p)
    levels, rejected = [alpha / max(m, 1)] * m, [False] * m
    order = sorted(range(m), key=lambda i: p[i])
    for step, i in enumerate(order):
        level = alpha / (m - step)
        if p[i] <= level:
            levels[i], rejected[i] = level, True
            continue
        for j in order[step:]:
            levels[j] = level
        break
    return levels, rejected

"""The comparison statistics against published figures, scipy and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm, quantile_test

from monitoring.compare import stats

Z95 = norm.ppf(0.975)


@pytest.mark.parametrize("k_a, n_a, k_b, n_b, lo, hi", [
    # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (score, no CC)
    (48, 80, 56, 70, 0.0524, 0.3339),
    (3, 10, 9, 10, 0.1705, 0.8090),
    (0, 20, 0, 10, -0.1611, 0.2775),   # example (f): 0/10 - 0/20
])
def test_newcombe_matches_the_published_intervals(k_a, n_a, k_b, n_b, lo, hi):
    got = stats.newcombe(k_a, n_a, k_b, n_b, Z95)
    assert got == pytest.approx((lo, hi), abs=5e-5)


@pytest.mark.parametrize("k, n, conf", [(81, 263, 0.95), (0, 12, 0.95), (12, 12, 0.99), (3, 1000, 0.9),
                                        (500, 1000, 0.999)])
def test_wilson_equals_scipy(k, n, conf):
    ci = binomtest(k, n).proportion_ci(conf, method="wilson")
    assert stats.wilson(k, n, norm.ppf(1 - (1 - conf) / 2)) == pytest.approx((ci.low, ci.high), abs=1e-12)


@pytest.mark.parametrize("n, q, conf", [(100, 0.95, 0.95), (20, 0.5, 0.9), (1000, 0.99, 0.99), (57, 0.25, 0.95),
                                        (5000, 0.95, 0.999), (30, 0.99, 0.95)])
def test_order_statistic_ranks_equal_scipy_quantile_test(n, q, conf):
    """With values 1..n the interval's values are its ranks."""
    x = np.arange(1, n + 1, dtype=float)
    ci = quantile_test(x, q=np.quantile(x, q), p=q).confidence_interval(conf)
    lo, hi = stats.quantile_ranks(n, q, norm.ppf(1 - (1 - conf) / 2))
    want_lo = 0 if np.isnan(ci.low) or ci.low == -np.inf else int(ci.low)
    want_hi = n + 1 if np.isnan(ci.high) or ci.high == np.inf else int(ci.high)
    assert (lo, hi) == (want_lo, want_hi)


@pytest.mark.parametrize("alpha, n_a, n_b, n_ref", [(0.05, 100, 100, 200), (0.01, 5000, 200, 200),
                                                    (0.0167, 1e6, 1e5, 50), (0.05, 10, 10_000, 1000)])
def test_mixture_z_closed_form_and_inverse(alpha, n_a, n_b, n_ref):
    r = n_ref * (1 / n_a + 1 / n_b)
    want = math.sqrt((1 + r) * (2 * math.log(1 / alpha) + math.log(1 + 1 / r)))
    z = stats.mixture_z(alpha, n_a, n_b, n_ref)
    assert z == pytest.approx(want, rel=1e-12)
    assert z > norm.ppf(1 - alpha / 2)                 # always wider than a one-look interval
    assert stats.mixture_alpha(z, n_a, n_b, n_ref) == pytest.approx(alpha, rel=1e-9)


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_mixture_boundary_holds_at_every_look_of_a_random_walk(alpha):
    """Oracle by simulation: the difference of two N(0,1) streams, looked at after every
    pair of observations up to 2,000, leaves the sequence's interval in at most alpha of
    paths (a fixed 95% interval looked at as often leaves it in far more)."""
    rng = np.random.default_rng(20261201)
    paths, steps, n_ref = 4000, 2000, 200
    diff = np.cumsum(rng.standard_normal((paths, steps)) - rng.standard_normal((paths, steps)), axis=1)
    n = np.arange(1, steps + 1)
    se = np.sqrt(2.0 / n)
    z = np.array([stats.mixture_z(alpha, k, k, n_ref) for k in n])
    est = diff / n
    crossed = (np.abs(est) > z * se).any(axis=1).mean()
    naive = (np.abs(est) > norm.ppf(1 - alpha / 2) * se).any(axis=1).mean()
    assert crossed <= alpha
    assert naive > 3 * alpha


@pytest.mark.parametrize("p, levels, rejected", [
    ([0.01, 0.04, 0.03], [0.05 / 3, 0.05 / 2, 0.05 / 2], [True, False, False]),
    ([0.001, 0.02, 0.04], [0.05 / 3, 0.05 / 2, 0.05], [True, True, True]),
    ([0.2, 0.3, 0.001], [0.025, 0.025, 0.05 / 3], [False, False, True]),
    ([0.5], [0.05], [False]),
    ([], [], []),
])
def test_holm_levels(p, levels, rejected):
    got_levels, got_rej = stats.holm_levels(p, 0.05)
    assert got_levels == pytest.approx(levels) and got_rej == rejected
    # Same decisions as Holm's adjusted p-values: max over the first i of (m - j) p_(j).
    m, order = len(p), np.argsort(p)
    adj = np.maximum.accumulate([(m - i) * p[j] for i, j in enumerate(order)]) if m else []
    assert [bool(a <= 0.05) for a in adj] == [rejected[j] for j in order]


def test_p_value_is_consistent_with_the_interval_at_each_level():
    """Rejecting at level a (p <= a) happens exactly when the interval at that level's z
    excludes the null."""
    k_a, n_a, k_b, n_b, n_ref = 30, 4000, 60, 4000, 200

    def at(z):
        return stats.newcombe(k_a, n_a, k_b, n_b, z)

    p = stats.p_value(at, lambda iv: iv[0] > 0, n_a, n_b, n_ref)
    assert 0 < p < 1
    for a in (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2):
        z = stats.grid_z(stats.mixture_z(a, n_a, n_b, n_ref))
        assert (p <= a) == (at(z)[0] > 0), a


@pytest.mark.parametrize("z, want", [(0.0, 0.0), (1.96, 2.0), (2.0, 2.0), (2.01, 2.05), (99.0, stats.Z_MAX)])
def test_grid_z_rounds_up(z, want):
    assert stats.grid_z(z) == pytest.approx(want)


@pytest.mark.parametrize("n, q", [(1, 0.5), (7, 0.99), (250, 0.95), (40_000, 0.5), (2_000_000, 0.99)])
def test_grid_ranks_hold_every_rank_any_grid_z_asks_for(n, q):
    ranks = set(stats.grid_ranks(n, q).tolist())
    for z in stats.Z_GRID:
        lo, hi = stats.quantile_ranks(n, q, float(z))
        assert {r for r in (lo, hi) if 1 <= r <= n} <= ranks

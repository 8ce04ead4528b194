"""Status judgements against hand-worked cases."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from scipy.stats import binom

from monitoring.config import SLO
from monitoring.metrics.service import WindowStats
from monitoring.metrics.status import ERROR_BREACH_P, error_breaches, kpi_status

T = datetime(2026, 11, 17, tzinfo=UTC)


def window(p95=500.0, rate=0.001, n=10_000):
    return WindowStats(start=T, end=T + timedelta(days=1), requests=n, errors=int(n * rate),
                       error_rate=rate, p50=100.0, p95=p95, p99=p95 * 2, failed_p50=None,
                       failed_p95=None, failed_p99=None, requests_per_minute=n / 1440, method="exact")


def buckets(rows):
    return pl.DataFrame(
        [{"time": T + timedelta(hours=i), "requests": n, "errors": e, "error_rate": e / n, "p95": p}
         for i, (n, e, p) in enumerate(rows)])


@pytest.mark.parametrize(("n", "e", "breach"), [
    (30, 1, False),     # 3.3% but one failure in 30 is chance at a 1% objective
    (200, 50, True),    # the error burst
    (1000, 12, False),  # 1.2%: not significant
    (1000, 25, True),   # 2.5% of 1000: p ~ 1e-4
])
def test_error_breach_is_a_significance_test(n, e, breach):
    got = error_breaches(buckets([(n, e, 100.0)]), SLO())
    assert (got.height == 1) is breach
    assert bool(binom.sf(e - 1, n, 0.01) < ERROR_BREACH_P) is breach


def test_levels_and_sentences():
    slo = SLO()
    s = {x.area: x for x in kpi_status(window(p95=2400.0, rate=0.02), slo)}
    assert s["latency"].level == "red" and "2.40 s, above the 2.00 s SLO" in s["latency"].sentence
    assert s["errors"].level == "red" and "2.00%" in s["errors"].sentence
    b = buckets([(100, 0, 300.0), (100, 0, 2600.0), (200, 50, 300.0), (10, 0, 9000.0)])
    s = {x.area: x for x in kpi_status(window(), slo, b)}
    assert s["latency"].level == "amber" and "in 1 of 3 buckets (worst 2.60 s" in s["latency"].sentence
    assert s["errors"].level == "amber" and "worst 25.0% at 2026-11-17 02:00" in s["errors"].sentence
    s = {x.area: x for x in kpi_status(window(), slo, buckets([(100, 0, 300.0)]))}
    assert s["latency"].level == s["errors"].level == "green"


@pytest.mark.parametrize(("n", "p95", "rate", "missing", "latency", "errors"), [
    (0, None, None, frozenset(), "No requests: latency", "No requests: error rate"),
    (50, None, 1.0, frozenset(), "No successful requests", None),              # every request failed
    (1156, None, None, frozenset({"latency_ms", "status"}), "no latency_ms column", "no status column"),
    (1156, 300.0, None, frozenset({"status"}), None, "no status column"),
])
def test_not_measured_is_grey_and_says_why(n, p95, rate, missing, latency, errors):
    """Nothing measured is never green, and never 'no requests' when there were some."""
    w = window(p95=500.0, rate=0.0, n=n)
    w = dataclasses.replace(w, p95=p95, error_rate=rate)
    s = {x.area: x for x in kpi_status(w, SLO(), None, missing)}
    for area, want in (("latency", latency), ("errors", errors)):
        if want is None:
            assert s[area].level != "grey"
        else:
            assert s[area].level == "grey" and want in s[area].sentence

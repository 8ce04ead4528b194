"""A/A: one version's traffic split at random into two pseudo-versions must raise a rollback
in at most 5% of splits, also when the comparison is looked at 24 times as traffic
accumulates. The figure is written in docs/compare.md; this is the test behind it.

The traffic is v2's from the sample logs while it served alone (2026-11-01 to 11-10, with
the error burst of 11-05 in it: an A/A split shares it). Evidence is built from arrays with
the same order-statistic semantics as the SQL (test_compare.py checks they agree), and the
verdict is the product's `judge`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from scipy.stats import norm

from monitoring.compare import evidence, verdict
from monitoring.compare.settings import CompareSettings, parse_tolerance
from monitoring.config import load_config
from monitoring.logs.workspace import open_workspace

pytestmark = pytest.mark.slow
SPLITS = 100
LOOKS = 24


@pytest.fixture(scope="module")
def v2_rows(sample_logs):
    ws = open_workspace(load_config(overrides={"logs": str(sample_logs)}))
    df = ws.source.query(ws.con, "SELECT ts_us, latency_ms, is_error, score, prediction, "
                                 "CASE WHEN label IS NULL THEN NULL ELSE CAST(label = prediction AS DOUBLE) END AS ok "
                                 "FROM logs WHERE model_version = 'v2' AND ts >= $s AND ts < $e ORDER BY ts_us",
                         {"s": datetime(2026, 11, 1, tzinfo=UTC), "e": datetime(2026, 11, 10, tzinfo=UTC)})
    return {c: df[c].to_numpy() for c in df.columns}


def _settings(tolerances: dict[str, str]) -> CompareSettings:
    return CompareSettings(guarded={m: parse_tolerance(m, t) for m, t in tolerances.items()})


DEFAULT = {"p95_latency_ms": "+10%", "error_rate": "+0.5pp", "accuracy": "-2pp"}
STRICT = {"p95_latency_ms": "+0%", "p50_latency_ms": "+0%", "p99_latency_ms": "+0%", "error_rate": "+0pp",
          "accuracy": "-0pp"}


def false_alarm_rate(rows, settings, share: float, looks: int, seed: int = 7) -> float:
    """Share of random splits in which any of `looks` cumulative looks says rollback."""
    rng = np.random.default_rng(seed)
    n = len(rows["ts_us"])
    cuts = np.linspace(0, n, looks + 1)[1:].astype(int)     # looks as traffic accumulates
    ok = ~rows["is_error"]
    order = np.argsort(rows["latency_ms"], kind="stable")   # sorted once; subsets stay sorted
    lat_sorted, row_of = rows["latency_ms"][order], order
    correct = rows["ok"].astype(float)
    labelled = ok & ~np.isnan(correct)
    fired = 0
    for _ in range(SPLITS):
        cand = rng.random(n) < share
        for cut in cuts:
            seen = np.arange(n) < cut
            pair = []
            for name, mine in (("A", seen & ~cand), ("B", seen & cand)):
                keep = (mine & ok)[row_of]
                lab = mine & labelled
                pair.append(evidence.VersionStats(
                    name, int(mine.sum()), int((mine & ~ok).sum()), evidence.quantiles_from_sorted(lat_sorted[keep]),
                    labelled=int(lab.sum()), correct=int(correct[lab].sum())))
            if verdict.judge(pair[0], pair[1], settings).rollback:
                fired += 1
                break
    return fired / SPLITS


@pytest.mark.parametrize("tolerances", [DEFAULT, STRICT], ids=["default tolerances", "zero tolerances"])
@pytest.mark.parametrize("share", [0.5, 0.1], ids=["50/50", "10% canary"])
def test_aa_split_raises_rollback_in_at_most_5_percent(v2_rows, tolerances, share):
    """Looked at 24 times: a split that never fires at any look also never fires at the last
    one, so this bounds the one-look rate too."""
    rate = false_alarm_rate(v2_rows, _settings(tolerances), share, LOOKS)
    print(f"A/A false rollbacks: {rate:.0%} ({share:.0%} split, {LOOKS} looks, {tolerances})")
    assert rate <= 0.05


def test_aa_with_fixed_horizon_intervals_would_fail(v2_rows, monkeypatch):
    """The test has teeth: the same A/A with a plain 95% interval at every look, no
    sequential correction, raises far more false rollbacks than 5%."""
    monkeypatch.setattr(verdict.stats, "mixture_z", lambda alpha, *a: norm.ppf(1 - alpha / 2))
    rate = false_alarm_rate(v2_rows, _settings(STRICT), 0.5, LOOKS)
    print(f"A/A false rollbacks with fixed-horizon intervals: {rate:.0%}")
    assert rate > 0.05

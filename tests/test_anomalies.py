"""Gaps and spikes: the generator's documented incidents are found, at their time, and only they."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from monitoring import sample
from monitoring.config import SLO
from monitoring.logs.workspace import open_workspace
from monitoring.metrics import anomalies
from monitoring.query.filters import Filters, extent, whole_range


@pytest.fixture(scope="module")
def found(generated_logs):
    from monitoring.config import load_config

    ws = open_workspace(load_config(), logs=str(generated_logs))
    start, end = whole_range(extent(ws.source, ws.con))
    f = Filters(start=start, end=end)
    counts = anomalies.minute_counts(ws.source, ws.con, f)
    gaps = anomalies.find_gaps(counts, f, SLO())
    frame, spikes = anomalies.find_spikes(counts, f, "hour", SLO())
    return counts, gaps, frame, spikes


def _incident(kind):
    return next(i for i in sample.incidents() if i.kind == kind)


def test_the_downtime_gap_and_nothing_else(found):
    _, gaps, _, _ = found
    gap = _incident("gap")
    assert len(gaps) == 1, gaps
    g = gaps[0]
    # The silence seen is the outage plus the quiet minutes around it that chance leaves.
    assert g.start <= gap.start < g.start + timedelta(minutes=10)
    assert g.end - timedelta(minutes=10) < gap.end <= g.end
    assert g.minutes == (g.end - g.start).total_seconds() / 60
    assert g.expected_requests >= SLO().gap_min_expected_requests


def test_the_traffic_spike_and_nothing_else(found):
    _, _, frame, spikes = found
    spike = _incident("traffic_spike")
    assert [s.time for s in spikes] == [spike.start]
    assert spikes[0].ratio > 3
    assert frame["requests"].sum() == found[0]["n"].sum() - found[0].filter(
        pl.col("minute") < int(frame["time"][0].timestamp()) // 60)["n"].sum()


def test_gap_arithmetic_on_hand_made_counts():
    # Ten requests a minute for three days, with silences of 4 and of 20 minutes; the
    # median over days keeps the silent hour's own day from lowering its baseline.
    base = 20003 * 1440   # a Monday (day 20003 since 1970-01-01), so three weekdays follow
    minutes = np.arange(base, base + 3 * 1440)
    n = np.full(len(minutes), 10)
    n[100:104] = 0        # 4 minutes: shorter than gap_min_minutes
    n[2000:2020] = 0      # 20 minutes, ~200 requests expected
    counts = pl.DataFrame({"minute": minutes[n > 0], "n": n[n > 0]})
    f = Filters(start=anomalies._minute(base), end=anomalies._minute(base + 3 * 1440))
    gaps = anomalies.find_gaps(counts, f, SLO())
    assert [(g.start, g.minutes) for g in gaps] == [(anomalies._minute(base + 2000), 20)]
    assert gaps[0].expected_requests == pytest.approx(200)


def test_quiet_night_is_not_a_gap():
    # 0.2 requests a minute: ten silent minutes are expected to miss only ~2 requests.
    rng = np.random.default_rng(0)
    base = 20000 * 1440
    minutes = np.arange(base, base + 3 * 1440)
    n = rng.poisson(0.2, len(minutes))
    counts = pl.DataFrame({"minute": minutes[n > 0], "n": n[n > 0]})
    f = Filters(start=anomalies._minute(base), end=anomalies._minute(base + 3 * 1440))
    assert anomalies.find_gaps(counts, f, SLO()) == []


def test_a_spike_is_found_with_the_window_set_to_its_day_alone(sample_logs):
    """The baseline excludes the window judged: a one-day window cannot raise its own
    expected level (the sample's 2026-11-08 19:00 spike, about 6.5x normal)."""
    from datetime import UTC, datetime

    from monitoring.config import load_config
    from monitoring.logs.workspace import open_workspace

    ws = open_workspace(load_config(), logs=str(sample_logs))
    f = Filters(start=datetime(2026, 11, 8, tzinfo=UTC), end=datetime(2026, 11, 9, tzinfo=UTC))
    frame, spikes = anomalies.find_spikes(anomalies.minute_counts(ws.source, ws.con, f), f, "hour", ws.config.slo)
    assert [s.time.hour for s in spikes] == [19]
    row = frame.filter(frame["time"].dt.hour() == 19)
    # Expected from the week before only: the hand count of 19:00-20:00 on the 7 days before.
    before = ws.source.query(ws.con, "SELECT count(*) AS n FROM logs WHERE ts >= $a AND ts < $b "
                             "AND hour(ts) = 19", {"a": datetime(2026, 11, 1, tzinfo=UTC), "b": f.start})
    assert row["expected"][0] <= before["n"][0] / 7 * 1.5


def test_alerts_and_throughput_report_the_same_gap(sample_logs, tmp_path):
    """One definition of a gap: the alert episode starts, ends and lasts as the page says."""
    from datetime import UTC, datetime

    from monitoring.alerts import RULES, evaluate
    from monitoring.config import load_config
    from monitoring.logs.workspace import open_workspace

    # Only the gap rule is evaluated: its episodes do not depend on the others (the drift,
    # label and version comparisons were most of the evaluation's time).
    toml = tmp_path / "monitoring.toml"
    toml.write_text("".join(f"[alerts.rules.{name}]\nenabled = false\n" for name in RULES if name != "gap"))
    ws = open_workspace(load_config(str(toml)), logs=str(sample_logs))
    f = Filters(start=datetime(2026, 11, 13, tzinfo=UTC), end=datetime(2026, 11, 14, tzinfo=UTC))
    page = anomalies.find_gaps(anomalies.minute_counts(ws.source, ws.con, f), f, ws.config.slo)
    alerts = [e for e in evaluate(ws) if e.rule == "gap"]
    assert len(page) == 1 and len(alerts) == 1
    assert (alerts[0].start, alerts[0].end, alerts[0].peak) == (page[0].start, page[0].end, page[0].minutes)

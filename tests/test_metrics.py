"""Metrics against numpy on logs whose every value the test knows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.logs.workspace import open_workspace
from monitoring.metrics import service as metrics
from monitoring.metrics import sketch
from monitoring.query.filters import Filters, auto_bucket

T0 = datetime(2026, 11, 2, tzinfo=UTC)
N = 6000


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    """Two files (naive UTC and +05:00 timestamps) with latencies, statuses, versions known."""
    rng = np.random.default_rng(3)
    d = tmp_path_factory.mktemp("known")
    offs = np.sort(rng.integers(0, 3 * 86400 * 10**6, N))
    ts = np.datetime64(T0.replace(tzinfo=None), "us") + offs.astype("timedelta64[us]")
    lat = np.round(rng.lognormal(5, 0.7, N), 3)
    lat[::97] = lat[5]  # ties
    failed = rng.random(N) < 0.04
    version = rng.choice(["v1", "v2", "v3"], N, p=[0.5, 0.3, 0.2])
    endpoint = rng.choice(["/a", "/b"], N)
    status = np.where(failed, "error", np.where(rng.random(N) < 0.5, "OK", "ok"))
    half = N // 2
    base = {
        "request_id": [f"r{i}" for i in range(N)], "latency_ms": lat, "status": status,
        "model_version": version, "endpoint": endpoint,
        "prediction": rng.choice(["a", "b"], N), "x": rng.normal(size=N),
    }
    t1 = pa.table({k: v[:half] for k, v in base.items()} | {"timestamp": pa.array(ts[:half])})
    # Same instants written as +05:00 wall time in the second file.
    aware = pa.array(ts[half:]).cast(pa.timestamp("us", tz="Asia/Karachi"))
    t2 = pa.table({k: v[half:] for k, v in base.items()} | {"timestamp": aware})
    pq.write_table(t1, d / "a.parquet")
    pq.write_table(t2, d / "b.parquet")
    frame = {"ts": ts, "lat": lat, "failed": failed, "version": version, "endpoint": endpoint}
    return d, frame


def _ws(path, cfg):
    return open_workspace(cfg, logs=str(path))


def test_window_percentiles_match_numpy(known, cfg):
    d, fr = known
    ws = _ws(d, cfg)
    f = Filters(start=T0, end=T0 + timedelta(days=3))
    s = metrics.summarize(ws.source, ws.con, f, "hour", exact_max_rows=10**9)
    ok = fr["lat"][~fr["failed"]]
    assert s.window.requests == N
    assert s.window.errors == int(fr["failed"].sum())
    assert s.window.error_rate == pytest.approx(fr["failed"].mean(), rel=0, abs=0)
    for q, v in zip((50, 95, 99), (s.window.p50, s.window.p95, s.window.p99), strict=True):
        assert v == pytest.approx(np.percentile(ok, q), rel=1e-9)
    bad = fr["lat"][fr["failed"]]
    assert s.window.failed_p95 == pytest.approx(np.percentile(bad, 95), rel=1e-9)
    assert s.window.requests_per_minute == pytest.approx(N / (3 * 1440))
    assert s.window.method == metrics.EXACT


@pytest.mark.parametrize("bucket", ["hour", "6hour", "day"])
def test_bucket_series_match_numpy(known, cfg, bucket):
    d, fr = known
    ws = _ws(d, cfg)
    f = Filters(start=T0, end=T0 + timedelta(days=3))
    s = metrics.summarize(ws.source, ws.con, f, bucket, exact_max_rows=10**9)
    size = {"hour": 3600, "6hour": 21600, "day": 86400}[bucket]
    idx = (fr["ts"] - np.datetime64(T0.replace(tzinfo=None), "us")).astype("timedelta64[s]").astype(int) // size
    assert s.buckets.height == idx.max() + 1
    for i, row in enumerate(s.buckets.iter_rows(named=True)):
        sel = idx == i
        assert row["requests"] == sel.sum()
        assert row["errors"] == (sel & fr["failed"]).sum()
        assert row["rpm"] == pytest.approx(sel.sum() / (size / 60))
        ok = fr["lat"][sel & ~fr["failed"]]
        assert row["p95"] == pytest.approx(np.percentile(ok, 95), rel=1e-9)
        assert row["p99"] == pytest.approx(np.percentile(ok, 99), rel=1e-9)


@pytest.mark.parametrize("start_h", [0, 1.5])
def test_sparkline_merges_buckets_into_at_most_48_points(known, cfg, start_h):
    """A 15-minute series of 3 days (288 points) is drawn over 6 hours (the finest bucket
    holding the window in 48 points): counts, rates and the partial first bucket's rate as a
    hand count gives them, percentiles within the histogram's bound of numpy's."""
    d, fr = known
    ws = _ws(d, cfg)
    start = T0 + timedelta(hours=start_h)
    f = Filters(start=start, end=T0 + timedelta(days=3))
    s = metrics.summarize(ws.source, ws.con, f, "15min", exact_max_rows=10**9)
    assert s.buckets.height > 48
    sp = s.sparkline()
    assert sp.columns == s.buckets.columns
    size = 6 * 3600
    secs = (fr["ts"] - np.datetime64(T0.replace(tzinfo=None), "us")).astype("timedelta64[us]").astype(np.int64)
    inside = secs >= start_h * 3600 * 10**6
    idx = secs // (size * 10**6)
    assert sp.height == 12
    for i, row in enumerate(sp.iter_rows(named=True)):
        assert row["time"] == T0 + timedelta(seconds=i * size)
        sel = inside & (idx == i)
        assert row["requests"] == sel.sum()
        assert row["errors"] == (sel & fr["failed"]).sum()
        assert row["error_rate"] == pytest.approx((sel & fr["failed"]).sum() / sel.sum())
        minutes = (size - (start_h * 3600 if i == 0 else 0)) / 60
        assert row["rpm"] == pytest.approx(sel.sum() / minutes)
        ok = fr["lat"][sel & ~fr["failed"]]
        for q in (50, 95, 99):
            exact = np.percentile(ok, q)
            assert abs(row[f"p{q}"] - exact) <= sketch.RELATIVE_ERROR * exact + 1e-9


def test_sparkline_of_a_long_window_by_the_day_takes_whole_days(tmp_path, cfg):
    """100 days by the day: no bucket of the sidebar's is coarser, so 3 days (34 points),
    each the hand count of its days (buckets counted from the epoch, as every bucket is)."""
    rng = np.random.default_rng(8)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    n = 4000
    offs = np.sort(rng.integers(0, 100 * 86400 * 10**6, n))
    ts = np.datetime64(start.replace(tzinfo=None), "us") + offs.astype("timedelta64[us]")
    lat = rng.lognormal(5, 0.5, n)
    pq.write_table(pa.table({"request_id": [f"r{i}" for i in range(n)], "timestamp": pa.array(ts),
                             "latency_ms": lat, "status": np.where(rng.random(n) < 0.05, "error", "ok")}),
                   tmp_path / "a.parquet")
    ws = _ws(tmp_path, cfg)
    f = Filters(start=start, end=start + timedelta(days=100))
    s = metrics.summarize(ws.source, ws.con, f, "day", exact_max_rows=10**9)
    sp = s.sparkline()
    day = (ts.astype("datetime64[D]").astype(np.int64)) // 3
    assert sp.height == len(np.unique(day)) == 34
    assert sp["requests"].to_list() == np.unique(day, return_counts=True)[1].tolist()
    assert int(sp["requests"].sum()) == s.window.requests == n


@pytest.mark.parametrize("bucket, days, points", [("hour", 2, 48), ("hour", 7, 28)])
def test_sparkline_shows_a_stop_in_traffic_as_zeros(tmp_path, cfg, bucket, days, points):
    """No request from hour 20 to hour 33 (a stop of 13 hours): the sparkline has zero
    requests there (by the hour over 2 days, by 6 hours over 7), not a line drawn across
    it; the series itself only has the buckets that hold requests, and nothing is added
    before the first request or after the last."""
    rng = np.random.default_rng(9)
    start = datetime(2026, 5, 4, tzinfo=UTC)
    hours = np.arange(days * 24)
    keep = hours[(hours < 20) | (hours >= 33)][:-3]          # and the last three hours empty
    offs = np.concatenate([(h * 3600 + rng.uniform(0, 3600, 30)) * 10**6 for h in keep]).astype(np.int64)
    offs.sort()
    ts = np.datetime64(start.replace(tzinfo=None), "us") + offs.astype("timedelta64[us]")
    n = len(ts)
    pq.write_table(pa.table({"request_id": [f"r{i}" for i in range(n)], "timestamp": pa.array(ts),
                             "latency_ms": rng.lognormal(5, 0.5, n), "status": ["ok"] * n}), tmp_path / "a.parquet")
    ws = _ws(tmp_path, cfg)
    s = metrics.summarize(ws.source, ws.con, Filters(start=start, end=start + timedelta(days=days)), bucket,
                          exact_max_rows=10**9)
    sp = s.sparkline()
    size = 3600 if days == 2 else 6 * 3600
    idx = offs // (size * 10**6)
    assert sp.height == idx.max() + 1 == points - (3 if days == 2 else 0)
    want = np.bincount(idx, minlength=sp.height)
    assert sp["requests"].to_list() == want.tolist()
    assert (want == 0).sum() == (13 if days == 2 else 1)                 # hours 24-29 by 6 hours
    assert s.buckets.height == len(np.unique(offs // (3600 * 10**6)))     # the series: hours with requests
    assert sp.filter(pl.col("requests") == 0)["rpm"].to_list() == [0.0] * int((want == 0).sum())
    assert sp.filter(pl.col("requests") == 0)["p95"].null_count() == int((want == 0).sum())


@pytest.mark.parametrize("bucket, days", [("hour", 2), ("day", 3)])
def test_sparkline_of_a_short_series_is_the_series(known, cfg, bucket, days):
    d, _ = known
    ws = _ws(d, cfg)
    s = metrics.summarize(ws.source, ws.con, Filters(start=T0, end=T0 + timedelta(days=days)), bucket,
                          exact_max_rows=10**9)
    assert s.buckets.height <= 48
    assert s.sparkline().equals(s.buckets)


def test_histogram_method_is_within_its_bound(known, cfg):
    d, fr = known
    ws = _ws(d, cfg)
    f = Filters(start=T0, end=T0 + timedelta(days=3))
    s = metrics.summarize(ws.source, ws.con, f, "day", exact_max_rows=0)
    assert s.window.method == metrics.APPROX
    ok = fr["lat"][~fr["failed"]]
    for q, v in zip((50, 95, 99), (s.window.p50, s.window.p95, s.window.p99), strict=True):
        exact = np.percentile(ok, q)
        assert abs(v - exact) <= sketch.RELATIVE_ERROR * exact + 1e-12


def test_filters_and_breakdown(known, cfg):
    d, fr = known
    ws = _ws(d, cfg)
    f = Filters(start=T0, end=T0 + timedelta(days=3), model_versions=("v2",), endpoints=("/b",))
    s = metrics.summarize(ws.source, ws.con, f, "day", exact_max_rows=10**9)
    sel = (fr["version"] == "v2") & (fr["endpoint"] == "/b")
    assert s.window.requests == sel.sum()
    assert s.window.p50 == pytest.approx(np.percentile(fr["lat"][sel & ~fr["failed"]], 50), rel=1e-9)

    by = metrics.by_dimension(ws.source, ws.con, Filters(start=T0, end=T0 + timedelta(days=3)), "model_version")
    for row in by.iter_rows(named=True):
        sel = fr["version"] == row["key"]
        assert row["requests"] == sel.sum()
        assert row["errors"] == (sel & fr["failed"]).sum()
        assert row["p99"] == pytest.approx(np.percentile(fr["lat"][sel & ~fr["failed"]], 99), rel=1e-9)
    with pytest.raises(ValueError):
        metrics.by_dimension(ws.source, ws.con, f, "latency_ms; DROP TABLE x")


def test_previous_window_is_the_same_length_before(known, cfg):
    d, fr = known
    ws = _ws(d, cfg)
    f = Filters(start=T0 + timedelta(days=2), end=T0 + timedelta(days=3))
    s = metrics.summarize(ws.source, ws.con, f, "hour", with_previous=True, exact_max_rows=10**9)
    base = np.datetime64(T0.replace(tzinfo=None), "us")
    day = (fr["ts"] - base).astype("timedelta64[D]").astype(int)
    assert s.window.requests == (day == 2).sum()
    assert s.previous.requests == (day == 1).sum()
    assert s.previous.p95 == pytest.approx(np.percentile(fr["lat"][(day == 1) & ~fr["failed"]], 95), rel=1e-9)


def test_empty_window_gives_nones_not_errors(known, cfg):
    d, _ = known
    ws = _ws(d, cfg)
    f = Filters(start=T0 + timedelta(days=30), end=T0 + timedelta(days=31))
    s = metrics.summarize(ws.source, ws.con, f, "hour", with_previous=True)
    assert s.window.requests == 0 and s.window.p95 is None and s.window.error_rate is None
    assert s.buckets.height == 0


def test_error_types(known, cfg):
    d, fr = known
    ws = _ws(d, cfg)
    f = Filters(start=T0, end=T0 + timedelta(days=3))
    types = metrics.error_types(ws.source, ws.con, f, "day")
    assert types["errors"].sum() == fr["failed"].sum()
    assert set(types["error_type"].to_list()) == {"(unspecified)"}


@pytest.mark.parametrize(("seconds", "bucket"), [
    (3600, "minute"), (86400, "5min"), (7 * 86400, "15min"), (30 * 86400, "hour"), (365 * 86400, "day")])
def test_auto_bucket(seconds, bucket):
    assert auto_bucket(T0, T0 + timedelta(seconds=seconds)) == bucket

"""The alert engine's context (per 5-minute step: requests, failures, the latency histogram of
successful requests; per minute: requests) comes from the rollup store when it covers the
logs, equal to the raw logs' answer and to a numpy count of the files. Before the store held
5-minute latency bins, and before the engine asked for whole minutes, every evaluation
scanned the whole raw history (100M rows on every app session)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from monitoring import sample
from monitoring.alerts import engine
from monitoring.metrics import anomalies, sketch
from monitoring.metrics import service as metrics
from monitoring.rollup import read
from tests.rollup_helpers import built_workspace


@pytest.fixture(scope="module")
def ws(tz, tmp_path_factory):
    root = tmp_path_factory.mktemp("alertctx")
    sample.generate(root / "logs", days=6, rows_per_day=1500, seed=23)
    _, ws, store = built_workspace(root / "logs", root / "data")
    ws.source.rollups = store
    return ws


def _raw_files(ws):
    t = ds.dataset(ws.source.files, format="parquet").to_table(columns=["timestamp", "latency_ms", "status"])
    ts_us = pc.cast(t["timestamp"], "int64").to_numpy()    # the generator writes UTC microseconds
    return ts_us, t["latency_ms"].to_numpy(zero_copy_only=False), np.asarray(t["status"].to_pylist())


def _context(ws, store, at=None):
    kept = ws.source.rollups
    ws.source.rollups = store
    try:
        return engine.build_context(ws, at)
    finally:
        ws.source.rollups = kept


def _same(a, b):
    assert (a.step_s, a.b0, a.minute0) == (b.step_s, b.b0, b.minute0)
    assert np.array_equal(a.bins, b.bins) and np.array_equal(a.hist, b.hist)
    for k in ("requests", "errors", "expected"):
        assert np.allclose(a.series[k], b.series[k], rtol=1e-12, atol=0), k
    assert np.array_equal(a.minute_counts, b.minute_counts)
    assert np.allclose(a.minute_expected, b.minute_expected, rtol=1e-12, atol=0)


def test_the_store_answers_without_a_raw_scan_of_the_history(ws, monkeypatch):
    edges = []

    def no_full_scan(*a, **kw):
        raise AssertionError("the whole history was scanned raw")

    def edge_only(source, con, f, rest, *a, **kw):
        edges.extend(timedelta(microseconds=hi - lo) for _, lo, hi in rest)
        return raw(source, con, f, rest, *a, **kw)

    raw = read._raw
    monkeypatch.setattr(metrics, "scan_rollup", no_full_scan)
    monkeypatch.setattr(anomalies, "_raw_minute_counts", no_full_scan)
    monkeypatch.setattr(read, "_raw", edge_only)
    ctx = engine.build_context(ws)
    assert ctx is not None and ctx.step_s == 300
    # only the minutes at the window's unaligned edges, inside one 5-minute step each
    assert all(e < timedelta(minutes=5) for e in edges) and len(edges) <= 2


def test_store_and_raw_contexts_are_equal_and_match_a_count_of_the_files(ws):
    stored, raw = _context(ws, ws.source.rollups), _context(ws, None)
    _same(stored, raw)
    ts_us, lat, status = _raw_files(ws)
    step_us = stored.step_s * 1_000_000
    b = ts_us // step_us - stored.b0
    assert np.array_equal(stored.series["requests"], np.bincount(b, minlength=len(stored.series["requests"])))
    failed = status != "ok"
    assert np.array_equal(stored.series["errors"],
                          np.bincount(b[failed], minlength=len(stored.series["errors"])))
    ok = ~failed & np.isfinite(lat)
    bins = sketch.bin_of(lat[ok])
    want = np.zeros_like(stored.hist)
    np.add.at(want, (b[ok], np.searchsorted(stored.bins, bins)), 1)
    assert np.array_equal(stored.bins, np.unique(bins)) and np.array_equal(stored.hist, want)
    minutes = ts_us // 60_000_000 - stored.minute0
    assert np.array_equal(stored.minute_counts, np.bincount(minutes, minlength=len(stored.minute_counts)))


@pytest.mark.parametrize("offset", [timedelta(days=3), timedelta(days=3, minutes=7, seconds=30)],
                         ids=["whole minute", "inside a minute"])
def test_an_evaluation_time_gives_the_raw_answer(ws, offset):
    at = ws.extent.first + offset
    _same(_context(ws, ws.source.rollups, at), _context(ws, None, at))


def _rollback(ws, store):
    from monitoring.alerts import rollback

    kept = ws.source.rollups
    ws.source.rollups = store
    try:
        ctx = engine.build_context(ws)
        engine._add_labels(ws, ctx, None)
        rollback.provide(ws, ctx, None, {"look_minutes": 60, "active_hours": 24})
        return ctx, [rollback._series(ws, None, 3600, True, c) for c in (ctx, None)]
    finally:
        ws.source.rollups = kept


def test_the_rollback_rule_reads_hours_from_the_store_and_agrees_with_raw(ws):
    stored, (s_shared, s_own) = _rollback(ws, ws.source.rollups)
    raw, (r_shared, _) = _rollback(ws, None)
    assert stored.extra["rollback"] and stored.extra["rollback"] == raw.extra["rollback"]
    # the histograms: a query of the rows per (hour, version, bin), successful requests only
    want = ws.source.query(ws.con, f"SELECT ts_us // 3600000000 AS b, model_version AS v, "
                                   f"{sketch.bin_sql('latency_ms')} AS bin, count(*) AS n FROM logs "
                                   "WHERE NOT is_error AND latency_ms IS NOT NULL AND ts_us IS NOT NULL GROUP BY ALL")
    for hist in (s_shared[0], r_shared[0]):
        assert hist.sort("b", "v", "bin").rows() == want.cast(hist.schema).sort("b", "v", "bin").rows()
    # the labels: the accuracy rule's 5-minute counts added up per hour = one hourly query
    assert set(s_shared[2]) == set(s_own[2]) == {"v1", "v2"}
    assert all(s_shared[2][v].rows() == s_own[2][v].rows() for v in s_own[2])
    assert sum(int(df["labelled"].sum()) for df in s_own[2].values()) > 0


def _hourly_from_files(files):
    """(hour, version) -> requests, errors, and the count, sum and sum of squares of the
    scores of successful requests, counted with numpy from the files."""
    t = ds.dataset(files, format="parquet").to_table(columns=["timestamp", "model_version", "status", "score"])
    hour = pc.cast(t["timestamp"], "int64").to_numpy() // 3_600_000_000
    version = np.asarray(t["model_version"].to_pylist())
    failed = np.asarray(t["status"].to_pylist()) != "ok"
    score = np.asarray([np.nan if s is None else s for s in t["score"].to_pylist()])
    want = {}
    for h, v in sorted(set(zip(hour.tolist(), version.tolist(), strict=True))):
        rows = (hour == h) & (version == v)
        s = score[rows & ~failed & ~np.isnan(score)]
        want[(h, v)] = (int(rows.sum()), int((rows & failed).sum()), len(s), s.sum(), (s * s).sum())
    return want


def _same_hourly(counts, want):
    got = {(r["b"], r["v"]): r for r in counts.iter_rows(named=True)}
    assert got.keys() == want.keys()
    for k, (n, errors, score_n, s1, s2) in want.items():
        r = got[k]
        assert (r["requests"], r["errors"], r["score_n"]) == (n, errors, score_n), k
        if score_n:
            assert r["score_sum"] == pytest.approx(s1, rel=1e-12) and r["score_sq"] == pytest.approx(s2, rel=1e-12)
        else:
            assert r["score_sum"] is None and r["score_sq"] is None


@pytest.mark.parametrize("stored", [True, False], ids=["store", "raw"])
def test_the_rollback_counts_per_hour_and_version_equal_a_count_of_the_files(ws, stored):
    """Requests and errors come from each version's rollup, the score sums from one scan of
    the successful requests: both equal a numpy count of the files."""
    from monitoring.alerts import rollback

    kept = ws.source.rollups
    ws.source.rollups = ws.source.rollups if stored else None
    try:
        _, counts, _ = rollback._series(ws, None, 3600, False)
    finally:
        ws.source.rollups = kept
    _same_hourly(counts, _hourly_from_files(ws.source.files))


def test_failed_requests_count_as_requests_and_errors_but_their_scores_do_not(tmp_path):
    """Hand-made logs: failures that carry a score, missing scores, an hour a version only
    failed in, a version that starts late; and an evaluation time inside the history."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from monitoring.alerts import rollback
    from monitoring.config import load_config
    from monitoring.logs.workspace import open_workspace

    t0 = 1_793_000_000 // 3600 * 3600
    rows = [(t0 + 600 * i, ("v1", "v2", "v3")[i % 3] if i >= 6 else ("v1", "v2")[i % 2],
             "500" if i % 4 == 0 else "ok", None if i % 5 == 0 else (i % 7) / 7) for i in range(40)]
    rows += [(t0 + 3600 * 7 + 60, "v3", "503", 0.9), (t0 + 3600 * 7 + 120, "v3", "error", None)]
    pq.write_table(pa.table({
        "request_id": [f"r{i}" for i in range(len(rows))],
        "timestamp": pa.array([r[0] * 1_000_000 for r in rows], pa.timestamp("us", "UTC")),
        "model_version": [r[1] for r in rows], "status": [r[2] for r in rows],
        "latency_ms": [5.0 + i for i in range(len(rows))], "score": pa.array([r[3] for r in rows], pa.float64()),
    }), tmp_path / "logs.parquet")
    (tmp_path / "monitoring.toml").write_text(f'logs = "{tmp_path / "logs.parquet"}"\ndata_dir = "{tmp_path / "data"}"\n')
    ws = open_workspace(load_config(str(tmp_path / "monitoring.toml")))
    want = _hourly_from_files(ws.source.files)
    _same_hourly(rollback._series(ws, None, 3600, False)[1], want)
    assert want[(t0 // 3600 + 7, "v3")][:3] == (2, 2, 0)
    at = ws.extent.first + timedelta(hours=1)           # the first hour only: v3 starts at `at`
    _, counts, _ = rollback._series(ws, at, 3600, False)
    _same_hourly(counts, {k: v for k, v in want.items() if k[0] == t0 // 3600})
    assert set(counts["v"]) == {"v1", "v2"} and "v3" in {v for _, v in want}


@pytest.mark.parametrize("guard_score", [False, True], ids=["score unguarded", "score guarded"])
def test_the_rollback_rule_scans_scores_only_when_score_mean_is_guarded(ws, monkeypatch, guard_score):
    """Unguarded metrics decide no verdict: without score_mean in [compare] the rule reads no
    raw row (the store's hours, the accuracy rule's labels) and fires exactly as with the sums."""
    from monitoring.alerts import rollback
    from monitoring.compare import settings as compare_settings

    base = compare_settings.load_compare_settings(ws.config)
    guarded = {**base.guarded, "score_mean": compare_settings.parse_tolerance("score_mean", "+1%")} \
        if guard_score else base.guarded
    monkeypatch.setattr(compare_settings, "load_compare_settings",
                        lambda cfg: compare_settings.CompareSettings(guarded, base.alpha, base.mixture_requests))
    ctx = engine.build_context(ws)
    engine._add_labels(ws, ctx, None)
    scans, query = [], type(ws.source).query

    def counted(self, con, body, *a, **kw):
        scans.append(body)
        return query(self, con, body, *a, **kw)

    monkeypatch.setattr(type(ws.source), "query", counted)
    rollback.provide(ws, ctx, None, {"look_minutes": 60, "active_hours": 24})
    assert sum("sum(score" in s for s in scans) == (1 if guard_score else 0)
    monkeypatch.setattr(type(ws.source), "query", query)
    series = rollback._series
    monkeypatch.setattr(rollback, "_series", lambda *a, **kw: series(*a, **{**kw, "scores": True}))
    with_sums = engine.build_context(ws)
    engine._add_labels(ws, with_sums, None)
    rollback.provide(ws, with_sums, None, {"look_minutes": 60, "active_hours": 24})
    assert ctx.extra["rollback"] and ctx.extra["rollback"] == with_sums.extra["rollback"]

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

"""The chance bands' calibration chunks of a reference with timestamps (`timeruns`): picked
from its rows per minute, n0 consecutive rows in time order each, checked against a global
sort of the reference in numpy; the calibration from them still widens a clustered column
and leaves an independent one at 1; the store's minute counts equal the raw ones; and two
threads calibrating one shared `Bands` calibrate it once."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.drift import Column, bands, compare, load_settings, timeruns
from monitoring.drift import overtime as ot
from monitoring.drift.sql import Side
from monitoring.logs.source import run

T0_US = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1_000_000)


@pytest.mark.parametrize("counts, n0, k, expected", [
    ([300] * 10, 1000, 3, [(0, 3), (4, 7)]),            # starts at rows 0, 1000, 2000: the third runs out
    ([1000] * 6, 1000, 3, [(0, 0), (2, 2), (4, 4)]),    # one unit each, every other unit
    ([2500, 10, 10], 1000, 4, [(0, 0)]),                # starts 0 and 630.. fall in unit 0, the rest too short
    ([100] * 4, 1000, 2, []),                           # the reference holds fewer than n0 rows
])
def test_pick_runs_by_hand(counts, n0, k, expected):
    assert timeruns.pick_runs(np.arange(len(counts)), np.array(counts), n0, k) == expected


@pytest.mark.parametrize("seed", range(6))
def test_pick_runs_are_shortest_disjoint_and_spread(seed):
    rng = np.random.default_rng(seed)
    units = np.sort(rng.choice(5000, size=800, replace=False))          # gaps between occupied units
    counts = rng.poisson(rng.choice([3, 40, 400], size=800)) + 1
    n0, k = 500, 25
    runs = timeruns.pick_runs(units, counts, n0, k)
    by_unit = dict(zip(units.tolist(), counts.tolist(), strict=True))
    total = counts.sum()
    assert 0 < len(runs) <= k
    last_end = -1
    for j, (a, b) in enumerate(runs):
        inside = [u for u in units.tolist() if a <= u <= b]
        rows = sum(by_unit[u] for u in inside)
        assert a > last_end and rows >= n0 and rows - by_unit[b] < n0      # disjoint, enough, shortest
        start_row = sum(c for u, c in by_unit.items() if u < a)
        assert start_row >= j * total // k                              # at or after its share of the rows
        last_end = b
    assert len(runs) >= k * 0.8   # runs of ~n0 rows fit in spacing of total/k rows, some pushed past the end


def test_coarsen_takes_hours_when_minutes_are_sparse():
    minutes = np.arange(0, 100_000, 7)                                   # one row every 7 minutes
    size, units, counts = timeruns.coarsen(minutes, np.ones_like(minutes), 100)  # 8.6 rows an hour
    assert size == 60 and counts.sum() == len(minutes)
    assert np.array_equal(units, np.unique(minutes // 60))
    assert timeruns.coarsen(minutes, np.full_like(minutes, 300), 1000)[0] == 1


def _logs(path, n, seed, *, clustered=False):
    """A log-like Parquet file: ts (with ties, uneven traffic, a quiet gap), seq, x, y, c."""
    rng = np.random.default_rng(seed)
    rate = np.where(np.arange(n) < n // 2, 1_000_000, 2_000_000)          # µs between rows: two traffic levels
    gaps = rng.exponential(rate).astype(np.int64) // 1_000_000 * 1_000_000  # whole seconds: many ties
    gaps[n // 3] += 3 * 3_600_000_000                                     # three quiet hours
    ts = T0_US + np.cumsum(gaps)
    shuffle = rng.permutation(n)                                         # file order is not time order
    hour = (ts - T0_US) // 3_600_000_000
    level = rng.normal(size=hour.max() + 1)[hour] if clustered else 0.0
    table = pa.table({"ts_us": ts[shuffle], "seq": np.arange(n), "x": (rng.normal(size=n) + level)[shuffle],
                      "y": rng.normal(size=n), "c": rng.choice(list("abcd"), size=n)})
    pq.write_table(table, path)
    return table


def _side(path):
    columns = [Column("x", "feature", "numeric"), Column("y", "feature", "numeric"),
               Column("c", "feature", "categorical")]
    side = Side(name="reference", ctes=(("reference_raw", f"SELECT * FROM read_parquet('{path}')"),),
                rows_sql="reference_raw", params={}, exprs={c.name: f'"{c.name}"' for c in columns},
                ts_us="ts_us", order_sql="ts_us, seq", description="reference")
    return side, columns


def test_chunks_are_n0_consecutive_rows_in_time_order(tmp_path):
    table = _logs(tmp_path / "ref.parquet", 40_000, 1)
    side, _ = _side(tmp_path / "ref.parquet")
    side = replace(side, exprs=side.exprs | {"seq": "seq"})   # the table keeps the exprs only
    con = duckdb.connect()
    n0, k = 300, 40
    kept, name = timeruns.chunk_table(con, side, n0, k)
    got = run(con, f"SELECT {kept.exprs['seq']} AS seq, mw_pos FROM {name} ORDER BY mw_pos")
    # the oracle: the whole reference sorted in numpy, its rows per minute, the runs' first n0 rows
    ts, seq = table["ts_us"].to_numpy(), table["seq"].to_numpy()
    order = np.lexsort((seq, ts))
    minute = np.floor_divide(ts[order], 60_000_000)
    units, counts = np.unique(minute, return_counts=True)
    assert timeruns.coarsen(units, counts, n0)[0] == 1                  # ~30-60 rows a minute: minutes
    runs = timeruns.pick_runs(units, counts, n0, k)
    want = np.concatenate([seq[order][(minute >= a) & (minute <= b)][:n0] for a, b in runs])
    assert len(runs) >= 0.8 * k
    assert got["seq"].to_list() == want.tolist()
    assert got["mw_pos"].to_list() == list(range(len(runs) * n0))
    rank = np.empty(len(seq), dtype=np.int64)
    rank[seq[order]] = np.arange(len(seq))                              # each row's place in time order
    for j in range(len(runs)):
        place = rank[got["seq"].to_numpy()[j * n0:(j + 1) * n0]]
        assert np.array_equal(place, np.arange(place[0], place[0] + n0))  # n0 consecutive rows
    assert kept.order_sql == "mw_pos" and kept.rows_sql == name
    # the same chunks from minute counts handed in (as the rollup store gives them)
    again = timeruns.chunk_table(con, side, n0, k, timeruns.unit_counts(con, side))[1]
    assert run(con, f"SELECT {kept.exprs['seq']} AS seq FROM {again} ORDER BY mw_pos")["seq"].to_list() == want.tolist()
    assert set(run(con, f"SELECT * FROM {name} LIMIT 0").columns) == {*kept.exprs.values(), "mw_ts", "mw_pos"}


@pytest.mark.parametrize("clustered", [True, False])
def test_calibration_from_time_runs_keeps_its_meaning(tmp_path, monkeypatch, clustered):
    """A column whose level moves hour by hour is widened by the time-run chunks as by the
    old sorted chunks; independent columns stay near 1 with both."""
    _logs(tmp_path / "ref.parquet", 30_000, 2, clustered=clustered)
    side, columns = _side(tmp_path / "ref.parquet")
    monkeypatch.setattr(ot, "CALIBRATION_MAX_CHUNKS", 25)                # stride 2 on 50 chunks of 600 rows
    calls = []
    real = timeruns.chunk_table
    me = threading.current_thread()
    monkeypatch.setattr(timeruns, "chunk_table", lambda *a: (threading.current_thread() is me and calls.append(a[2:4]))
                        or real(*a))

    def inflation(by_time):
        if not by_time:
            monkeypatch.setattr(timeruns, "chunk_table", lambda *a: None)  # today's fallback: one sort
        monkeypatch.setattr(bands, "_SHARED", {})
        con = duckdb.connect()
        settings = load_settings({})
        return dict(ot.calibrate(con, side, columns, compare(con, side, side, columns, settings)).bands.inflation)

    new, old = inflation(True), inflation(False)
    assert calls == [(600, 25)]
    for key in (("y", "feature"), ("c", "feature")):
        assert new[key] < 1.3 and old[key] < 1.3, (new, old)
    if clustered:
        assert new[("x", "feature")] > 1.5 and old[("x", "feature")] > 1.5, (new, old)
    else:
        assert new[("x", "feature")] < 1.3, new


def test_store_minute_counts_equal_the_raw_count(generated_logs, tmp_path, monkeypatch):
    from monitoring import drift
    from monitoring.drift import windows
    from tests.rollup_helpers import built_workspace

    cfg, ws, store = built_workspace(generated_logs, tmp_path / "data")
    settings = drift.load_settings(cfg.section("drift"))
    ref = drift.resolve_reference(cfg, settings, ws.extent)
    cur = drift.default_current(ref, ws.extent)
    ws.source.rollups = store
    p = windows.plan(ws, ref, cur)
    _, ref_f, _ = windows.store_windows(ws, ref, cur, p)
    raw = timeruns.unit_counts(ws.con, p.reference)
    stored = windows._store_minutes(ws, store, ref_f)
    assert raw.height > 1000 and stored.to_dicts() == raw.to_dicts()
    # the page's path hands the store's counts to the calibration
    seen = []
    real = timeruns.chunk_table
    monkeypatch.setattr(timeruns, "chunk_table", lambda con, side, n0, k, minutes=None:
                        seen.append(minutes is not None) or real(con, side, n0, k, minutes))
    monkeypatch.setattr(ot, "CALIBRATION_MAX_CHUNKS", 10)
    monkeypatch.setattr(bands, "_SHARED", {})
    result = drift.analyze(ws, ref, cur, settings)
    assert result.origin == "rollups" and result.bands.calibrated and True in seen


def test_one_shared_bands_is_calibrated_once_by_two_threads(tmp_path, monkeypatch):
    """The alert thread and a page calibrate the same `bands.shared` Bands: the second waits
    for the first and finds it calibrated."""
    _logs(tmp_path / "ref.parquet", 30_000, 3, clustered=True)
    side, columns = _side(tmp_path / "ref.parquet")
    monkeypatch.setattr(bands, "_SHARED", {})
    con = duckdb.connect()
    result = compare(con, side, side, columns, load_settings({}))
    started, release, second = threading.Event(), threading.Event(), threading.Event()
    calls = []
    real = ot._inflate

    def slow(*a, **kw):
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            started.set()
            release.wait(30)
        else:
            second.set()
        return real(*a, **kw)

    monkeypatch.setattr(ot, "_inflate", slow)
    out = {}
    threads = [threading.Thread(target=lambda n=n: out.__setitem__(n, ot.calibrate(con, side, columns, result)),
                                name=n) for n in ("alerts", "page")]
    threads[0].start()
    assert started.wait(30)
    threads[1].start()
    assert not second.wait(1.0)          # the page waits on the lock instead of calibrating again
    release.set()
    for t in threads:
        t.join(60)
    assert calls == ["alerts"]
    assert out["alerts"].bands is out["page"].bands and out["page"].bands.calibrated
    assert out["page"].bands.inflation[("x", "feature")] > 1.5


def test_bands_pickle_without_their_lock():
    """Pages cache drift results by pickling them (st.cache_data): the lock is left out and a
    fresh one made, the calibration kept."""
    import pickle

    b = bands.Bands({}, inflation={("x", "feature"): 1.7}, calibrated=True)
    c = pickle.loads(pickle.dumps(b))
    assert c.inflation == b.inflation and c.calibrated
    assert c.calibrating is not b.calibrating and c.calibrating.acquire(blocking=False)

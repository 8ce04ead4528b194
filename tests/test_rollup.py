"""Rollups against raw scans: every figure the store serves equals the same figure computed
from the logs (the `logs` view with duplicates removed, and numpy), on generated logs with
every documented incident plus duplicate and invalid rows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from monitoring import sample
from monitoring.config import load_config
from monitoring.logs.workspace import open_workspace
from monitoring.metrics import anomalies, sketch
from monitoring.metrics import service as metrics
from monitoring.query.filters import BUCKETS, Filters
from monitoring.rollup import build, features, read
from monitoring.rollup import store as st
from monitoring.rollup.exact import exact_quantiles
from monitoring.rollup.tables import DERIVED, TABLES

ROOT = Path(__file__).resolve().parent.parent
START = sample.DEFAULT_START
INC = {i.name: i for i in sample.incidents(START, 30)}


def add_duplicates(logs: Path) -> None:
    """A file of copies: rows of days 3 and 4 again (some with an earlier time, so the copy
    in this file is the one kept), a request repeated inside the file, and invalid rows."""
    a = pq.read_table(next((logs / "date=2026-10-27").glob("*.parquet")))
    b = pq.read_table(next((logs / "date=2026-10-28").glob("*.parquet")))
    copies = pa.concat_tables([a.slice(0, 40), b.slice(100, 30), b.slice(100, 5)])
    earlier = a.slice(200, 10)
    ts = pc.subtract(earlier["timestamp"], pa.scalar(timedelta(hours=1)))
    earlier = earlier.set_column(earlier.schema.get_field_index("timestamp"), "timestamp", ts)
    bad = a.slice(300, 6)
    lat = pa.array([None, -1.0, float("nan"), float("inf"), 5.0, 7.0])
    bad = bad.set_column(bad.schema.get_field_index("latency_ms"), "latency_ms", lat)
    rid = pa.array([f"bad-{i}" for i in range(6)])
    bad = bad.set_column(bad.schema.get_field_index("request_id"), "request_id", rid)
    out = logs / "date=2026-10-28" / "part-1.parquet"
    pq.write_table(pa.concat_tables([copies, earlier, bad]).cast(a.schema), out)


@pytest.fixture(scope="module")
def logs(generated_logs, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("rollup") / "logs"
    shutil.copytree(generated_logs, d)
    add_duplicates(d)
    return d


@pytest.fixture(scope="module")
def env(logs, tmp_path_factory):
    """(config, workspace (raw, duplicates registered), store) over the logs."""
    cfg = replace(load_config(overrides={"logs": str(logs)}), data_dir=str(tmp_path_factory.mktemp("data")))
    ws = open_workspace(cfg)
    build.build(cfg, con=ws.con)
    store = read.open_store(cfg)
    store.check(ws.source)
    return cfg, ws, store


def tables_of(root: Path) -> dict[str, pl.DataFrame]:
    """Every table of a store, summed over parts (what readers see), sorted; the coarser
    grains, which parts do not hold, summed here from the finer table (integer floor division)."""
    import duckdb
    out = {}
    for name, t in TABLES.items():
        if name in DERIVED:
            finer, k = DERIVED[name]
            assert not st.has_table(root, name)      # only the segments hold them
            if finer in out:
                out[name] = (out[finer].with_columns(pl.col("t") // k).group_by(list(t.keys))
                             .agg(pl.col("n").sum()).filter(pl.col("n") != 0).sort(list(t.keys), nulls_last=True))
            continue
        if not st.has_table(root, name):
            continue
        m = st.read_manifest(root)
        parts = [e.part for e in m.files.values()] + [st.DUPS_PART]
        keys = ", ".join(t.keys)
        vals = ", ".join(f"min({v}) AS {v}" if v == "min" else f"max({v}) AS {v}" if v == "max"
                         else f"sum({v}) AS {v}" for v in t.values)
        df = duckdb.sql(f"SELECT {keys}, {vals} FROM read_parquet('{st.glob_of(root, name)}', hive_partitioning=true) "
                        f"WHERE list_contains({parts!r}, part) GROUP BY ALL HAVING sum(n) <> 0").pl()
        out[name] = df.sort(list(t.keys), nulls_last=True)
    return out


def compact_tables(root: Path) -> dict[str, pl.DataFrame]:
    """The segments readers read (compact.py), summed over segments, sorted like `tables_of`."""
    import duckdb
    m = st.read_manifest(root)
    out = {}
    for name, t in TABLES.items():
        paths = [str(p) for g in m.segments if (p := root / g.name / f"{name}.parquet").exists()]
        if paths:
            vals = ", ".join(f"min({v}) AS {v}" if v == "min" else f"max({v}) AS {v}" if v == "max"
                             else f"sum({v}) AS {v}" for v in t.values)
            out[name] = duckdb.sql(f"SELECT {', '.join(t.keys)}, {vals} FROM read_parquet({paths!r}) "
                                   "GROUP BY ALL HAVING sum(n) <> 0").pl().sort(list(t.keys), nulls_last=True)
    return out


def segment_table(root: Path, name: str, keys: list[str]) -> pl.DataFrame:
    m = st.read_manifest(root)
    frames = [pl.read_parquet(p) for g in m.segments if (p := root / g.name / f"{name}.parquet").exists()]
    return (pl.concat(frames).group_by(keys).agg(pl.col("n").sum()).filter(pl.col("n") != 0)
            .sort(keys, nulls_last=True))


def assert_same_tables(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        x, y = a[name], b[name]
        assert x.height == y.height, name
        exact = [c for c in x.columns if c not in ("sum", "sum2", "min", "max")]
        assert x.select(exact).equals(y.select(exact)), name
        for c in ("sum", "sum2"):
            if c in x.columns:
                np.testing.assert_allclose(x[c].to_numpy(), y[c].to_numpy(), rtol=1e-9, atol=1e-9)


WINDOWS = [
    ("whole", None, None),
    ("error burst", INC["error_burst"].start - timedelta(hours=3), INC["error_burst"].end + timedelta(minutes=47)),
    ("latency regression", INC["latency_regression"].start, INC["latency_regression"].end),
    ("spike, unaligned minutes", INC["traffic_spike"].start - timedelta(minutes=37), INC["traffic_spike"].end + timedelta(minutes=13)),
    ("gap", INC["downtime_gap"].start - timedelta(hours=1), INC["downtime_gap"].end + timedelta(hours=1)),
    ("duplicates' days", START + timedelta(days=3), START + timedelta(days=5)),
]
FILTERS = [{}, {"model_versions": ("v3",)}, {"endpoints": ("/v2/predict",)}, {"model_name": "loan-risk"}]


def _filters(ws, start, end, extra) -> Filters:
    if start is None:
        start = ws.extent.first.replace(second=0, microsecond=0)
        end = ws.extent.last.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return Filters(start=start, end=end, **extra)


@pytest.mark.parametrize("bucket", list(BUCKETS))
@pytest.mark.parametrize(("label", "start", "end"), WINDOWS, ids=[w[0] for w in WINDOWS])
def test_latency_histogram_equals_raw(env, bucket, label, start, end):
    _, ws, store = env
    f = _filters(ws, start, end, {})
    for with_previous, total in ((False, False), (True, False), (True, True)):
        got = read.latency_hist(store, ws.con, f, BUCKETS[bucket], with_previous, source=ws.source,
                                previous_total=total)
        want = metrics.scan_rollup(ws.source, ws.con, f, BUCKETS[bucket], with_previous, total)
        k = ["period", "bucket", "is_error", "bin"]
        assert got.sort(k, nulls_last=True).equals(want.sort(k, nulls_last=True)), (label, bucket, with_previous)
        if total:   # the previous window as one histogram: the bucketed one, summed
            prev = metrics.scan_rollup(ws.source, ws.con, f, BUCKETS[bucket], True).filter(pl.col("period") == 0)
            summed = prev.group_by("is_error", "bin").agg(pl.col("n").sum()).sort("is_error", "bin")
            mine = got.filter(pl.col("period") == 0)
            assert mine["bucket"].null_count() == mine.height
            assert mine.select("is_error", "bin", "n").sort("is_error", "bin").equals(summed)


@pytest.mark.parametrize("extra", FILTERS, ids=lambda e: ",".join(e) or "none")
@pytest.mark.parametrize(("label", "start", "end"), WINDOWS[:3], ids=[w[0] for w in WINDOWS[:3]])
def test_counts_by_filter_and_error_type_equal_raw(env, extra, label, start, end):
    _, ws, store = env
    f = _filters(ws, start, end, extra)
    for bucket in ("minute", "hour", "day"):
        got = read.latency_hist(store, ws.con, f, BUCKETS[bucket], source=ws.source)
        want = metrics.scan_rollup(ws.source, ws.con, f, BUCKETS[bucket])
        k = ["period", "bucket", "is_error", "bin"]
        assert got.sort(k).equals(want.sort(k))
        assert read.error_types(store, ws.con, f, bucket).equals(metrics.error_types(ws.source, ws.con, f, bucket))


@pytest.mark.parametrize(("label", "start", "end"), WINDOWS[1:], ids=[w[0] for w in WINDOWS[1:]])
def test_minute_counts_for_gaps_and_spikes_equal_raw(env, label, start, end):
    _, ws, store = env
    f = _filters(ws, start, end, {})
    assert read.minute_counts(store, ws.con, f).equals(anomalies.minute_counts(ws.source, ws.con, f))


def test_error_burst_is_visible_in_rollup_minutes(env):
    _, ws, store = env
    inc = INC["error_burst"]
    m = read.minutes(store, ws.con, Filters(start=inc.start, end=inc.end))
    raw = ws.source.query(ws.con, "SELECT count(*) AS n, count(*) FILTER (WHERE is_error) AS e FROM logs "
                                  "WHERE ts >= $s AND ts < $e", {"s": inc.start, "e": inc.end})
    assert m["requests"].sum() == raw["n"][0] and m["errors"].sum() == raw["e"][0]
    assert raw["e"][0] > 0.05 * raw["n"][0]  # the burst is there to be counted


@pytest.mark.parametrize("dim", ["model_name", "model_version", "endpoint", "error_type"])
def test_dimension_histogram_equals_raw(env, dim):
    _, ws, store = env
    f = _filters(ws, *WINDOWS[2][1:], {})
    got = read.dimension_hist(store, ws.con, f, dim, source=ws.source)
    cond, params = f.where()
    want = ws.source.query(ws.con, f"SELECT {dim} AS key, is_error, {sketch.bin_sql('latency_ms')} AS bin, "
                                   f"count(*) AS n FROM logs WHERE {cond} GROUP BY ALL", params)
    k = ["key", "is_error", "bin"]
    assert got.sort(k, nulls_last=True).equals(want.sort(k, nulls_last=True))


def _ok_latencies(ws, f: Filters, bucket_s: int) -> pl.DataFrame:
    cond, params = f.where()
    return ws.source.query(ws.con, f"SELECT ts_us // {bucket_s * 1_000_000} AS bucket, latency_ms FROM logs "
                                   f"WHERE {cond} AND NOT is_error", params)


@pytest.mark.parametrize("bucket", ["hour", "6hour", "day"])
def test_percentiles_within_the_sketch_bound_and_exact_on_request(env, bucket):
    _, ws, store = env
    f = _filters(ws, INC["latency_regression"].start - timedelta(days=1), INC["latency_regression"].end, {})
    bucket_s = BUCKETS[bucket]
    hist = read.latency_hist(store, ws.con, f, bucket_s, source=ws.source)
    approx = sketch.quantiles(hist.filter(~pl.col("is_error")).select("bucket", "bin", "n"), by="bucket")
    exact = exact_quantiles(ws.source, ws.con, f, bucket_s, hist).filter(~pl.col("is_error"))
    raw = _ok_latencies(ws, f, bucket_s)
    checked = 0
    for (b,), g in raw.group_by(["bucket"]):
        v = g["latency_ms"].to_numpy()
        a = approx.filter(pl.col("bucket") == b).row(0, named=True)
        e = exact.filter(pl.col("bucket") == b).row(0, named=True)
        for q in (50, 95, 99):
            want = np.percentile(v, q)
            assert abs(a[f"p{q}"] - want) <= sketch.RELATIVE_ERROR * want + 1e-9
            assert e[f"p{q}"] == pytest.approx(want, rel=1e-12)
        checked += 1
    assert checked == approx.height and checked > 1


def test_compacted_tables_are_the_parts_summed(env):
    """What readers read (one file a table) equals every part plus the correction, summed
    independently here; the dimension-free latency tables equal the full ones summed over
    model, version, endpoint and error type."""
    _, _, store = env
    parts = tables_of(store.root)
    parts.pop("ids")
    packed = compact_tables(store.root)
    assert_same_tables(packed, parts)
    m = store.manifest
    for g in ("5min", "15min", "hour", "day"):
        free = segment_table(store.root, f"all/{g}", ["t", "is_error", "bin"])
        want = (parts[f"latency/{g}"].group_by("t", "is_error", "bin").agg(pl.col("n").sum())
                .filter(pl.col("n") != 0).sort("t", "is_error", "bin"))
        assert free.equals(want.select(free.columns)), g
    for g in ("minute", "hour", "day"):
        k = ["t", "is_error", "error_type"]
        free = segment_table(store.root, f"all/traffic-{g}", k)
        want = (parts[f"traffic/{g}"].group_by(k).agg(pl.col("n").sum())
                .filter(pl.col("n") != 0).sort(k, nulls_last=True))
        assert free.equals(want.select(free.columns)), g
    # the folders are the segments the manifest names: older ones are gone
    assert {d.name for d in store.root.glob("compact-*")} == {g.name for g in m.segments}


def test_duplicates_counted_once_like_a_raw_scan(env):
    _, ws, store = env
    assert ws.duplicates > 0
    assert read.duplicates(store) == ws.duplicates
    hist = read.latency_hist(store, ws.con, Filters(), 86400)
    assert int(hist["n"].sum()) == ws.health.valid_rows == ws.extent.rows


def _raw_day(ws, day: int) -> tuple[Filters, str, dict]:
    f = Filters(start=START + timedelta(days=day), end=START + timedelta(days=day + 1))
    cond, params = f.where()
    return f, cond, params


@pytest.mark.parametrize("day", [3, 22, 27])  # duplicates, device drift, prediction shift
def test_drift_tables_equal_raw_counts(env, day):
    _, ws, store = env
    f, cond, params = _raw_day(ws, day)
    by_feature = {feat.name: feat for feat in ws.source.features}
    # numeric: signed log bins, from numpy over the raw values
    bins = features.numeric_bins(store, ws.con, f)
    for name in ("income", "debt_to_income", "age"):
        x = ws.source.query(ws.con, f"SELECT CAST({by_feature[name].col} AS DOUBLE) AS x FROM logs WHERE {cond}",
                            params)["x"].drop_nulls().to_numpy()
        sign = np.sign(x).astype(int)
        b = sketch.bin_of(np.abs(x))
        want = pl.DataFrame({"sign": sign, "bin": b}).group_by("sign", "bin").len("n").sort("sign", "bin")
        got = bins.filter((pl.col("feature") == name) & (pl.col("role") == "feature")).select("sign", "bin", "n")
        assert got.sort("sign", "bin").select(pl.all().cast(pl.Int64)).equals(want.select(pl.all().cast(pl.Int64)))
        g = bins.filter(pl.col("feature") == name)
        assert g["min"].min() == x.min() and g["max"].max() == x.max()
        assert g["sum"].sum() == pytest.approx(x.sum(), rel=1e-9)
    # categorical and the class prediction
    cats = features.categories(store, ws.con, f)
    for name, col in (("device", by_feature["device"].col), ("prediction", "prediction")):
        want = ws.source.query(ws.con, f"SELECT CAST({col} AS VARCHAR) AS value, count(*) AS n FROM logs "
                                       f"WHERE {cond} AND {col} IS NOT NULL GROUP BY 1 ORDER BY 1", params)
        got = cats.filter(pl.col("feature") == name).select("value", "n").sort("value")
        assert got.equals(want)
    # prediction x label, and score bins by label
    want = ws.source.query(ws.con, "SELECT CAST(prediction AS VARCHAR) AS prediction, CAST(label AS VARCHAR) AS label, "
                                   f"count(*) AS n FROM logs WHERE {cond} GROUP BY ALL", params)
    k = ["prediction", "label"]
    assert features.outcomes(store, ws.con, f).sort(k, nulls_last=True).equals(want.sort(k, nulls_last=True))
    s = ws.source.query(ws.con, f"SELECT CAST(label AS VARCHAR) AS label, score FROM logs WHERE {cond} AND score IS NOT NULL", params)
    binned = pl.when(pl.col("score") > 1).then(1001).otherwise(pl.col("score").mul(1000).floor().clip(-1, 1000))
    want = (s.with_columns(binned.cast(pl.Int32).alias("bin"))
            .group_by("label", "bin").len("n").sort("label", "bin", nulls_last=True))
    got = features.score_bins(store, ws.con, f).sort("label", "bin", nulls_last=True)
    assert got.select("label", "bin", pl.col("n").cast(pl.UInt32)).equals(want.select("label", "bin", pl.col("n").cast(pl.UInt32)))


def test_numeric_quantiles_from_bins_within_bound(env):
    _, ws, store = env
    f, cond, params = _raw_day(ws, 10)
    q = features.numeric_quantiles(features.numeric_bins(store, ws.con, f), (0.1, 0.5, 0.9))
    feat = next(x for x in ws.source.features if x.name == "income")
    x = ws.source.query(ws.con, f"SELECT {feat.col} AS x FROM logs WHERE {cond}", params)["x"].to_numpy()
    row = q.filter(pl.col("feature") == "income").row(0, named=True)
    for p in (10, 50, 90):
        want = np.percentile(x, p)
        assert abs(row[f"p{p}"] - want) <= sketch.RELATIVE_ERROR * abs(want) + 1e-9


@pytest.mark.parametrize(("what", "call"), [
    ("unaligned start without the raw logs", lambda s, c: read.latency_hist(s, c, Filters(start=START + timedelta(seconds=30), end=START + timedelta(days=1)), 3600)),
    ("sub-minute bucket", lambda s, c: read.latency_hist(s, c, Filters(), 30)),
    ("minute latency bins without the raw logs", lambda s, c: read.latency_hist(s, c, Filters(start=START, end=START + timedelta(days=1)), 60)),
    ("window edge off 15 minutes without the raw logs", lambda s, c: read.latency_hist(s, c, Filters(start=START + timedelta(minutes=7), end=START + timedelta(days=1)), 3600)),
    ("drift window off a day", lambda s, c: features.numeric_bins(s, c, Filters(start=START + timedelta(hours=5), end=START + timedelta(days=2)))),
    ("drift per endpoint", lambda s, c: features.categories(s, c, Filters(start=START, end=START + timedelta(days=1), endpoints=("/v1",)))),
])
def test_windows_the_store_cannot_answer_say_so(env, what, call):
    _, ws, store = env
    with pytest.raises(read.NotCovered):
        call(store, ws.con)


# -- incremental updates ------------------------------------------------------------------------

def test_update_after_adding_changing_and_removing_files_equals_a_full_build(generated_logs, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(generated_logs, logs)
    cfg = replace(load_config(overrides={"logs": str(logs)}), data_dir=str(tmp_path / "a"))
    first = build.build(cfg)
    assert first.rolled == 30 and first.duplicates == 0
    assert build.update(cfg).rolled == 0  # nothing changed: nothing read

    # add a day, and a file of copies of an unchanged file's rows; change one day; remove one
    sample.generate(logs, days=1, rows_per_day=1500, seed=11, start=START + timedelta(days=30))
    add_duplicates(logs)
    day10 = next((logs / "date=2026-11-03").glob("*.parquet"))
    t = pq.read_table(day10)
    pq.write_table(t.slice(0, t.num_rows // 2), day10)
    shutil.rmtree(logs / "date=2026-11-13")
    r = build.update(cfg)
    assert (r.rolled, r.removed, r.kept) == (3, 2, 28)
    assert r.duplicates > 0

    full_cfg = replace(cfg, data_dir=str(tmp_path / "b"))
    full = build.build(full_cfg)
    assert full.duplicates == r.duplicates
    assert_same_tables(tables_of(r.root), tables_of(full.root))
    ws = open_workspace(replace(cfg, data_dir=str(tmp_path / "c")))
    assert r.duplicates == ws.duplicates
    # and removing the copies again takes the correction away
    (logs / "date=2026-10-28" / "part-1.parquet").unlink()
    r2 = build.update(cfg)
    assert (r2.rolled, r2.removed) == (0, 1)
    # the added day reuses day 0's request ids (same seed, day index 0): those copies stay
    assert 0 < r2.duplicates < r.duplicates
    assert r2.duplicates == open_workspace(replace(cfg, data_dir=str(tmp_path / "e"))).duplicates
    rebuilt = build.build(replace(cfg, data_dir=str(tmp_path / "d")))
    assert_same_tables(tables_of(r2.root), tables_of(rebuilt.root))
    assert_same_tables(compact_tables(r2.root), compact_tables(rebuilt.root))


def test_status_names_covered_stale_new_and_removed_files(generated_logs, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(generated_logs, logs)
    cfg = replace(load_config(overrides={"logs": str(logs)}), data_dir=str(tmp_path / "data"))
    s = build.status(cfg)
    assert not s.exists and len(s.new) == 30
    build.build(cfg)
    s = build.status(cfg)
    assert s.up_to_date and len(s.covered) == 30 and s.rows == sum(pq.ParquetFile(f).metadata.num_rows
                                                                  for f in logs.rglob("*.parquet"))
    assert s.size_bytes > 0
    f = next((logs / "date=2026-11-01").glob("*.parquet"))
    pq.write_table(pq.read_table(f).slice(0, 10), f)
    shutil.rmtree(logs / "date=2026-11-02")
    s = build.status(cfg)
    assert (len(s.covered), s.stale, len(s.new), len(s.removed)) == (28, (str(f),), 0, 1)
    with pytest.raises(read.NotCovered, match="changed"):
        ws = open_workspace(replace(cfg, data_dir=str(tmp_path / "x")))
        read.open_store(cfg).check(ws.source)


# -- command line, and a machine in another time zone ---------------------------------------------

def _cli(args, env_extra=None, cwd=ROOT):
    env = os.environ | (env_extra or {})
    return subprocess.run([sys.executable, "-m", "monitoring", "rollup", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


@pytest.mark.parametrize(("args", "message"), [
    (["status", "--logs", "/nonexistent/logs"], "no such file or directory"),
    (["build", "--logs", "/nonexistent/logs"], "no such file or directory"),
    (["build", "--engine", "flink"], "invalid choice"),
    (["rebuild"], "invalid choice"),
])
def test_cli_bad_input_is_one_clear_line(args, message, tmp_path):
    r = _cli(args, {"MONITORING_DATA_DIR": str(tmp_path)})
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_cli_build_in_the_other_zone_equals_the_in_process_build(env, tmp_path):
    """The store built by a process in another zone (UTC from New York, where `make test`
    runs this module, New York from anywhere else) is the same, table by table."""
    cfg, ws, store = env
    data = tmp_path / "other"
    other = {"MONITORING_DATA_DIR": str(data),
             "TZ": "UTC" if os.environ.get("TZ") == "America/New_York" else "America/New_York"}
    r = _cli(["build", "--logs", cfg.logs], other)
    assert r.returncode == 0, r.stderr
    assert "rolled 31 file(s)" in r.stdout and f"{ws.duplicates:,} duplicate copies" in r.stdout
    s = _cli(["status", "--logs", cfg.logs], other)
    assert "covered files: 31" in s.stdout and "up to date" in s.stdout
    assert_same_tables(tables_of(data / "rollups" / store.root.name), tables_of(store.root))


@pytest.mark.parametrize(("batch_rows", "dedupe_rows"), [
    (4000, None),          # about three day files a batch, each written when it is done
    (1, None),             # one file a batch
    (None, None),          # the default: every file in one batch
    (None, 5000),          # the duplicate check sorting ~9 slices of the id hashes
    (4000, 2000),          # both: ~20 slices
])
def test_a_build_in_many_batches_equals_one_in_a_single_batch(env, monkeypatch, tmp_path, batch_rows, dedupe_rows):
    cfg, ws, store = env
    from monitoring.rollup import duck

    if batch_rows:
        monkeypatch.setattr(duck, "BATCH_ROWS", batch_rows)
    if dedupe_rows:
        monkeypatch.setattr(duck, "DEDUPE_ROWS", dedupe_rows)
    r = build.build(replace(cfg, data_dir=str(tmp_path / "batched")))
    assert r.duplicates == read.duplicates(store) == ws.duplicates > 0
    assert_same_tables(tables_of(r.root), tables_of(store.root))


@pytest.mark.parametrize("start, end, bucket", [
    (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC), "hour"),
    (datetime(2026, 11, 5, 13, 7, tzinfo=UTC), datetime(2026, 11, 5, 16, 41, tzinfo=UTC), "5min"),
    (datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC), "day"),
])
def test_pages_read_the_store_and_get_the_raw_figures(env, start, end, bucket):
    """The readers every page calls (summarize, by_dimension, error_types, minute_counts)
    serve from the store once it covers the logs, with the raw scan's figures."""
    from monitoring.metrics import anomalies

    cfg, raw_ws, _ = env
    served = open_workspace(cfg)
    assert served.source.rollups is not None and raw_ws.source.rollups is None
    f = Filters(start=start, end=end)
    a = metrics.summarize(served.source, served.con, f, bucket, with_previous=True)
    b = metrics.summarize(raw_ws.source, raw_ws.con, f, bucket, with_previous=True)
    assert a.window == b.window and a.previous == b.previous
    assert a.buckets.equals(b.buckets) and a.hist.sort("bin").equals(b.hist.sort("bin"))
    for dim in ("model_version", "endpoint", "error_type"):
        x = metrics.by_dimension(served.source, served.con, f, dim).sort("key")
        y = metrics.by_dimension(raw_ws.source, raw_ws.con, f, dim).sort("key")
        assert x.equals(y), dim
    assert metrics.error_types(served.source, served.con, f, bucket).equals(
        metrics.error_types(raw_ws.source, raw_ws.con, f, bucket))
    assert anomalies.minute_counts(served.source, served.con, f).equals(
        anomalies.minute_counts(raw_ws.source, raw_ws.con, f))


def test_a_stale_store_is_never_read(env, logs, tmp_path):
    cfg, _, _ = env
    local = tmp_path / "logs"
    shutil.copytree(logs, local)
    c = replace(cfg, logs=str(local), data_dir=str(tmp_path / "d"))
    build.build(c)
    assert open_workspace(c).source.rollups is not None
    victim = sorted(local.rglob("*.parquet"))[3]
    t = pq.read_table(victim)
    pq.write_table(t.slice(0, t.num_rows // 2), victim)      # a file changed after the build
    assert open_workspace(c).source.rollups is None          # raw figures until `rollup update`


@pytest.mark.parametrize(("max_segments", "file_segments"), [(6, [1, 2, 3]), (2, [1, 1, 1])])
def test_updates_add_segments_then_merge_them(generated_logs, tmp_path, monkeypatch, max_segments, file_segments):
    """Each update of new day files sums those files only, into one more segment; past
    MAX_SEGMENTS every segment is merged into one. Either way the segments summed equal a
    full build's, and so do the pages' figures."""
    from monitoring.rollup import compact as cp

    monkeypatch.setattr(cp, "MAX_SEGMENTS", max_segments)
    logs = tmp_path / "logs"
    shutil.copytree(generated_logs, logs)
    days = sorted(logs.iterdir())
    for d in days[-2:]:
        shutil.move(d, tmp_path / d.name)
    cfg = replace(load_config(overrides={"logs": str(logs)}), data_dir=str(tmp_path / "data"))
    counts = []
    for i, d in enumerate([None, *days[-2:]]):
        if d is not None:
            shutil.move(tmp_path / d.name, d)
        r = build.build(cfg) if i == 0 else build.update(cfg)
        m = st.read_manifest(r.root)
        counts.append(sum(1 for g in m.segments if g.parts != (st.DUPS_PART,)))
    assert counts == file_segments
    full = build.build(replace(cfg, data_dir=str(tmp_path / "full")))
    assert_same_tables(compact_tables(r.root), compact_tables(full.root))
    a, b = open_workspace(cfg), open_workspace(replace(cfg, data_dir=str(tmp_path / "full")))
    f = Filters(start=START + timedelta(days=20), end=START + timedelta(days=30))
    assert a.source.rollups is not None and b.source.rollups is not None
    x = metrics.summarize(a.source, a.con, f, "hour", with_previous=True, exact_max_rows=0)
    y = metrics.summarize(b.source, b.con, f, "hour", with_previous=True, exact_max_rows=0)
    assert x.window == y.window and x.previous == y.previous and x.buckets.equals(y.buckets)


@pytest.mark.parametrize("rid", ["req-000001", "", "é✓ unicode", "a'quote", "x" * 300,
                                 "6f1c2a4e-0d3b-4c8e-9a57-2b1e0c3d4f5a"])
def test_request_id_hash_is_the_first_15_hex_digits_of_md5(rid):
    """The DuckDB engine's id hash (from md5_number, byte-swapped) is the number the Spark
    engine computes from the hex digest: checked against Python's hashlib."""
    import hashlib

    import duckdb

    from monitoring.rollup.duck import rid_hash
    want = int(hashlib.md5(rid.encode()).hexdigest()[:15], 16)
    got = duckdb.execute(f"SELECT {rid_hash('x')} FROM (SELECT $r AS x)", {"r": rid}).fetchall()[0][0]
    assert got == want


@pytest.mark.parametrize("which", ["all", "first", "score_only", "with_nulls"])
def test_numeric_bins_from_unnest_equal_unpivot_and_numpy(env, which):
    """The DuckDB engine's numeric pass (values unnested beside their position) gives the
    rows of the UNPIVOT text the Spark engine runs, and per (feature, sign, bin) the count,
    min, max, sum and sum of squares numpy computes from the raw values."""
    from monitoring.rollup import duck, tables

    cfg, ws, _ = env
    src = ws.source
    lay = duck.source_layout(src)
    cols = {"all": list(lay.numeric), "first": list(lay.numeric[:1]), "score_only": ["fs"],
            "with_nulls": ["fnull", *lay.numeric[:2]]}[which]
    rows = f"WITH rows AS NOT MATERIALIZED (SELECT *, CAST(NULL AS DOUBLE) AS fnull FROM ({duck.rows_sql(src, lay)})) "
    feats = duck._feats(lay).vstack(pl.DataFrame([("fnull", "feature", "nothing")], schema=["fi", "role", "feature"],
                                                  orient="row"))
    cur = ws.con.cursor()
    cur.register("feats", feats.to_arrow())
    p = {"files": src.files, "subset": src.files}

    def q(sql: str) -> pl.DataFrame:
        return pl.from_arrow(cur.sql(f"{rows}{sql}", params=p).to_arrow_table()).sort(
            ["file", "day", "model_name", "model_version", "feature", "sign", "bin"])

    a, b = q(tables.numeric_sql(cols, "duckdb")), q(tables.numeric_sql(cols, "spark"))
    assert a.height > 0 and a.schema == b.schema
    assert a.drop("sum", "sum2").equals(b.drop("sum", "sum2"))
    np.testing.assert_allclose(a["sum"].to_numpy(), b["sum"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(a["sum2"].to_numpy(), b["sum2"].to_numpy(), rtol=1e-12)
    # the oracle: numpy over the raw values of one feature, every file and day summed
    name = feats.filter(pl.col("fi") == cols[-1]).row(0, named=True)
    raw = pl.from_arrow(cur.sql(f"{rows}SELECT {cols[-1]} AS x FROM rows WHERE {cols[-1]} IS NOT NULL", params=p)
                        .to_arrow_table())["x"].to_numpy()
    want = pl.DataFrame({"sign": np.sign(raw).astype(np.int64), "bin": sketch.bin_of(np.abs(raw)), "x": raw})
    want = want.group_by("sign", "bin").agg(pl.len().alias("n"), pl.col("x").min().alias("min"),
                                            pl.col("x").max().alias("max"), pl.col("x").sum().alias("sum"),
                                            (pl.col("x") ** 2).sum().alias("sum2")).sort("sign", "bin")
    got = (a.filter((pl.col("feature") == name["feature"]) & (pl.col("role") == name["role"]))
           .group_by("sign", "bin").agg(pl.col("n").sum(), pl.col("min").min(), pl.col("max").max(),
                                        pl.col("sum").sum(), pl.col("sum2").sum()).sort("sign", "bin"))
    assert got.height == want.height > 0
    assert got["sign"].cast(pl.Int64).to_list() == want["sign"].to_list()
    assert got["bin"].cast(pl.Int64).to_list() == want["bin"].to_list()
    assert got["n"].to_list() == want["n"].cast(pl.Int64).to_list()
    assert got["min"].to_list() == want["min"].to_list() and got["max"].to_list() == want["max"].to_list()
    np.testing.assert_allclose(got["sum"].to_numpy(), want["sum"].to_numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got["sum2"].to_numpy(), want["sum2"].to_numpy(), rtol=1e-9, atol=1e-9)
    cur.close()


# -- windows off the minute: the store's whole minutes plus the raw edge seconds ---------------

def _edge_windows(logs: Path) -> list[Filters]:
    """Windows with second-level edges, two of them starting or ending inside a minute that
    holds duplicate copies (the file `add_duplicates` wrote), one inside a single minute."""
    ts = sorted(t for t in pq.read_table(logs / "date=2026-10-28" / "part-1.parquet")["timestamp"].to_pylist()
                if t.second and t.second < 59)
    first, last = ts[0].replace(tzinfo=UTC), ts[-1].replace(tzinfo=UTC)
    day3 = START + timedelta(days=3)
    return [
        Filters(start=first, end=last + timedelta(milliseconds=1)),
        Filters(start=first - timedelta(hours=1, seconds=1.5), end=first + timedelta(minutes=3, seconds=0.5)),
        Filters(start=day3 + timedelta(seconds=17.25), end=day3 + timedelta(days=1, hours=2, seconds=41)),
        Filters(start=day3 + timedelta(hours=26, seconds=31), end=day3 + timedelta(hours=26, seconds=50)),
        Filters(start=INC["error_burst"].start + timedelta(seconds=44),
                end=INC["error_burst"].end - timedelta(seconds=3), endpoints=("/v2/predict",)),
    ]


def _oracle(ws, f: Filters, select: str, where: str = "TRUE") -> pl.DataFrame:
    cond, params = f.where()
    return ws.source.query(ws.con, f"SELECT {select}, count(*) AS n FROM logs WHERE {cond} AND {where} "
                                   "GROUP BY ALL HAVING count(*) > 0", params)


def test_windows_off_the_minute_equal_a_raw_query_in_every_reader(env, logs):
    _, ws, store = env
    assert ws.source.dedupe_table and ws.source.rollups is None     # raw oracle, duplicates dropped
    for f in _edge_windows(logs):
        for bucket in ("minute", "5min", "hour", "day"):
            b = BUCKETS[bucket] * 1_000_000
            want = _oracle(ws, f, f"ts_us // {b} AS bucket, is_error, {sketch.bin_sql('latency_ms')} AS bin")
            got = read.latency_hist(store, ws.con, f, BUCKETS[bucket], source=ws.source)
            k = ["bucket", "is_error", "bin"]
            assert got.drop("period").sort(k).equals(want.sort(k).cast(got.drop("period").schema)), (f, bucket)
            et = read.error_types(store, ws.con, f, bucket, ws.source)
            want = _oracle(ws, f, f"ts_us // {b} AS b, coalesce(error_type, '(unspecified)') AS e", "is_error")
            assert sorted(zip(et["time"].dt.epoch("us") // b, et["error_type"], et["errors"], strict=True)) == \
                sorted(want.iter_rows()), (f, bucket)
            m = read.minutes(store, ws.con, f, bucket, ws.source)
            want = _oracle(ws, f, f"ts_us // {b} AS b, model_name, model_version, endpoint, is_error")
            keys = want.select("b", "model_name", "model_version", "endpoint").unique()
            assert int(m["requests"].sum()) == int(want["n"].sum()) and m.height == keys.height, (f, bucket)
            assert int(m["errors"].sum()) == int(want.filter(pl.col("is_error"))["n"].sum())
        prev = read.latency_hist(store, ws.con, f, 3600, True, source=ws.source, previous_total=True)
        want = _oracle(ws, f.previous(), f"is_error, {sketch.bin_sql('latency_ms')} AS bin")
        mine = prev.filter(pl.col("period") == 0).select("is_error", "bin", "n")
        assert mine.sort("is_error", "bin").equals(want.sort("is_error", "bin").cast(mine.schema)), f
        if f.endpoints:
            continue
        got = read.minute_counts(store, ws.con, f, 1, ws.source)
        wide = replace(f, start=f.start - timedelta(days=1))
        want = _oracle(ws, wide, "ts_us // 60000000 AS minute").sort("minute")
        assert got.equals(want.cast(got.schema)), f
        for dim in ("model_version", "endpoint", "error_type"):
            got = read.dimension_hist(store, ws.con, f, dim, source=ws.source).sort("key", "is_error", "bin",
                                                                                     nulls_last=True)
            want = _oracle(ws, f, f"{dim} AS key, is_error, {sketch.bin_sql('latency_ms')} AS bin")
            assert got.equals(want.sort("key", "is_error", "bin", nulls_last=True).cast(got.schema)), (f, dim)


def test_pages_off_the_minute_read_only_the_edge_seconds_raw(env, logs, monkeypatch):
    """Overview/Latency queries with the default window (whole minutes) and a user window off
    the minute: every raw query they make (LogSource.query) is of less than the finest stored
    latency grain (5 minutes) at an edge; before, the unaligned one was one scan of it all."""
    from monitoring.logs.source import LogSource
    from monitoring.query.filters import whole_range

    cfg, raw_ws, _ = env
    served = open_workspace(cfg)
    spans: list[timedelta] = []
    real = LogSource.query

    def counted(self, con, body, params=None, **kw):
        spans.append((params or {}).get("end", datetime.max.replace(tzinfo=UTC))
                     - (params or {}).get("start", datetime.min.replace(tzinfo=UTC)))
        return real(self, con, body, params, **kw)

    start, end = whole_range(served.extent)
    for f in (Filters(start=start, end=end), _edge_windows(logs)[2]):
        spans.clear()
        monkeypatch.setattr(LogSource, "query", counted)
        a = metrics.summarize(served.source, served.con, f, "hour", with_previous=True, exact_max_rows=0)
        d = metrics.by_dimension(served.source, served.con, f, "model_version", exact_max_rows=0)
        e = metrics.error_types(served.source, served.con, f, "hour")
        monkeypatch.setattr(LogSource, "query", real)
        assert spans and max(spans) < timedelta(minutes=5), (f, spans)
        b = metrics.summarize(raw_ws.source, raw_ws.con, f, "hour", with_previous=True, exact_max_rows=0)
        assert a.window == b.window and a.previous == b.previous and a.buckets.equals(b.buckets)
        assert d.equals(metrics.by_dimension(raw_ws.source, raw_ws.con, f, "model_version", exact_max_rows=0))
        assert e.equals(metrics.error_types(raw_ws.source, raw_ws.con, f, "hour"))

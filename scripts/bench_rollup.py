"""Benchmark the rollup store beside plain scans, each scenario in a fresh process.

    python scripts/bench_rollup.py                    # 10M rows, its section of docs/benchmarks.md
    python scripts/bench_rollup.py --size 10M --no-spark --out /tmp/r.md

Ratios are measured side by side in one run: the full build against a plain DuckDB scan of
every column the build reads; an update after one new day file against the full build of
all 30 days; the Overview's and the Latency page's figures read from the store against a
plain scan of timestamp and latency (and against the same figures from the raw logs); the
Spark engine (local[2]) against the DuckDB engine on the same files, as rows per second.
Logs come from bench.py's cache (the project's generator, 30 days, seed 7).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from bench import CACHE, ensure_logs, machine  # noqa: E402

SPARK_DAYS = 1   # Spark on local[2] is timed on the first day only (both engines, same files):
                 # ~330k rows of the 10M logs, a minute or two on a loaded 2-core machine
BEGIN, END = "<!-- rollup benchmarks: scripts/bench_rollup.py -->", "<!-- end rollup benchmarks -->"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _link_days(logs: Path, days: int, into: Path) -> Path:
    """A log folder of the first `days` day files (symlinks: same bytes, no copy)."""
    if into.exists():
        shutil.rmtree(into)
    for d in sorted(p for p in logs.iterdir() if p.is_dir())[:days]:
        (into / d.name).mkdir(parents=True)
        for f in d.glob("*.parquet"):
            (into / d.name / f.name).symlink_to(f)
    return into


def _warm_up(con) -> None:
    """Process start-up costs every scenario would otherwise pay in its first query (DuckDB's
    and Polars' thread pools, Arrow conversion): paid here, on no data, before timing."""
    import polars as pl

    from monitoring.logs.source import run
    run(con, "SELECT range AS x FROM range(1000)").group_by("x").agg(pl.len()).sort("x")


def _cfg(logs: Path, data: Path):
    from dataclasses import replace

    from monitoring.config import load_config
    return replace(load_config(overrides={"logs": str(logs)}), data_dir=str(data))


def scenario(name: str, logs: Path) -> dict:
    from monitoring.logs.source import connect, open_source, resolve_paths
    from monitoring.metrics import anomalies
    from monitoring.metrics import service as metrics
    from monitoring.query import filters as queries
    from monitoring.rollup import build, read

    work = Path(tempfile.mkdtemp(prefix="modelwatch-bench-rollup-"))
    out: dict = {}
    try:
        cfg = _cfg(logs, CACHE / f"rollup-data-{logs.name}")
        _warm_up(con := connect(cfg))
        files = resolve_paths(str(logs))
        t0, c0 = time.perf_counter(), time.process_time()
        if name == "scan_ts_latency":
            con.execute("SELECT sum(latency_ms), max(epoch_us(timestamp)) FROM read_parquet($f)", {"f": files}).fetchall()
        elif name == "scan_ts_latency_repeat":
            q = "SELECT sum(latency_ms), max(epoch_us(timestamp)) FROM read_parquet($f)"
            con.execute(q, {"f": files}).fetchall()
            t0 = time.perf_counter()
            con.execute(q, {"f": files}).fetchall()
        elif name in ("first_open", "first_open_app"):
            # No cache, no store: a data folder of its own. The CLI's open is exact when it
            # returns; the app's returns after the grouped scan and checks duplicates in a thread.
            from monitoring.logs.workspace import open_workspace
            t0, c0 = time.perf_counter(), time.process_time()
            ws = open_workspace(_cfg(logs, work / "data"), background=name == "first_open_app")
            out |= {"rows": ws.extent.rows, "exact_at_open": ws.exact}
            out["seconds"] = round(time.perf_counter() - t0, 3)
            out["cpu_s"] = round(time.process_time() - c0, 2)   # the app's: until it opens
            if ws.wait() and name == "first_open_app":
                out["exact_after_s"] = round(time.perf_counter() - t0, 3)
            out["duplicates"] = ws.duplicates
        elif name == "open_one_day_added":
            # The open after one new day file (29 days opened before): only that file is
            # grouped, its ids grouped and probed among the others; exact when it returns.
            from monitoring.logs.workspace import open_workspace
            days = sorted(p for p in logs.iterdir() if p.is_dir())
            part = _link_days(logs, len(days) - 1, work / "logs")
            c = _cfg(part, work / "data")
            open_workspace(c)                      # 29 days, not timed
            (part / days[-1].name).mkdir()
            for f in days[-1].glob("*.parquet"):
                (part / days[-1].name / f.name).symlink_to(f)
            t0, c0 = time.perf_counter(), time.process_time()
            ws = open_workspace(c)
            out |= {"rows": ws.extent.rows, "duplicates": ws.duplicates}
        elif name == "scan_open_columns":
            # The columns an open reads (the contract's serving columns), every value hashed so
            # none comes from Parquet statistics.
            from monitoring.logs.source import open_source
            src = open_source(str(logs), cfg, con)
            cols = [src.columns[k] for k in ("request_id", "timestamp", "model_name", "model_version",
                                             "endpoint", "latency_ms", "status") if src.columns.get(k)]
            t0, c0 = time.perf_counter(), time.process_time()
            aggs = ", ".join(f'sum(hash("{c}"))' for c in cols)
            con.execute(f"SELECT {aggs} FROM read_parquet($f)", {"f": files}).fetchall()
            out["columns"] = len(cols)
        elif name == "year":
            out |= year_store(work, CACHE / f"rollup-data-{logs.name}", logs, con)
        elif name == "scan_build_columns":
            cols = [c for c in con.execute("DESCRIBE SELECT * FROM read_parquet($f)", {"f": files}).fetchall()]
            # sum(hash(c)) reads every value (min/max/count may come from Parquet statistics)
            aggs = ", ".join(f"sum(hash(\"{c[0]}\"))" for c in cols if c[0] != "date")
            c0 = time.process_time()
            con.execute(f"SELECT {aggs} FROM read_parquet($f)", {"f": files}).fetchall()
            out["cpu_s"] = round(time.process_time() - c0, 1)   # CPU of every thread: steadier under load
            out["columns"] = len(cols)
        elif name in ("build_duckdb", "build_duckdb_days", "build_spark_days"):
            if name.endswith("_days"):
                logs = _link_days(logs, SPARK_DAYS, work / "logs")
            c = _cfg(logs, work / "data")
            t0, c0 = time.perf_counter(), time.process_time()
            if name == "build_spark_days":
                from monitoring.rollup import spark as spark_engine
                s = spark_engine.session("local[2]")
                out["spark_start_s"] = round(time.perf_counter() - t0, 1)
                t0 = time.perf_counter()
                r = build.build(c, engine="spark", spark=s)
            else:
                r = build.build(c)
            secs = time.perf_counter() - t0
            out |= {"rows": r.rows, "rows_per_s": round(r.rows / secs), "files": r.rolled}
            if name != "build_spark_days":     # Spark's CPU is in the JVM, not this process
                out["cpu_s"] = round(time.process_time() - c0, 1)
            if name == "build_duckdb":
                # keep this store for the reading scenarios
                dst = Path(cfg.data_dir)    # the store the reading scenarios read
                shutil.rmtree(dst, ignore_errors=True)
                shutil.copytree(work / "data", dst, symlinks=True)
                st = build.status(cfg)
                out["store_mb"] = round(st.size_bytes / 2**20, 1)
            out["seconds"] = round(secs, 3)
        elif name == "update_one_day":
            days = sorted(p for p in logs.iterdir() if p.is_dir())
            part = _link_days(logs, len(days) - 1, work / "logs")
            c = _cfg(part, work / "data")
            build.build(c)                         # 29 days, not timed
            last = days[-1]
            (part / last.name).mkdir()
            for f in last.glob("*.parquet"):
                (part / last.name / f.name).symlink_to(f)
            t0, c0 = time.perf_counter(), time.process_time()
            r = build.update(c)
            out |= {"rolled": r.rolled, "kept": r.kept, "rows": r.rows}
        elif name in ("overview_rollup", "overview_raw", "latency_rollup", "latency_raw", "overview_partial"):
            # The pages' own calls (metrics, anomalies), the same code for both: with the store
            # attached to the source (as the workspace does when it covers the logs) or not.
            source = open_source(str(logs), cfg, con)
            source.rollups = None
            if name == "overview_partial":
                source, con = _one_day_unrolled(logs, work)
                t0 = time.perf_counter()
            elif name.endswith("rollup"):
                store = read.open_store(cfg)
                store.check(source)
                source.rollups = store
            t_open = time.perf_counter() - t0
            days = sorted(p.name for p in logs.iterdir() if p.is_dir())
            start = datetime.fromisoformat(days[0].split("=")[1]).replace(tzinfo=UTC)
            end = start + timedelta(days=len(days))
            f = queries.Filters(start=end - timedelta(days=15), end=end)
            def figures() -> float:
                t1 = time.perf_counter()
                if name.startswith("overview"):
                    metrics.summarize(source, con, f, "hour", with_previous=True, exact_max_rows=0)
                    counts = anomalies.minute_counts(source, con, f)
                    anomalies.find_gaps(counts, f, cfg.slo)
                    anomalies.find_spikes(counts, f, "hour", cfg.slo)
                    metrics.error_types(source, con, f, "hour")
                else:
                    metrics.summarize(source, con, f, "hour", exact_max_rows=0)
                    for dim in ("model_version", "endpoint"):
                        metrics.by_dimension(source, con, f, dim, exact_max_rows=0)
                return time.perf_counter() - t1
            out["open_s"] = round(t_open, 3)
            out["seconds"] = round(figures(), 3)           # the first call in the process
            out["repeat_s"] = round(min(figures() for _ in range(3)), 3)   # the same again
            out["window"] = "15 days, hourly, previous window"
        elif name in ("drift_rollup", "drift_raw"):
            out |= _drift_page(cfg, name.endswith("rollup"))
        else:
            raise SystemExit(f"unknown scenario {name}")
        out.setdefault("seconds", round(time.perf_counter() - t0, 3))
        if name in CPU_TIMED:   # CPU of every thread of the process: steadier than wall under load
            out.setdefault("cpu_s", round(time.process_time() - c0, 2))
        out["peak_mb"] = round(_peak_mb(), 0)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _drift_page(cfg, from_store: bool) -> dict:
    """The Drift page's calls (default reference and window, daily chunks) with the
    workspace's store attached or not; the first call and the best of two repeats."""
    from monitoring import drift
    from monitoring.logs.workspace import open_workspace
    from monitoring.rollup import read

    ws = open_workspace(cfg)                    # facts cached in the data folder: not timed
    ws.source.rollups = None
    if from_store:
        store = read.open_store(cfg)
        store.check(ws.source)
        ws.source.rollups = store
    s = drift.load_settings(cfg.section("drift"))
    ref = drift.resolve_reference(cfg, s, ws.extent)
    cur = drift.default_current(ref, ws.extent)

    def page() -> tuple[float, str]:
        t1 = time.perf_counter()
        r = drift.analyze(ws, ref, cur, s)
        ot = drift.analyze_over_time(ws, ref, cur, r, s, "day")
        return time.perf_counter() - t1, f"{r.origin}/{ot.origin}"

    first, origin = page()
    return {"seconds": round(first, 3), "repeat_s": round(min(page()[0] for _ in range(2)), 3),
            "origin": origin, "window": "default reference (7 days) vs the rest, daily chunks"}


def _one_day_unrolled(logs: Path, work: Path):
    """(source, connection) of the 30-day logs with a store built on the first 29 days: the
    workspace attaches it partially (rollup.partial), the last day read raw. Not timed."""
    from monitoring.logs.workspace import open_workspace
    from monitoring.rollup import build

    days = sorted(p for p in logs.iterdir() if p.is_dir())
    part = _link_days(logs, len(days) - 1, work / "logs")
    c = _cfg(part, work / "data")
    build.build(c)
    (part / days[-1].name).mkdir()
    for f in days[-1].glob("*.parquet"):
        (part / days[-1].name / f.name).symlink_to(f)
    ws = open_workspace(c)
    store = ws.source.rollups
    if store is None or store.complete:
        raise SystemExit("the store should cover 29 of 30 days")
    _warm_up(ws.con)
    return ws.source, ws.con


YEAR_DAYS, YEAR_SCALE, YEAR_MODELS = 365, 5, ("loan-risk", "loan-risk-eu")


def year_store(work: Path, data: Path, logs: Path, con) -> dict:
    """A store holding a year of traffic, synthesised from the real store of the 30-day logs
    (built by `build_duckdb`), and every page's queries timed against it.

    How: every compacted table of the real store is tiled over 365 days (day d of the year is
    day d mod 30 of the logs, t shifted), once per model of YEAR_MODELS (a second model with
    the same traffic), each month with its own versions (`v2` of month 7 is `v2.m07`: 36
    versions over the year), and every count multiplied by YEAR_SCALE. Bins stay the bins
    the real logs filled; sums of squares and sums scale with the counts. The store then
    stands for 30-day-logs rows x 365/30 x 2 x YEAR_SCALE requests (over 1.2 billion from the
    10M logs) with the time x model x version x endpoint x bin rows such a year would have at
    the real logs' volume per bucket (a busier year fills a few more latency bins per hour;
    the bins are bounded, ~1% wide)."""
    from monitoring.logs.source import run
    from monitoring.metrics import anomalies, sketch
    from monitoring.query.filters import Filters
    from monitoring.rollup import compact as cp
    from monitoring.rollup import features, read
    from monitoring.rollup import store as st
    from monitoring.rollup.tables import GRAINS, TABLES

    cfg = _cfg(logs, data)
    src = read.open_store(cfg)
    if src is None or not src.manifest.segments:
        raise SystemExit("run build_duckdb first (the year is tiled from its store)")
    root = work / "year"
    packed = root / "compact-year"
    models = ", ".join(f"('{m}')" for m in YEAR_MODELS)
    t0 = time.perf_counter()
    for name, table in [*TABLES.items(), *[(a, None) for a in cp.ALL_TABLES]]:
        found = [src.root / g.name / f"{name}.parquet" for g in src.manifest.segments]
        found = [str(p) for p in found if p.exists()]
        if not found:
            continue
        path = "', '".join(found)     # our own paths: a list literal for read_parquet
        by_day = table is not None and table.keys[0] == "day"
        per_day = 1 if by_day else 86400 // GRAINS[name.split("/")[1].removeprefix("traffic-")]
        tcol = "day" if by_day else "t"
        cols = run(con, f"DESCRIBE SELECT * FROM read_parquet(['{path}'])")["column_name"].to_list()
        sel = []
        for c in cols:
            if c == tcol:
                sel.append(f"x.{c} + (k.k * 30) * {per_day} AS {c}")
            elif c == "model_name":
                sel.append("m.model AS model_name")
            elif c == "model_version":
                sel.append("x.model_version || '.m' || lpad(CAST((k.k * 30 + (x." + tcol + f" // {per_day} - lo.d0)) "
                           "// 30.4 + 1 AS VARCHAR), 2, '0') AS model_version")
            elif c in ("n", "sum", "sum2"):
                sel.append(f"x.{c} * {YEAR_SCALE} AS {c}")
            else:
                sel.append(f"x.{c}")
        out = packed / f"{name}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        day_of = f"(x.{tcol} // {per_day})"
        has_model = "model_name" in cols
        con.execute(
            f"COPY (SELECT {', '.join(sel)} FROM read_parquet(['{path}']) x, "
            f"(SELECT min({tcol} // {per_day}) AS d0 FROM read_parquet(['{path}'])) lo, range(13) k(k)"
            f"{', (VALUES ' + models + ') m(model)' if has_model else ''} "
            f"WHERE k.k * 30 + ({day_of} - lo.d0) < {YEAR_DAYS} ORDER BY 1) TO '{out}' "
            f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {cp.ROW_GROUP})")
    m = st.Manifest(logs="(synthesised year)", schema=src.manifest.schema, engine="synthesised",
                    files={}, features=src.manifest.features, segments=[st.Segment("compact-year", ())])
    st.write_manifest(root, m)
    store = read.Store(root, m)
    res = {"synth_s": round(time.perf_counter() - t0, 1),
           "store_mb": round(sum(p.stat().st_size for p in packed.rglob("*.parquet")) / 2**20, 1)}
    rel, params = store.relation("traffic/day")
    tot = run(con, f"SELECT CAST(sum(n) AS BIGINT) AS n, count(DISTINCT model_version) AS v, "
                   f"max(t) - min(t) + 1 AS days FROM {rel}", params)
    res |= {"requests": int(tot["n"][0]), "versions": int(tot["v"][0]), "days": int(tot["days"][0])}
    lo, hi = read._bounds(store, con)
    end = read._dt(hi)
    _warm_up(con)

    def q(hist, by):
        ok = hist.filter(~hist["is_error"])
        return sketch.quantiles(ok.select(by, "bin", "n"), by=by)

    def overview(days: int, bucket: str):
        f = Filters(start=end - timedelta(days=days), end=end)
        h = read.latency_hist(store, con, f, BUCKETS[bucket], with_previous=True, previous_total=True)
        q(h.filter(h["period"] == 1), "bucket")
        q(h, "period")
        counts = read.minute_counts(store, con, f)
        anomalies.find_gaps(counts, f, cfg.slo)
        anomalies.find_spikes(counts, f, bucket, cfg.slo)
        read.error_types(store, con, f, bucket)

    def latency(days: int, bucket: str):
        f = Filters(start=end - timedelta(days=days), end=end)
        q(read.latency_hist(store, con, f, BUCKETS[bucket]), "bucket")
        for dim in ("model_version", "endpoint"):
            q(read.dimension_hist(store, con, f, dim), "key")

    def traffic(days: int, bucket: str):
        f = Filters(start=end - timedelta(days=days), end=end)
        read.minutes(store, con, f, bucket)
        read.error_types(store, con, f, bucket)

    def drift(days: int):
        f = Filters(start=end - timedelta(days=days), end=end)
        ref = Filters(start=read._dt(lo), end=read._dt(lo) + timedelta(days=7))
        for g in (ref, f):
            features.numeric_bins(store, con, g)
            features.categories(store, con, g)
        features.numeric_bins(store, con, f, by_day=True)
        features.outcomes(store, con, f, by_day=True)
        features.score_bins(store, con, f)

    def year_summary():
        f = Filters(start=read._dt(lo), end=end)
        h = read.latency_hist(store, con, f, 86400)
        q(h, "bucket")
        q(h.with_columns(period=1), "period")
        for dim in ("model_name", "model_version", "endpoint", "error_type"):
            q(read.dimension_hist(store, con, f, dim), "key")
        read.error_types(store, con, f, "day")
        features.numeric_quantiles(features.numeric_bins(store, con, f))
        features.outcomes(store, con, f)

    from monitoring.query.filters import BUCKETS
    cases = {
        "overview_7d_hour": lambda: overview(7, "hour"),
        "overview_30d_hour": lambda: overview(30, "hour"),
        "overview_182d_day_and_previous_182d": lambda: overview(182, "day"),
        "latency_7d_hour": lambda: latency(7, "hour"),
        "latency_30d_6hour": lambda: latency(30, "6hour"),
        "errors_throughput_30d_hour": lambda: traffic(30, "hour"),
        "drift_7d_vs_first_week": lambda: drift(7),
        "whole_year_summary": year_summary,
    }
    for k, fn in cases.items():
        t1 = time.perf_counter()
        fn()
        res[k + "_s"] = round(time.perf_counter() - t1, 3)
    res["seconds"] = max(v for k, v in res.items() if k.endswith("_s") and k != "synth_s")
    return res


SCENARIOS = [
    ("scan_ts_latency", "Plain DuckDB scan of timestamp and latency_ms (yardstick of the pages)"),
    ("scan_ts_latency_repeat", "The same scan again in the same process (yardstick of repeated views)"),
    ("scan_build_columns", "Plain DuckDB scan of every column the build reads (yardstick of the build)"),
    ("scan_open_columns", "Plain DuckDB scan of the columns an open reads (yardstick of the open)"),
    ("first_open", "First open of new logs, exact when it returns (CLI: duplicates, extent, health), no cache"),
    ("first_open_app", "First open of new logs in the app: opens after the grouped scan, duplicate check in the background"),
    ("open_one_day_added", "Open after one new day file (29 days opened before), exact when it returns"),
    ("build_duckdb", "Full rollup build, DuckDB, 30 days"),
    ("update_one_day", "Update after one new day file (29 days already rolled)"),
    ("overview_rollup", "Overview figures from rollups: KPIs + previous window + hourly series + gaps/spikes + error types"),
    ("overview_raw", "Same Overview figures from the raw logs (histogram percentiles)"),
    ("overview_partial", "Overview figures with one new day not yet rolled: the store for 29 days, the raw logs for the new one"),
    ("latency_rollup", "Latency figures from rollups: hourly P50/P95/P99 + version and endpoint breakdowns"),
    ("latency_raw", "Same Latency figures from the raw logs (histogram percentiles)"),
    ("drift_rollup", "Drift page from rollups: comparison + daily chunks (default windows)"),
    ("drift_raw", "Same Drift page from the raw logs"),
    ("year", "A year of traffic (synthesised store, see below): every page's queries and a whole-year summary"),
    ("build_duckdb_days", f"Full build, DuckDB, the first {SPARK_DAYS} day file(s) (for Spark beside it)"),
    ("build_spark_days", f"Full build, Spark local[2], the same {SPARK_DAYS} day file(s)"),
]


# Scenarios stopped after this many seconds, reported as such: the raw Drift page at 100M rows
# runs for more than 20 minutes of both cores (56 s at 10M), and its figure is only "too slow".
TIME_LIMIT_S = {"drift_raw": 300}


def run_scenario(name: str, logs: Path) -> dict:
    limit = TIME_LIMIT_S.get(name)
    try:
        r = subprocess.run([sys.executable, __file__, "--scenario", name, "--logs", str(logs)], cwd=ROOT,
                           capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {limit} s (over {limit} s)"}
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario")
    ap.add_argument("--logs")
    ap.add_argument("--sizes", default="10M,100M", help="log sizes, comma-separated (bench.py's cache)")
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--report-only", action="store_true", help="rewrite the section from the last run's results")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"),
                    help="Markdown file whose rollup section (between markers) is replaced")
    args = ap.parse_args()
    if args.scenario:
        print(json.dumps(scenario(args.scenario, Path(args.logs))))
        return
    saved = CACHE / "rollup-bench.json"
    if args.report_only:
        runs = json.loads(saved.read_text())
    else:
        runs = {"started": f"{datetime.now(UTC):%Y-%m-%d %H:%M}", "load": _load(), "sizes": {}}
        for i, size in enumerate(args.sizes.split(",")):
            logs = ensure_logs(size)
            results = {}
            for name, _ in SCENARIOS:
                if name.endswith("_days") and (args.no_spark or i > 0):
                    continue                  # Spark beside DuckDB on the first size only
                if name == "year" and i > 0:
                    continue                  # the year is tiled from the first size's store
                results[name] = run_scenario(name, logs)
                print(f"{size} {name:<22} {json.dumps(results[name])}", file=sys.stderr)
            runs["sizes"][size] = results
        runs["load_end"] = _load()
        saved.write_text(json.dumps(runs, indent=1))
    write_report(runs, Path(args.out))


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _ratio(a: dict, b: dict, key: str = "seconds", base_key: str = "seconds") -> str:
    if key in a and base_key in b and b[base_key]:
        return f"{a[key] / b[base_key]:.2f}"
    return "–"


RATIOS = {
    "build_duckdb": ("× build-columns scan", "scan_build_columns"),
    "update_one_day": ("× full build", "build_duckdb"),
    "first_open": ("× ts+latency scan", "scan_ts_latency"),
    "first_open_app": ("× ts+latency scan", "scan_ts_latency"),
    "open_one_day_added": ("× first open", "first_open"),
    "overview_rollup": ("× ts+latency scan", "scan_ts_latency"),
    "overview_raw": ("× ts+latency scan", "scan_ts_latency"),
    "overview_partial": ("× ts+latency scan", "scan_ts_latency"),
    "latency_rollup": ("× ts+latency scan", "scan_ts_latency"),
    "latency_raw": ("× ts+latency scan", "scan_ts_latency"),
    "build_spark_days": ("× DuckDB, same days", "build_duckdb_days"),
}
# A second yardstick beside the first (the open against the columns it reads).
RATIOS_ALSO = {"first_open": ("× open-columns scan", "scan_open_columns"),
               "first_open_app": ("× open-columns scan", "scan_open_columns")}
# Scenarios whose CPU seconds are recorded (cpu_s), and the CPU ratios shown beside the wall
# ones: on a shared machine wall seconds mostly measure the load, CPU far less.
CPU_TIMED = ("scan_ts_latency", "scan_open_columns", "first_open", "open_one_day_added", "update_one_day")
CPU_RATIOS = {"build_duckdb": ("scan_build_columns", "× its CPU"),
              "update_one_day": ("build_duckdb", "× its CPU"),
              "first_open": ("scan_ts_latency", "× its CPU")}


def write_report(runs: dict, out: Path) -> None:
    lines = [
        BEGIN, "## Rollups (10M and 100M rows, a year of traffic)", "",
        f"Measured {runs['started']} UTC by `make bench` (scripts/bench_rollup.py) on: {machine()}; "
        f"load average {runs['load']} at the start and {runs.get('load_end', '?')} at the end (2 cores "
        "shared with other work: compare the ratios, measured side by side in one run; treat "
        "seconds as upper bounds). Every scenario runs in a fresh process that first warms DuckDB "
        "and Polars up on no data; `repeat_s` is the same figures again in that process, beside "
        "the same scan repeated.", "",
    ]
    for size, r in runs["sizes"].items():
        lines += [f"### {size} rows", "", "| scenario | seconds | ratio | peak MB | notes |",
                  "| --- | ---: | --- | ---: | --- |"]
        for name, label in SCENARIOS:
            if name not in r or name == "year":
                continue
            x = r[name]
            if "error" in x:
                lines.append(f"| {label} | – | – | – | failed: {x['error']} |")
                continue
            what, base = RATIOS.get(name, ("", None))
            ratio = f"{_ratio(x, r.get(base, {}))} {what}" if base else ""
            if name in RATIOS_ALSO:
                what2, base2 = RATIOS_ALSO[name]
                ratio += f"; {_ratio(x, r.get(base2, {}))} {what2}"
            if name in CPU_RATIOS:
                base3, what3 = CPU_RATIOS[name]
                ratio += f"; CPU {_ratio(x, r.get(base3, {}), 'cpu_s', 'cpu_s')} {what3}"
            if "repeat_s" in x:
                ratio += f"; repeat {_ratio(x, r.get('scan_ts_latency_repeat', {}), 'repeat_s')} × repeated scan"
            notes = ", ".join(f"{k}={v}" for k, v in x.items() if k not in ("seconds", "peak_mb"))
            lines.append(f"| {label} | {x['seconds']:.2f} | {ratio} | {x.get('peak_mb', 0):.0f} | {notes} |")
        lines.append("")
        y = r.get("year")
        if y and "error" not in y:
            lines += [
                f"### A year of traffic ({y['requests']:,} requests, {y['days']} days, {y['versions']} versions, "
                f"2 models, 2 endpoints; store {y['store_mb']} MB)", "",
                f"Synthesised from the {size} store ({y['synth_s']} s; `year_store` in scripts/bench_rollup.py): every "
                f"compacted table tiled over 365 days, a second model with the same traffic, each month's "
                f"versions named apart, every count ×{YEAR_SCALE}. The bins are the bins the real logs "
                "filled, so the store has the rows a year at that volume per bucket would have. Timed: "
                "the store readers each page calls (what `metrics` and `anomalies` run when the store "
                "covers the logs), in one warmed-up process.", "",
                "| queries | seconds |", "| --- | ---: |"]
            lines += [f"| {k[:-2].replace('_', ' ')} | {v:.2f} |" for k, v in y.items()
                      if k.endswith("_s") and k != "synth_s"]
            lines += [f"| peak memory of the process (MB, synthesis included) | {y.get('peak_mb', 0):.0f} |", ""]
        elif y:
            lines += [f"A year of traffic: failed: {y['error']}", ""]
    lines += ["Not measured here: a Spark cluster (only local[2] on this machine). Pages in a real browser "
              "from the 100M store: the section *In a real browser, big logs with rollups*. See docs/rollups.md "
              "and docs/scale.md.", END, ""]
    text = out.read_text() if out.exists() else ""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + text[text.index(END) + len(END):].lstrip("\n")
    out.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("MONITORING_DATA_DIR", str(CACHE / "data"))
    main()

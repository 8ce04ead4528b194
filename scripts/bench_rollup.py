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

SPARK_DAYS = 3   # Spark on local[2] is timed on the first days only (both engines, same files)
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


def _cfg(logs: Path, data: Path):
    from dataclasses import replace

    from monitoring.config import load_config
    return replace(load_config(overrides={"logs": str(logs)}), data_dir=str(data))


def scenario(name: str, logs: Path) -> dict:
    from monitoring import anomalies, metrics, queries, sketch
    from monitoring.rollup import build, read
    from monitoring.source import connect, open_source, resolve_paths

    work = Path(tempfile.mkdtemp(prefix="modelwatch-bench-rollup-"))
    out: dict = {}
    try:
        cfg = _cfg(logs, CACHE / "rollup-data")
        con = connect(cfg)
        files = resolve_paths(str(logs))
        t0 = time.perf_counter()
        if name == "scan_ts_latency":
            con.execute("SELECT sum(latency_ms), max(epoch_us(timestamp)) FROM read_parquet($f)", {"f": files}).fetchall()
        elif name == "scan_build_columns":
            cols = [c for c in con.execute("DESCRIBE SELECT * FROM read_parquet($f)", {"f": files}).fetchall()]
            # sum(hash(c)) reads every value (min/max/count may come from Parquet statistics)
            aggs = ", ".join(f"sum(hash(\"{c[0]}\"))" for c in cols if c[0] != "date")
            con.execute(f"SELECT {aggs} FROM read_parquet($f)", {"f": files}).fetchall()
            out["columns"] = len(cols)
        elif name in ("build_duckdb", "build_duckdb_days", "build_spark_days"):
            if name.endswith("_days"):
                logs = _link_days(logs, SPARK_DAYS, work / "logs")
            c = _cfg(logs, work / "data")
            t0 = time.perf_counter()
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
            if name == "build_duckdb":
                # keep this store for the reading scenarios
                dst = Path(cfg.data_dir)
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
            t0 = time.perf_counter()
            r = build.update(c)
            out |= {"rolled": r.rolled, "kept": r.kept, "rows": r.rows}
        elif name in ("overview_rollup", "overview_raw", "latency_rollup", "latency_raw"):
            source = open_source(str(logs), cfg, con)
            if name.endswith("rollup"):
                store = read.open_store(cfg)
                store.check(source)
                # the extent would come from the workspace's cache: the store's own days here
            t_open = time.perf_counter() - t0
            days = sorted(p.name for p in logs.iterdir() if p.is_dir())
            start = datetime.fromisoformat(days[0].split("=")[1]).replace(tzinfo=UTC)
            end = start + timedelta(days=len(days))
            f = queries.Filters(start=end - timedelta(days=15), end=end)
            t1 = time.perf_counter()
            if name == "overview_rollup":
                h = read.latency_hist(store, con, f, 3600, with_previous=True)
                ok = h.filter(~h["is_error"]).select("period", "bucket", "bin", "n")
                sketch.quantiles(ok.filter(ok["period"] == 1).select("bucket", "bin", "n"), by="bucket")
                sketch.quantiles(ok.select("period", "bin", "n"), by="period")
                counts = read.minute_counts(store, con, f)
                anomalies.find_gaps(counts, f, cfg.slo)
                anomalies.find_spikes(counts, f, "hour", cfg.slo)
                read.error_types(store, con, f, "hour")
            elif name == "overview_raw":
                metrics.summarize(source, con, f, "hour", with_previous=True, exact_max_rows=0)
                counts = anomalies.minute_counts(source, con, f)
                anomalies.find_gaps(counts, f, cfg.slo)
                anomalies.find_spikes(counts, f, "hour", cfg.slo)
                metrics.error_types(source, con, f, "hour")
            elif name == "latency_rollup":
                h = read.latency_hist(store, con, f, 3600)
                sketch.quantiles(h.filter(~h["is_error"]).select("bucket", "bin", "n"), by="bucket")
                for dim in ("model_version", "endpoint"):
                    d = read.dimension_hist(store, con, f, dim)
                    sketch.quantiles(d.filter(~d["is_error"]).select("key", "bin", "n"), by="key")
            else:
                metrics.summarize(source, con, f, "hour", exact_max_rows=0)
                for dim in ("model_version", "endpoint"):
                    metrics.by_dimension(source, con, f, dim, exact_max_rows=0)
            out["open_s"] = round(t_open, 3)
            out["seconds"] = round(time.perf_counter() - t1, 3)
            out["window"] = "15 days, hourly, previous window"
        else:
            raise SystemExit(f"unknown scenario {name}")
        out.setdefault("seconds", round(time.perf_counter() - t0, 3))
        out["peak_mb"] = round(_peak_mb(), 0)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


SCENARIOS = [
    ("scan_ts_latency", "Plain DuckDB scan of timestamp and latency_ms (yardstick of the pages)"),
    ("scan_build_columns", "Plain DuckDB scan of every column the build reads (yardstick of the build)"),
    ("build_duckdb", "Full rollup build, DuckDB, 30 days"),
    ("update_one_day", "Update after one new day file (29 days already rolled)"),
    ("overview_rollup", "Overview figures from rollups: KPIs + previous window + hourly series + gaps/spikes + error types"),
    ("overview_raw", "Same Overview figures from the raw logs (histogram percentiles)"),
    ("latency_rollup", "Latency figures from rollups: hourly P50/P95/P99 + version and endpoint breakdowns"),
    ("latency_raw", "Same Latency figures from the raw logs (histogram percentiles)"),
    ("build_duckdb_days", f"Full build, DuckDB, first {SPARK_DAYS} days (for Spark beside it)"),
    ("build_spark_days", f"Full build, Spark local[2], same {SPARK_DAYS} days"),
]


def run_scenario(name: str, logs: Path) -> dict:
    r = subprocess.run([sys.executable, __file__, "--scenario", name, "--logs", str(logs)], cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario")
    ap.add_argument("--logs")
    ap.add_argument("--size", default="10M")
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"),
                    help="Markdown file whose rollup section (between markers) is replaced")
    args = ap.parse_args()
    if args.scenario:
        print(json.dumps(scenario(args.scenario, Path(args.logs))))
        return
    logs = ensure_logs(args.size)
    results = {}
    for name, _ in SCENARIOS:
        if args.no_spark and name.endswith("_days"):
            continue
        results[name] = run_scenario(name, logs)
        print(f"{name:<22} {json.dumps(results[name])}", file=sys.stderr)
    write_report(results, args.size, Path(args.out))


def _ratio(a: dict, b: dict) -> str:
    if "seconds" in a and "seconds" in b and b["seconds"]:
        return f"{a['seconds'] / b['seconds']:.2f}"
    return "–"


def write_report(r: dict, size: str, out: Path) -> None:
    g = r.get
    lines = [
        BEGIN, f"## Rollups ({size} rows)", "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench` (scripts/bench_rollup.py) on: "
        f"{machine()}. The machine was shared with other work: compare the ratios, measured side "
        "by side in one run; treat seconds as upper bounds.", "",
        "| scenario | seconds | ratio | peak MB | notes |", "| --- | ---: | --- | ---: | --- |",
    ]
    ratios = {
        "build_duckdb": ("× build-columns scan", "scan_build_columns"),
        "update_one_day": ("× full build", "build_duckdb"),
        "overview_rollup": ("× ts+latency scan", "scan_ts_latency"),
        "overview_raw": ("× ts+latency scan", "scan_ts_latency"),
        "latency_rollup": ("× ts+latency scan", "scan_ts_latency"),
        "latency_raw": ("× ts+latency scan", "scan_ts_latency"),
        "build_spark_days": ("× DuckDB, same days", "build_duckdb_days"),
    }
    for name, label in SCENARIOS:
        if name not in r:
            continue
        x = r[name]
        if "error" in x:
            lines.append(f"| {label} | – | – | – | failed: {x['error']} |")
            continue
        what, base = ratios.get(name, ("", None))
        ratio = f"{_ratio(x, g(base, {}))} {what}" if base else ""
        notes = ", ".join(f"{k}={v}" for k, v in x.items() if k not in ("seconds", "peak_mb"))
        lines.append(f"| {label} | {x['seconds']:.2f} | {ratio} | {x.get('peak_mb', 0):.0f} | {notes} |")
    lines += ["", "Not measured here: 100M rows and a year of traffic (not generated in this run), a "
              "Spark cluster (only local[2] on this machine), pages in a real browser from rollups "
              "(the pages do not read the store yet). See docs/rollups.md and docs/scale.md.", END, ""]
    text = out.read_text() if out.exists() else ""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + text[text.index(END) + len(END):].lstrip("\n")
    out.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("MONITORING_DATA_DIR", str(CACHE / "data"))
    main()

"""Benchmark: wall time and peak memory of the pages' queries and the CLI on 10M and 100M rows.

    make bench                         # both sizes, writes docs/benchmarks.md
    python scripts/bench.py --sizes 10M --out /tmp/bench.md

Logs are generated once by the project's own generator into a cache outside the repository
(MODELWATCH_BENCH_DIR, default ~/.cache/modelwatch/bench). Every scenario runs in a fresh
process so its peak RSS is its own; the yardstick is a plain DuckDB scan of the same columns.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

SIZES = {"10M": 333_334, "100M": 3_333_334}   # rows per day over 30 days
CACHE = Path(os.environ.get("MODELWATCH_BENCH_DIR", Path.home() / ".cache" / "modelwatch" / "bench"))


def ensure_logs(size: str) -> Path:
    out = CACHE / f"logs-{size}"
    done = out / ".complete"
    if not done.exists():
        print(f"generating {size} rows into {out} (once)…", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "monitoring", "generate", "--out", str(out), "--days", "30",
                        "--rows-per-day", str(SIZES[size]), "--seed", "7"], cwd=ROOT, check=True)
        done.write_text("ok")
    return out


# -- scenarios (each runs in its own process) ---------------------------------------------------

def scenario(name: str, logs: str) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ["MONITORING_LOGS"] = logs
    os.environ["MONITORING_DATA_DIR"] = str(CACHE / "data")
    from monitoring.config import load_config
    from monitoring.logs.health import check_health
    from monitoring.logs.workspace import open_workspace
    from monitoring.metrics import anomalies
    from monitoring.metrics import service as metrics
    from monitoring.query import filters as queries

    if name == "open_uncached":
        import tempfile

        os.environ["MONITORING_DATA_DIR"] = tempfile.mkdtemp(prefix="modelwatch-bench-")
    cfg = load_config()
    base_mb = benchlib.peak_mb()
    out: dict = {}
    t0 = time.perf_counter()
    if name == "scan":
        import duckdb

        from monitoring.logs.source import connect, resolve_paths

        con = connect(cfg)
        con.execute("SELECT sum(latency_ms), max(epoch_us(timestamp)) FROM read_parquet($f)",
                    {"f": resolve_paths(logs)}).fetchall()
        del duckdb
    elif name == "open_uncached":
        ws = open_workspace(cfg)
        out["duplicates"] = ws.duplicates
    elif name in ("overview_30d", "latency_30d"):
        ws = open_workspace(cfg)
        t_open = time.perf_counter() - t0
        start, end = queries.whole_range(ws.extent)
        f = queries.Filters(start=max(start, end - timedelta(days=30)), end=end)
        t1 = time.perf_counter()
        if name == "overview_30d":
            check_health(ws.source, ws.con)
            s = metrics.summarize(ws.source, ws.con, f, "hour", with_previous=True,
                                  exact_max_rows=cfg.exact_quantile_max_rows)
            counts = anomalies.minute_counts(ws.source, ws.con, f)
            anomalies.find_gaps(counts, f, cfg.slo)
            anomalies.find_spikes(counts, f, "hour", cfg.slo)
        else:
            s = metrics.summarize(ws.source, ws.con, f, "hour", exact_max_rows=cfg.exact_quantile_max_rows)
            t_lines = time.perf_counter() - t1
            metrics.by_dimension(ws.source, ws.con, f, "model_version", exact_max_rows=cfg.exact_quantile_max_rows)
            metrics.by_dimension(ws.source, ws.con, f, "endpoint", exact_max_rows=cfg.exact_quantile_max_rows)
            out["percentile_lines_s"] = round(t_lines, 3)
        out["open_s"] = round(t_open, 3)
        out["queries_s"] = round(time.perf_counter() - t1, 3)
        out["method"] = s.window.method
        out["rows"] = s.window.requests
    elif name in ("hourly_percentiles", "hourly_percentiles_exact"):
        # The Latency page's per-hour P50/P95/P99 over 30 days, alone, after opening.
        ws = open_workspace(cfg)
        start, end = queries.whole_range(ws.extent)
        f = queries.Filters(start=start, end=end)
        limit = 10**15 if name.endswith("_exact") else cfg.exact_quantile_max_rows
        t0 = time.perf_counter()
        s = metrics.summarize(ws.source, ws.con, f, "hour", exact_max_rows=limit)
        out["method"] = s.window.method
        out["buckets"] = s.buckets.height
    elif name in ("app_first_render", "app_page_switch"):
        import streamlit  # noqa: F401  (import cost is not part of a render)
        from streamlit.testing.v1 import AppTest

        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        t0 = time.perf_counter()
        at.run()
        first = time.perf_counter() - t0
        assert not at.exception, [e.value for e in at.exception]
        out["first_render_s"] = round(first, 3)
        if name == "app_page_switch":
            at.switch_page("pages/latency.py").run()
            at.switch_page("pages/overview.py").run()
            t0 = time.perf_counter()
            at.switch_page("pages/latency.py").run()
            assert not at.exception
    elif name in ("stats_cli", "stats_cli_fast"):
        args = [sys.executable, "-m", "monitoring", "stats", "--logs", logs, "--format", "json"]
        if name == "stats_cli_fast":
            args.append("--fast")
        r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        out["p95"] = json.loads(r.stdout)["latency_ms"]["p95"]
        children = benchlib.peak_mb(children=True)
        out["seconds"] = round(time.perf_counter() - t0, 3)
        out["peak_mb"] = round(children, 0)
        return out
    else:
        raise SystemExit(f"unknown scenario {name}")
    out["seconds"] = round(time.perf_counter() - t0, 3)
    out["peak_mb"] = round(benchlib.peak_mb(), 0)
    out["baseline_mb"] = round(base_mb, 0)
    return out


def run_scenario(name: str, logs: Path) -> dict:
    r = subprocess.run([sys.executable, __file__, "--scenario", name, "--logs", str(logs)],
                       cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


SCENARIOS = [
    ("scan", "Plain DuckDB scan of latency_ms and timestamp (yardstick)"),
    ("open_uncached", "First open of new logs: file checks, exact duplicate check, extent, health (then cached)"),
    ("hourly_percentiles", "Latency page: per-hour P50/P95/P99 + counts over 30 days (one query)"),
    ("hourly_percentiles_exact", "Same, forced exact (two passes: histogram, then only the needed bins' values)"),
    ("latency_30d", "Latency page: open + percentile lines + version and endpoint breakdowns"),
    ("overview_30d", "Overview: open + health + KPIs with previous window + trends + gaps/spikes, 30 days"),
    ("app_first_render", "Overview first render in a fresh process (AppTest, default 7-day window)"),
    ("app_page_switch", "Cached page switch (AppTest rerun, caches warm)"),
    ("stats_cli", "`stats` CLI, exact percentiles, whole log"),
    ("stats_cli_fast", "`stats` CLI with --fast (log-histogram above 2M rows)"),
]


def machine() -> str:   # also used by bench_rollup.py
    return benchlib.machine("duckdb", "polars", "streamlit")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario")
    ap.add_argument("--logs")
    ap.add_argument("--sizes", default="10M,100M")
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--no-drift", action="store_true", help="skip the drift benchmark (scripts/bench_drift.py)")
    args = ap.parse_args()
    if args.scenario:
        print(json.dumps(scenario(args.scenario, args.logs)))
        return
    only = set(args.only.split(",")) if args.only else None
    results: dict[str, dict[str, dict]] = {}
    for size in args.sizes.split(","):
        logs = ensure_logs(size)
        results[size] = {}
        for name, _ in SCENARIOS:
            if only and name not in only:
                continue
            if size == "100M" and name in ("app_first_render", "app_page_switch"):
                continue  # the render targets are set on 10M rows
            r = run_scenario(name, logs)
            results[size][name] = r
            print(f"{size:>5} {name:<26} {json.dumps(r)}", file=sys.stderr)
    drift = [] if args.no_drift or only else run_drift()
    write_report(results, Path(args.out), drift)


DRIFT_RUNS = [
    ("1M vs 1M, realistic values, with Evidently's data drift preset", ["--rows", "1000000", "--evidently"]),
    ("10M vs 10M, realistic values", ["--rows", "10000000", "--repeat", "1"]),
    ("10M vs 10M, every value a distinct float", ["--rows", "10000000", "--profile", "continuous", "--repeat", "1"]),
]


def run_drift() -> list[tuple[str, str]]:
    out = []
    for label, extra in DRIFT_RUNS:
        print(f"drift: {label}…", file=sys.stderr)
        r = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_drift.py"), *extra], cwd=ROOT,
                           capture_output=True, text=True)
        text = r.stdout.strip() if r.returncode == 0 else f"failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}"
        print(text, file=sys.stderr)
        out.append((label, text))
    return out


def write_report(results: dict, out: Path, drift: list[tuple[str, str]] | None = None) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench` (scripts/bench.py) on: {machine()}.",
        "",
        "Logs: the project's generator, 30 days, zstd Parquet sorted by time, one file per day, "
        "row groups of at most 1M rows (`python -m monitoring generate --days 30 --rows-per-day N`). "
        "Each scenario runs in a fresh process; *peak MB* is that process's peak resident memory "
        "(Python, libraries and DuckDB; DuckDB's memory_limit is 700MB by default and it spills beyond). "
        "*open* is finding and checking the files plus the exact duplicate-request check.",
        "",
    ]
    for size, rows in results.items():
        scan = rows.get("scan", {}).get("seconds")
        lines += [f"## {size} rows", "", "| scenario | seconds | × scan | peak MB | notes |", "| --- | ---: | ---: | ---: | --- |"]
        for name, label in SCENARIOS:
            if name not in rows:
                continue
            r = rows[name]
            if "error" in r:
                lines.append(f"| {label} | – | – | – | failed: {r['error']} |")
                continue
            secs = r.get("first_render_s") if name == "app_first_render" else r.get("seconds")
            ratio = f"{secs / scan:.1f}" if scan and secs is not None else "–"
            notes = ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("seconds", "peak_mb"))
            lines.append(f"| {label} | {secs:.2f} | {ratio} | {r.get('peak_mb', 0):.0f} | {notes} |")
        lines.append("")
    if drift:
        lines += ["## Drift (scripts/bench_drift.py)", "",
                  "10 features (8 numeric, 2 categorical), reference file against logs, 2 DuckDB threads; "
                  "peak RSS per side in its own process.", ""]
        for label, text in drift:
            lines += [f"**{label}**", "", "```", text, "```", ""]
    benchlib.replace_head(out, "\n".join(lines), "<!-- measured results above; notes below are kept by bench.py -->")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

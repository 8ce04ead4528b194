"""`python -m monitoring rollup build|update|status --logs PATH [--engine duckdb|spark]`."""

from __future__ import annotations

import argparse
import sys

from ..config import load_config
from . import build as b


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["build", "update", "status"],
                   help="build: roll every file again; update: only new and changed files; "
                        "status: what the store covers")
    p.add_argument("--logs", help="Parquet file, directory or glob (default MONITORING_LOGS or sample_logs/)")
    p.add_argument("--config", help="path of monitoring.toml (default MONITORING_CONFIG)")
    p.add_argument("--engine", choices=list(b.ENGINES), default="duckdb",
                   help="engine that scans the logs (spark needs `pip install .[spark]` and Java 17+)")
    p.add_argument("--spark-master", default=None,
                   help="Spark master URL (default local[2]); with spark-submit, the session's own")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, {"logs": args.logs})
    if args.action == "status":
        s = b.status(cfg)
        print(status_text(s))
        return 0
    spark = None
    if args.engine == "spark":
        from . import spark as spark_engine
        spark = spark_engine.session(args.spark_master)

    def progress(done: int, total: int, *_files: int) -> None:
        if sys.stderr.isatty():
            print(f"\rrolling: {done:,}/{total:,} rows", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)

    r = b.update(cfg, engine=args.engine, full=args.action == "build", spark=spark, progress=progress)
    print(f"{args.action}: rolled {r.rolled} file(s) ({r.rows:,} rows), kept {r.kept}, "
          f"removed {r.removed} part(s); {r.duplicates:,} duplicate copies subtracted; "
          f"{r.seconds:.1f} s with {r.engine} -> {r.root}")
    return 0


def status_text(s: b.Status) -> str:
    if not s.exists:
        return (f"no rollups yet for these logs ({len(s.new)} file(s)); "
                f"run `python -m monitoring rollup build` (store: {s.root})")
    lines = [
        f"store: {s.root}",
        f"built: {s.built_at} with {s.engine}",
        f"covered files: {len(s.covered)} ({s.rows:,} rows)",
        f"stale files: {len(s.stale)}   new files: {len(s.new)}   removed files: {len(s.removed)}",
        f"duplicate copies subtracted: {s.duplicates:,}",
        f"size on disk: {_size(s.size_bytes)}",
        "up to date" if s.up_to_date else "out of date: run `python -m monitoring rollup update`",
    ]
    if s.schema_changed:
        lines.insert(-1, "the logs' columns changed: the next update rebuilds every file")
    for label, files in (("stale", s.stale), ("new", s.new), ("removed", s.removed)):
        for f in files[:10]:
            lines.append(f"  {label}: {f}")
        if len(files) > 10:
            lines.append(f"  ... and {len(files) - 10} more {label}")
    return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"

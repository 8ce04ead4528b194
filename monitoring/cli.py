"""Command line: `python -m monitoring COMMAND ...` (also installed as `modelwatch`).

Every command prints one line to stderr and exits non-zero on bad input, never a
traceback: 2 for bad arguments, paths or logs. Commands are registered in COMMANDS as
(help, add_arguments, run); `run(args) -> exit code`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import duckdb

from .alerts import cli as _alerts_cli
from .config import ConfigError, load_config
from .drift import report as drift_report
from .labelling import cli as labelling_cli
from .source import LogSourceError


class UsageError(Exception):
    """Bad input from the command line; the message is printed as is."""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--logs", help="Parquet file, directory or glob (default MONITORING_LOGS or sample_logs/)")
    p.add_argument("--config", help="path of monitoring.toml (default MONITORING_CONFIG)")


def _window_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", help="window start, ISO 8601, UTC unless an offset is given (inclusive)")
    p.add_argument("--end", help="window end, ISO 8601 (exclusive)")
    p.add_argument("--model", dest="model_name", help="only this model_name")
    p.add_argument("--model-version", action="append", default=[], help="only this version (repeatable)")
    p.add_argument("--endpoint", action="append", default=[], help="only this endpoint (repeatable)")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def clean(value: Any) -> Any:
    """NaN and infinities become null so the JSON is valid for every reader."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def dump_json(obj: Any) -> str:
    return json.dumps(clean(obj), default=_json_default, indent=2, ensure_ascii=False)


# -- generate ------------------------------------------------------------------------------

def _generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output directory (Hive-partitioned by date)")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--rows-per-day", type=int, default=3000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", help="first day, ISO date (default 2026-10-24)")


def _generate(args: argparse.Namespace) -> int:
    from . import sample_data
    from .queries import parse_time

    if args.days <= 0 or args.rows_per_day <= 0:
        raise UsageError("--days and --rows-per-day must be positive")
    kwargs: dict[str, Any] = {}
    if args.start:
        kwargs["start"] = parse_time(args.start)
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\rgenerating: day {done}/{total}", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)
        elif total >= 10 and (done == total or done % max(1, total // 10) == 0):
            print(f"generating: day {done}/{total}", file=sys.stderr, flush=True)

    result = sample_data.generate(args.out, days=args.days, rows_per_day=args.rows_per_day,
                                  seed=args.seed, progress=progress, **kwargs)
    print(f"wrote {result.rows:,} rows in {len(result.files)} files to {args.out} "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0


# -- stats ---------------------------------------------------------------------------------

def _stats_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    _window_args(p)
    p.add_argument("--bucket", choices=["minute", "5min", "15min", "hour", "6hour", "day"],
                   help="bucket size (default: chosen from the window)")
    p.add_argument("--format", choices=["json", "table"], default="table")
    p.add_argument("--fast", action="store_true",
                   help="allow histogram percentiles (within 0.5%%) on windows over the exact limit")


def _stats(args: argparse.Namespace) -> int:
    from .report import stats_report, stats_table

    cfg = load_config(args.config, {"logs": args.logs})
    report = stats_report(cfg, start=args.start, end=args.end, model_name=args.model_name,
                          model_versions=tuple(args.model_version), endpoints=tuple(args.endpoint),
                          bucket=args.bucket, exact=not args.fast)
    print(dump_json(report) if args.format == "json" else stats_table(report))
    return 0


# -- summary -------------------------------------------------------------------------------

def _summary_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--week", help="ISO week YYYY-Www (default: the last complete week of the logs)")
    p.add_argument("--format", choices=["json", "md", "html"], default="md")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.add_argument("--db", help="database URL for labelled accuracy (default MONITORING_DB_URL)")


def _summary(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .summary import standard_providers, weekly_summary
    from .summary_export import to_html, to_markdown
    from .workspace import open_workspace

    cfg = load_config(args.config, {"logs": args.logs, "db_url": args.db})
    ws = open_workspace(cfg)
    s = weekly_summary(ws, args.week, standard_providers(cfg.database_url))
    text = {"json": dump_json, "md": to_markdown, "html": to_html}[args.format](s)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.out}: {exc.strerror}") from exc
        print(f"wrote {args.out} ({s['week']}, status {s['status']})", file=sys.stderr)
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0


Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {
    "generate": ("write synthetic prediction logs with documented incidents", _generate_args, _generate),
    "stats": ("latency, errors and throughput for a window, per bucket", _stats_args, _stats),
    "queue": ("labelling queues: create, list, status, export", labelling_cli.add_arguments,
              labelling_cli.run),
    "summary": ("the weekly health summary (json, Markdown or self-contained HTML)", _summary_args, _summary),
    "alerts": ("evaluate alert rules over the logs (check: exit 1 when any fires)",
               _alerts_cli.add_arguments, _alerts_cli.run),
    "drift": ("input and output drift of a window against a reference", drift_report.add_arguments,
              drift_report.run),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m monitoring",
                                     description="Monitoring for models in production.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_, add, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add(p)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if hasattr(args, "config"):   # settings kept but worth a look (e.g. a misspelt table)
            for w in load_config(args.config).warnings:
                print(f"warning: {w}", file=sys.stderr)
        return int(args.run(args) or 0)
    except (UsageError, ConfigError, LogSourceError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: could not read the logs: {first}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug, not bad input: still one line, unless debugging
        if os.environ.get("MODELWATCH_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
              "(set MODELWATCH_DEBUG=1 for the traceback)", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

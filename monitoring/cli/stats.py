"""`python -m monitoring stats`: latency, errors and throughput for a window, per bucket."""

from __future__ import annotations

import argparse

from ..config import load_config
from .options import START_HELP, dump_json, filter_args, source_args, window_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    source_args(p)
    window_args(p, start_help=START_HELP)
    filter_args(p)
    p.add_argument("--bucket", choices=["minute", "5min", "15min", "hour", "6hour", "day"],
                   help="bucket size (default: chosen from the window)")
    p.add_argument("--format", choices=["json", "table"], default="table")
    p.add_argument("--fast", action="store_true",
                   help="allow histogram percentiles (within 0.5%%) on windows over the exact limit")


def run(args: argparse.Namespace) -> int:
    from ..reports.stats import stats_report, stats_table

    cfg = load_config(args.config, {"logs": args.logs})
    report = stats_report(cfg, start=args.start, end=args.end, model_name=args.model_name,
                          model_versions=tuple(args.model_version), endpoints=tuple(args.endpoint),
                          bucket=args.bucket, exact=not args.fast)
    print(dump_json(report) if args.format == "json" else stats_table(report))
    return 0

"""`python -m monitoring generate`: synthetic prediction logs with documented incidents."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .options import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output directory (Hive-partitioned by date)")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--rows-per-day", type=int, default=3000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", help="first day, ISO date (default 2026-10-24)")


def run(args: argparse.Namespace) -> int:
    from .. import sample
    from ..query.filters import parse_time

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

    result = sample.generate(args.out, days=args.days, rows_per_day=args.rows_per_day,
                                  seed=args.seed, progress=progress, **kwargs)
    print(f"wrote {result.rows:,} rows in {len(result.files)} files to {args.out} "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0

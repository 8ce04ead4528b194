"""`python -m monitoring summary`: the weekly health summary (JSON, Markdown or HTML)."""

from __future__ import annotations

import argparse
import sys

from ..config import load_config
from .options import UsageError, dump_json, source_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    source_args(p)
    p.add_argument("--week", help="ISO week YYYY-Www (default: the last complete week of the logs)")
    p.add_argument("--format", choices=["json", "md", "html"], default="md")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.add_argument("--db", help="database URL for labelled accuracy (default MONITORING_DB_URL)")
    p.add_argument("--fast", action="store_true",
                   help="allow histogram percentiles (within 0.5%%) on weeks over the exact limit")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..logs.workspace import open_workspace
    from ..reports.export import to_html, to_markdown
    from ..reports.providers import standard_providers
    from ..reports.summary import weekly_summary

    cfg = load_config(args.config, {"logs": args.logs, "db_url": args.db})
    ws = open_workspace(cfg)
    s = weekly_summary(ws, args.week, standard_providers(cfg.database_url), exact=not args.fast)
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

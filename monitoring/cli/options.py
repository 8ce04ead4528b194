"""Argument setup and output shared by every command's CLI module (stats, summary, compare,
quality, users, ...), so every command names and explains the same options the same way, and
prints JSON the same way.

    def add_arguments(p):
        source_args(p)                 # --logs, --config
        window_args(p)                 # --start, --end
        format_arg(p)                  # --format json|table

    def run(args):
        window = time_window(args)     # {"start": datetime | None, "end": ...}, end after start
        print_rows(rows, args.format, [Column("name", 24), Column("role", 10)], empty="no users yet")

Bad input raises ValueError with one sentence, which `python -m monitoring` prints as such.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class UsageError(Exception):
    """Bad input from the command line; the message is printed as is."""


LOGS_HELP = "Parquet file, directory or glob (default MONITORING_LOGS or sample_logs/)"
CONFIG_HELP = "path of monitoring.toml (default MONITORING_CONFIG)"
START_HELP = "window start, ISO 8601, UTC unless an offset is given (inclusive)"


def source_args(p: argparse.ArgumentParser, logs_help: str = LOGS_HELP,
                config_help: str = CONFIG_HELP) -> None:
    """--logs and --config: where the logs and the settings are."""
    p.add_argument("--logs", help=logs_help)
    p.add_argument("--config", help=config_help)


def window_args(p: argparse.ArgumentParser, start_help: str = "window start, ISO 8601 (inclusive)",
                end_help: str = "window end, ISO 8601 (exclusive)") -> None:
    """--start and --end of a time window, read by `time_window`."""
    p.add_argument("--start", help=start_help)
    p.add_argument("--end", help=end_help)


def filter_args(p: argparse.ArgumentParser) -> None:
    """--model, --model-version and --endpoint: which traffic a figure covers."""
    p.add_argument("--model", dest="model_name", help="only this model_name")
    p.add_argument("--model-version", action="append", default=[], help="only this version (repeatable)")
    p.add_argument("--endpoint", action="append", default=[], help="only this endpoint (repeatable)")


def format_arg(p: argparse.ArgumentParser, choices: Sequence[str] = ("json", "table"),
               default: str = "table") -> None:
    p.add_argument("--format", choices=list(choices), default=default)


def db_arg(p: argparse.ArgumentParser, what: str) -> None:
    """--db: the database URL, for `what` (e.g. "reviewers' labels")."""
    p.add_argument("--db", help=f"database URL for {what} (default MONITORING_DB_URL)")


def time_window(args: argparse.Namespace, *names: str) -> dict[str, datetime | None]:
    """The times given for `names` (default start and end; `as_of` for --as-of) parsed, None
    when not given; ValueError when --end is not after --start."""
    from ..query.filters import parse_time

    times = {n: parse_time(getattr(args, n)) if getattr(args, n, None) else None
             for n in (names or ("start", "end"))}
    if times.get("start") and times.get("end") and times["end"] <= times["start"]:
        raise ValueError("--end must be after --start")
    return times


@dataclass(frozen=True)
class Column:
    """One column of a fixed-width table: its header, width (None: the last, unpadded),
    alignment ("<" or ">") and how to get the text of a row (default: the row's key of the
    header's name)."""

    header: str
    width: int | None = None
    align: str = "<"
    value: Callable[[dict], Any] | None = None

    def cell(self, text: Any) -> str:
        return f"{text}" if self.width is None else f"{text:{self.align}{self.width}}"


def table_lines(rows: Sequence[dict], columns: Sequence[Column], sep: str = "") -> list[str]:
    """The header line and one line per row."""
    lines = [sep.join(c.cell(c.header) for c in columns)]
    for r in rows:
        lines.append(sep.join(c.cell(c.value(r) if c.value else r[c.header]) for c in columns))
    return lines


def print_rows(rows: Sequence[dict], fmt: str, columns: Sequence[Column], *, empty: str,
               sep: str = "") -> None:
    """`rows` as JSON (every key), or as a table of `columns`, or the sentence `empty`."""

    if fmt == "json":
        print(dump_json(list(rows)))
    elif not rows:
        print(empty)
    else:
        print("\n".join(table_lines(rows, columns, sep)))


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

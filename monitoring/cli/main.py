"""Command line: `python -m monitoring COMMAND ...` (also installed as `modelwatch`).

Every command prints one line to stderr and exits non-zero on bad input, never a
traceback: 2 for bad arguments, paths or logs. Each command lives in a module of its own with
`add_arguments(parser)` and `run(args) -> exit code` (shared options: `cli/options.py`), and
is registered in COMMANDS by name. Only the module of the command being run is imported, so a
command does not pay for the imports of all the others; the top-level `--help` imports none.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import duckdb

from ..auth.cli import add_as_argument
from ..config import ConfigError, load_config
from ..logs.source import LogSourceError
from .options import UsageError

# name -> (help, module, its add-arguments function, its run function)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "generate": ("write synthetic prediction logs with documented incidents",
                 "monitoring.cli.generate", "add_arguments", "run"),
    "stats": ("latency, errors and throughput for a window, per bucket",
              "monitoring.cli.stats", "add_arguments", "run"),
    "queue": ("labelling queues: create, list, status, export", "monitoring.labelling.cli", "add_arguments", "run"),
    "summary": ("the weekly health summary (json, Markdown or self-contained HTML)",
                "monitoring.cli.summary", "add_arguments", "run"),
    "alerts": ("evaluate alert rules over the logs (check: exit 1 when any fires)",
               "monitoring.alerts.cli", "add_arguments", "run"),
    "drift": ("input and output drift of a window against a reference", "monitoring.drift.report",
              "add_arguments", "run"),
    "users": ("users and roles: add, set-role, disable, enable, passwd, list", "monitoring.auth.cli",
              "add_arguments", "run"),
    "compare": ("is the candidate version worse than the baseline? intervals, verdict, rollback",
                "monitoring.compare.cli", "compare_arguments", "run_compare"),
    "models": ("the model registry (models.toml) beside production figures: list, show V",
               "monitoring.compare.cli", "models_arguments", "run_models"),
    "compact": ("merge a past day's small log files into one, atomically for readers",
                "monitoring.logger.compaction", "add_arguments", "run"),
    "rollup": ("build, update or describe the rollup store of the logs", "monitoring.rollup.cli",
               "add_arguments", "run"),
    "quality": ("model quality from late labels: metrics, over time, segments, fairness, estimates",
                "monitoring.quality.cli", "add_arguments", "run"),
}


def _chosen(argv: list[str]) -> str | None:
    """The command named on the command line: its first word that is not an option or the
    value of `--as` (the only option before the command), if it names one."""
    words = iter(argv)
    for a in words:
        if a == "--as":
            next(words, None)
        elif not a.startswith("-"):
            return a if a in COMMANDS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the named command's module is imported (none when `argv`
    names no command: the top-level help lists COMMANDS' help lines); without, all of them."""
    parser = argparse.ArgumentParser(prog="python -m monitoring",
                                     description="Monitoring for models in production.")
    add_as_argument(parser)   # --as USER: the acting user of every write
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = _chosen(argv) if argv is not None else None
    for name, (help_, module, add, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if (argv is None and chosen is None) or name == chosen:
            mod = importlib.import_module(module)
            getattr(mod, add)(p)
            p.set_defaults(run=getattr(mod, run))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
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

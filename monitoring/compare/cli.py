"""`python -m monitoring compare` and `python -m monitoring models list|show V`.

`compare` exits 0 whatever the verdict (the `rollback` alert rule is the one for cron), 2 on
bad input, like every command.
"""

from __future__ import annotations

import argparse

from ..cli.options import (
    UsageError,
    db_arg,
    dump_json,
    format_arg,
    source_args,
    time_window,
    window_args,
)
from ..config import load_config


def compare_arguments(p: argparse.ArgumentParser) -> None:
    source_args(p)
    p.add_argument("--baseline", help="baseline version (default: the version with most traffic)")
    p.add_argument("--candidate", help="candidate version (default: the newest version)")
    window_args(p, start_help="window start, ISO 8601 (default: when both versions served)",
                end_help="window end, ISO 8601, exclusive")
    db_arg(p, "reviewers' labels")
    p.add_argument("--raw", action="store_true",
                   help="read the raw logs only (default: the rollup store for whole UTC days, when built)")
    format_arg(p)


def run_compare(args: argparse.Namespace) -> int:
    from ..logs.workspace import open_workspace
    from .report import CompareError, compare, table

    window = time_window(args)
    cfg = load_config(args.config, {"logs": args.logs, "db_url": args.db})
    ws = open_workspace(cfg)
    try:
        result = compare(ws, args.baseline, args.candidate, window["start"], window["end"], raw=args.raw)
    except CompareError as exc:
        raise UsageError(str(exc)) from exc
    print(dump_json(result.as_json()) if args.format == "json" else table(result))
    return 0


def models_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="models_command", required=True)
    for name, help_ in (("list", "every registered version beside its production figures"),
                        ("show", "one version's registry entry and production figures")):
        s = sub.add_parser(name, help=help_, description=help_)
        if name == "show":
            s.add_argument("version")
        source_args(s)
        s.add_argument("--registry", help="path of models.toml (default [compare] registry, else ./models.toml)")
        format_arg(s)


def run_models(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..logs.workspace import open_workspace
    from .registry import RegistryError, get_entry, load_registry
    from .settings import load_compare_settings
    from .versions import fleet

    cfg = load_config(args.config, {"logs": args.logs})
    if args.registry:
        cfg = replace(cfg, sections={**cfg.sections, "compare": {**cfg.section("compare"), "registry": args.registry}},
                      source_path=None)
    path = load_compare_settings(cfg).registry
    try:
        entries = load_registry(path)
        if args.models_command == "show":
            get_entry(entries, args.version, path)
    except RegistryError as exc:
        raise UsageError(str(exc)) from exc
    f = fleet(open_workspace(cfg))
    prod = {r.version: r.as_dict() for r in f.rows}
    items = [{**e.as_dict(), "production": prod.get(v)} for v, e in entries.items()]
    if args.models_command == "show":
        item = next(i for i in items if i["version"] == args.version)
        print(dump_json(item) if args.format == "json" else _show(item))
        return 0
    out = {"registry": path, "versions": items, "unregistered": f.unregistered}
    print(dump_json(out) if args.format == "json" else _list(out))
    return 0


def _list(out: dict) -> str:
    lines = [f"registry {out['registry']}", f"{'version':<12}{'status':<10}{'deployed':<12}{'validation':>11}"
             f"{'production':>12}  owner"]
    for i in out["versions"]:
        p = i["production"] or {}
        val = i["validation"].get("accuracy")
        acc = p.get("production_accuracy")
        lines.append(f"{i['version']:<12}{p.get('status', 'not served'):<10}{i['deployed']:%Y-%m-%d}  "
                     f"{'' if val is None else f'{val:.1%}':>11}{'' if acc is None else f'{acc:.1%}':>12}"
                     f"{' !' if p.get('disagree') else '  '}{i['owner']}")
    if out["unregistered"]:
        lines.append("in the logs but not in the registry: " + ", ".join(out["unregistered"]))
    return "\n".join(lines)


def _show(item: dict) -> str:
    lines = [f"{k:<16}{v:%Y-%m-%d}" if hasattr(v, "strftime") else f"{k:<16}{'' if v is None else v}"
             for k, v in item.items() if k != "production"]
    p = item["production"]
    if p is None:
        lines.append("production      not served in these logs")
    else:
        acc, ci = p["production_accuracy"], p["production_accuracy_ci"]
        lines.append(f"production      {p['status']}, {p['requests']:,} requests over {p['days_in_production']:g} days"
                     + ("" if acc is None else f"; labelled accuracy {acc:.1%} ({ci[0]:.1%}–{ci[1]:.1%}, "
                        f"{p['labelled']:,} labelled)") + ("; DISAGREES with validation" if p["disagree"] else ""))
    return "\n".join(lines)

"""`python -m monitoring alerts check|history|ack`: for cron, CI and people.

`check` evaluates every rule up to --at (default: the end of the logs), prints the rules
firing then, stores the history in the database, posts firing alerts to the configured
webhooks, and exits 1 when anything fires, 0 when nothing does, 2 on bad input. `ack ID`
acknowledges an episode (from `history --format json` or the Alerts page) as the user named
by the global --as, checked against their role when [auth] is on.
"""

from __future__ import annotations

import argparse
from datetime import datetime

from ..cli.options import dump_json
from ..config import load_config
from ..logs.workspace import open_workspace
from ..query.filters import parse_time


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="alerts_command", required=True)
    for name, help_ in (("check", "rules firing at a time; exit 1 if any"),
                        ("history", "every episode over the logs' history")):
        s = sub.add_parser(name, help=help_, description=help_)
        s.add_argument("--logs", help="Parquet file, directory or glob (default MONITORING_LOGS)")
        s.add_argument("--config", help="path of monitoring.toml")
        s.add_argument("--db", help="database URL (default MONITORING_DB_URL or SQLite in the data folder)")
        s.add_argument("--format", choices=["json", "table"], default="table")
        s.add_argument("--no-store", action="store_true", help="do not write the history to the database")
        if name == "check":
            s.add_argument("--at", help="evaluate as of this time, ISO 8601 (default: the end of the logs)")
            s.add_argument("--no-webhook", action="store_true", help="do not post to the configured webhooks")
    ack = sub.add_parser("ack", help="acknowledge a stored alert episode (lead role)",
                         description="Acknowledge a stored alert episode as the --as user.")
    ack.add_argument("episode", type=int, help="episode id (the Alerts page's history, or the database)")
    ack.add_argument("--note", help="what is being done about it")
    ack.add_argument("--config", help="path of monitoring.toml")
    ack.add_argument("--db", help="database URL (default MONITORING_DB_URL or SQLite in the data folder)")


def run(args: argparse.Namespace) -> int:
    from .evalstore import evaluate_kept
    from .webhook import deliver

    if args.alerts_command == "ack":
        return _ack(args)
    cfg = load_config(args.config, {"logs": args.logs, "db_url": args.db})
    at = parse_time(args.at) if getattr(args, "at", None) else None
    ws = open_workspace(cfg)
    found = evaluate_kept(ws, at=at)   # data_dir/cache/alerts when this evaluation was kept
    # The history database is a record, not the alerts: when it cannot be written the alerts
    # are still printed (and posted); the failure is one line on stderr and the exit code.
    stored = None if args.no_store else _store(cfg, found)
    if args.alerts_command == "history":
        rows = [e.as_dict() for e in found]
        print(dump_json({"logs": cfg.logs, "episodes": rows}) if args.format == "json" else _table(rows))
        return _stored_or_2(stored, 0)
    as_of = at or (ws.extent.last if ws.extent.last else None)
    firing = [e.as_dict() for e in found if e.end is None or (at is not None and e.end > at >= e.start)]
    report = {"logs": cfg.logs, "at": as_of, "firing": firing, "count": len(firing)}
    if firing and not args.no_webhook:
        report["webhooks"] = [d.__dict__ for d in deliver(cfg.section("alerts"),
                                                         {"source": "modelwatch", "logs": cfg.logs,
                                                          "at": as_of, "alerts": firing})]
    if args.format == "json":
        print(dump_json(report))
    else:
        print(f"as of {_t(as_of)}: " + (f"{len(firing)} alert(s) firing" if firing else "nothing firing"))
        if firing:
            print(_table(firing))
        for d in report.get("webhooks", []):
            print(f"webhook {d['url']}: " + ("delivered" if d["ok"] else f"failed after {d['attempts']} "
                                             f"attempt(s): {d['error']}"))
    return 1 if firing else _stored_or_2(stored, 0)


def _store(cfg, found) -> str | None:
    """Store the episodes; None when stored, else the reason (printed on stderr)."""
    import sys

    from ..database import FAILURES, describe
    from .store import open_alerts_db, sync

    try:
        engine = open_alerts_db(cfg.database_url)
        try:
            sync(engine, cfg.logs, found)
        finally:
            engine.dispose()
    except FAILURES as exc:
        reason = describe(exc, cfg.database_url)
        print(f"error: the alert history was not stored: {reason}", file=sys.stderr)
        return reason
    return None


def _stored_or_2(problem: str | None, code: int) -> int:
    return 2 if problem else code


def _t(v: datetime | None) -> str:
    return v.strftime("%Y-%m-%d %H:%M UTC") if v else "-"


def _table(rows: list[dict]) -> str:
    if not rows:
        return "no episodes"
    lines = [f"{'rule':<18}{'subject':<16}{'fired (UTC)':<22}{'resolved (UTC)':<22}message"]
    for r in rows:
        lines.append(f"{r['rule']:<18}{str(r['subject'])[:15]:<16}{_t(r['start']):<22}"
                     f"{(_t(r['end']) if r['end'] else 'firing'):<22}{r['message']}")
    return "\n".join(lines)


def _ack(args: argparse.Namespace) -> int:
    from ..auth.cli import cli_actor
    from .store import acknowledge, open_alerts_db

    cfg = load_config(args.config, {"db_url": args.db})
    engine = open_alerts_db(cfg.database_url)
    try:
        actor = cli_actor(engine, getattr(args, "as_user", None))
        acknowledge(engine, args.episode, "", args.note, actor=actor)
    finally:
        engine.dispose()
    print(f"alert {args.episode} acknowledged")
    return 0

"""`python -m monitoring queue ...`: create, list, inspect and export review queues.

    python -m monitoring queue create --logs sample_logs --size 60 --seed 7 --stratify-by model_version
    python -m monitoring queue list
    python -m monitoring queue status 3 --format json
    python -m monitoring queue export 3 --format parquet --out labels.parquet

Writes (create, close, export) act as the user named by the global --as (checked against
their role when [auth] is on; see monitoring.auth.cli). Every subcommand takes --db URL (default MONITORING_DB_URL, else the SQLite file in the data
folder). Registered in monitoring/cli/main.py COMMANDS as "queue"; errors surface as ValueError
subclasses, which the main CLI prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..cli.options import dump_json
from .sampling import STRATIFY_COLUMNS as STRATIFY


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="queue_command", required=True, metavar="{create,list,status,export,close}")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--db", help="database URL (default MONITORING_DB_URL, else a SQLite file "
                                     "in the data folder)")
        sp.add_argument("--config", help="path of monitoring.toml (default MONITORING_CONFIG)")

    c = sub.add_parser("create", help="draw a sample from the logs into a new review queue",
                       description="Draw a sample from the logs into a new review queue; prints its id.")
    common(c)
    c.add_argument("--logs", help="Parquet file, directory or glob (default MONITORING_LOGS)")
    c.add_argument("--size", type=int, default=60, help="items in the queue (default 60)")
    c.add_argument("--seed", type=int, default=0, help="random seed; same settings + seed = same sample")
    c.add_argument("--start", help="window start, ISO 8601, UTC unless an offset is given (inclusive)")
    c.add_argument("--end", help="window end, ISO 8601 (exclusive)")
    c.add_argument("--model", dest="model_name", help="only this model_name")
    c.add_argument("--model-version", action="append", default=[], help="only this version (repeatable)")
    c.add_argument("--endpoint", action="append", default=[], help="only this endpoint (repeatable)")
    c.add_argument("--stratify-by", choices=STRATIFY, help="sample each value of this column separately")
    c.add_argument("--allocation", choices=("equal", "proportional"), default="equal",
                   help="with --stratify-by: equal items per stratum (default) or by traffic share")
    c.add_argument("--low-score", type=int, default=0, metavar="N",
                   help="targeted: N items from the lowest 10%% of scores")
    c.add_argument("--segment", action="append", default=[], metavar="COL=V[,V]|COL=LO..HI",
                   help="targeted: a drifted segment to over-sample (repeatable)")
    c.add_argument("--segment-size", type=int, default=0, metavar="N", help="targeted: N items from the segments")
    c.add_argument("--calibration", type=float, default=0.0, metavar="SHARE",
                   help="share of the random part labelled blind by several reviewers, e.g. 0.2")
    c.add_argument("--calibration-reviewers", type=int, default=2, metavar="K",
                   help="reviewers per calibration item (default 2)")
    c.add_argument("--lease-seconds", type=float, default=600.0,
                   help="how long a claimed item stays with its reviewer (default 600)")
    c.add_argument("--name", help="queue name (default: model, window and size)")
    c.add_argument("--created-by", default="", help="who creates the queue (recorded)")

    ls = sub.add_parser("list", help="list queues with their progress")
    common(ls)
    ls.add_argument("--format", choices=("table", "json"), default="table")

    st = sub.add_parser("status", help="progress, accuracy with its interval, agreement")
    common(st)
    st.add_argument("id", type=int)
    st.add_argument("--format", choices=("table", "json"), default="table")

    ex = sub.add_parser("export", help="write resolved labels or the event log to a file")
    common(ex)
    ex.add_argument("id", type=int)
    ex.add_argument("--format", choices=("csv", "jsonl", "parquet"), required=True)
    ex.add_argument("--out", required=True, help="output file")
    ex.add_argument("--what", choices=("labels", "events"), default="labels",
                    help="labels: one resolved row per item (default); events: the audit trail")

    cl = sub.add_parser("close", help="stop handing out items of a queue (--reopen to undo)")
    common(cl)
    cl.add_argument("id", type=int)
    cl.add_argument("--reopen", action="store_true")


def run(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from ..config import load_config
    from .db import DatabaseError, first_line, open_db, safe_url

    cfg = load_config(args.config, {"db_url": args.db})
    url = cfg.database_url
    handler = {"create": _create, "list": _list, "status": _status, "export": _export,
               "close": _close}[args.queue_command]
    engine = open_db(url)
    try:
        return handler(args, engine, cfg)
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(f"database error on {safe_url(url)}: {first_line(exc)}") from exc
    finally:
        engine.dispose()


def _create(args, engine, cfg) -> int:
    from ..logs.workspace import open_workspace
    from ..query.filters import Filters, parse_time
    from .queues import create_queue
    from .sampling import QueueSpec, Segment

    start = parse_time(args.start) if args.start else None
    end = parse_time(args.end) if args.end else None
    spec = QueueSpec(
        filters=Filters(start=start, end=end, model_name=args.model_name,
                        model_versions=tuple(args.model_version), endpoints=tuple(args.endpoint)),
        size=args.size, seed=args.seed, stratify_by=args.stratify_by, allocation=args.allocation,
        low_score=args.low_score, segments=tuple(Segment.parse(s) for s in args.segment),
        segment_size=args.segment_size, calibration_share=args.calibration,
        calibration_reviewers=args.calibration_reviewers, lease_seconds=args.lease_seconds,
        name=args.name,
    )
    spec.validate()  # before opening the logs: bad settings fail fast
    ws = open_workspace(cfg, logs=args.logs)
    qid = create_queue(engine, ws.source, ws.con, spec, created_by=args.created_by, actor=_actor(args, engine))
    print(qid)
    return 0


def _list(args, engine, cfg) -> int:
    from .queues import list_queues

    qs = list_queues(engine)
    keys = ("id", "name", "status", "created_at", "strategy", "seed", "size", "done", "skipped",
            "flagged", "left")
    rows = [{k: q[k] for k in keys} for q in qs]
    if args.format == "json":
        print(dump_json(rows))
        return 0
    if not rows:
        print("no queues yet: create one with `python -m monitoring queue create`")
        return 0
    print(f"{'id':>4}  {'status':<6}  {'done':>9}  {'skip':>4}  {'flag':>4}  created           name")
    for r in rows:
        print(f"{r['id']:>4}  {r['status']:<6}  {r['done']:>4}/{r['size']:<4}  {r['skipped']:>4}  "
              f"{r['flagged']:>4}  {r['created_at']:%Y-%m-%d %H:%M}  {r['name']}")
    return 0


def _status(args, engine, cfg) -> int:
    from .results import queue_report

    report = queue_report(engine, args.id)
    if args.format == "json":
        print(dump_json(report))
        return 0
    print(_status_text(report))
    return 0


def _status_text(r: dict[str, Any]) -> str:
    def pct(v):
        return "–" if v is None else f"{v:.1%}"

    lines = [f"queue {r['id']}: {r['name']} ({r['status']})",
             f"  labelled {r['labelled']}/{r['size']} · left {r['left']} · skipped {r['skipped']} · "
             f"flagged {r['flagged']} · in progress {r['in_progress']}"]
    lo, hi = r["accuracy_ci"]
    if r["accuracy"] is None:
        lines.append("  accuracy: no decisive answers yet")
    else:
        lines.append(f"  accuracy {pct(r['accuracy'])} (95% CI {pct(lo)} – {pct(hi)}, "
                     f"n={r['accuracy_n']}; unsure {r['unsure']}, ties {r['ties']})")
    for row in r["by_version"]:
        lines.append(f"    {row['model_version']}: {pct(row['accuracy'])} "
                     f"({pct(row['ci_low'])} – {pct(row['ci_high'])}, n={row['n']})")
    a = r["agreement"]
    if a:
        name = "Cohen's kappa" if a["method"] == "cohen_kappa" else "Krippendorff's alpha"
        val = "undefined" if a["value"] is None else f"{a['value']:.3f}"
        lines.append(f"  agreement: {name} {val} on {a['items']} items, raw {pct(a['percent_agreement'])}")
    return "\n".join(lines)


def _export(args, engine, cfg) -> int:
    from .export import write_export

    n = write_export(engine, args.id, args.what, args.format, args.out, actor=_actor(args, engine))
    print(f"wrote {n} {args.what} rows to {args.out}")
    return 0


def _close(args, engine, cfg) -> int:
    from .queues import set_status

    set_status(engine, args.id, "open" if args.reopen else "closed", actor=_actor(args, engine))
    print(f"queue {args.id} {'reopened' if args.reopen else 'closed'}")
    return 0


def _actor(args, engine):
    from ..auth.cli import cli_actor

    return cli_actor(engine, getattr(args, "as_user", None))

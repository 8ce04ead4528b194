"""Queues in the database: create from a sample, list, close or reopen, and their progress.

    qid = create_queue(engine, ws.source, ws.con, QueueSpec(size=60, seed=7), created_by="lea")
    list_queues(engine)                             # newest first, with progress counts
    progress(engine, qid, "ana")                    # done, skipped, flagged, left; ana's own
    set_status(engine, qid, "closed")               # no more claims; answers stay

Every write takes the acting user (`actor=`, a monitoring.auth.Actor; None is the person at
this machine, allowed only in [auth] mode "none") and checks its role: reviewers claim,
answer, skip and undo, under their own name when signed in; leads create and close queues.
A wrong role raises monitoring.auth.PermissionDenied. Creating, closing, answering, skipping
and undoing are audited in the same transaction.

Reviewing (claim, answer, skip, undo, release) lives in `claims`; the records both share
(Item, Progress, the errors) in `records`.
"""


from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import duckdb
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..auth import audit as _audit
from ..auth.guard import authorize
from ..auth.roles import Actor
from ..auth.store import ensure as _ensure_audit
from ..logs.source import LogSource

# Reviewing lives in `claims` and the shared records in `records`; both are re-exported here
# so `queues.claim_next(...)` and `from .queues import Item` keep working.
from .claims import answer, answer_and_next, claim_next, release, skip, skip_and_next, undo_last
from .db import events, items, queues, reading, writing
from .records import (
    FLAG_REASONS,
    MAX_NAME,
    MAX_TEXT,
    VERDICTS,
    Item,
    LabellingError,
    LeaseLost,
    Progress,
    _finite,
    _queue,
    normalize_reviewer,
)
from .sampling import QueueSpec, Sample, draw

__all__ = ["FLAG_REASONS", "MAX_NAME", "MAX_TEXT", "VERDICTS", "Item", "LabellingError", "LeaseLost",
           "Progress", "answer", "answer_and_next", "claim_next", "create_queue", "get_queue",
           "list_queues", "normalize_reviewer", "progress", "release", "set_status", "skip",
           "last_change", "skip_and_next", "store_sample", "undo_last"]


# -- queues ----------------------------------------------------------------------------------

def create_queue(engine: Engine, source: LogSource, con: duckdb.DuckDBPyConnection,
                 spec: QueueSpec, *, created_by: str = "", actor: Actor | None = None) -> int:
    """Draw the sample and store the queue with a copy of every item; returns its id.
    Needs the lead role (checked before the sample is drawn)."""
    who = authorize(engine, actor, "queue.create", "queue")
    sample = draw(source, con, spec)
    return store_sample(engine, sample, spec, logs=source.path, created_by=created_by, actor=who)


def store_sample(engine: Engine, sample: Sample, spec: QueueSpec, *, logs: str | None = None,
                 created_by: str = "", actor: Actor | None = None) -> int:
    """Insert a drawn sample as a new queue (one transaction); returns the queue id."""
    who = authorize(engine, actor, "queue.create", "queue")
    # Signed in, the queue is recorded under the user; typed names count only on a laptop.
    created_by = who.name if who.authenticated or not created_by else created_by
    _ensure_audit(engine)
    f = spec.filters
    now = datetime.now(UTC)
    name = spec.name or _default_name(spec, sample, now)
    settings = spec.to_dict() | {"notes": sample.notes, "strata": sample.strata,
                                 "allocation": sample.allocation}
    rows = sample.items.to_dicts()
    needed = max(2, spec.calibration_reviewers)
    with writing(engine) as conn:
        qid = conn.execute(queues.insert().values(
            name=name[:200], created_at=now, created_by=(created_by or "")[:MAX_NAME], status="open",
            logs=logs, window_start=f.start, window_end=f.end, model_name=f.model_name,
            strategy=spec.strategy, stratify_by=spec.stratify_by, seed=int(spec.seed),
            size_requested=spec.size, size=len(rows), population=sample.population,
            calibration_share=spec.calibration_share, calibration_reviewers=needed,
            lease_seconds=spec.lease_seconds, settings=settings, features=sample.features,
            classes=sample.classes,
        ).returning(queues.c.id)).scalar_one()
        if rows:
            conn.execute(items.insert(), [{
                "queue_id": qid, "position": r["position"], "request_id": r["request_id"],
                "ts": r["ts"], "model_name": r["model_name"], "model_version": r["model_version"],
                "endpoint": r["endpoint"], "prediction": r["prediction"],
                "score": _finite(r["score"]), "inputs": json.loads(r["inputs"]),
                "stratum": r["stratum"], "calibration": bool(r["calibration"]),
                "needed": needed if r["calibration"] else 1, "reason": r["reason"],
                "weight": float(r["weight"]),
            } for r in rows])
        _audit.record(conn, who, "queue.create", f"queue {qid}",
                      {"name": name[:200], "size": len(rows), "strategy": spec.strategy,
                       "seed": int(spec.seed), "logs": logs})
    return int(qid)


def _default_name(spec: QueueSpec, sample: Sample, now: datetime) -> str:
    f = spec.filters
    window = (f"{f.start:%Y-%m-%d} → {f.end:%Y-%m-%d}" if f.start and f.end else "all logs")
    model = f.model_name or "all models"
    versions = f" {'/'.join(f.model_versions)}" if f.model_versions else ""
    return f"{model}{versions} · {window} · {sample.items.height} items"


def list_queues(engine: Engine) -> list[dict[str, Any]]:
    """Every queue, newest first, with its progress counts."""
    with reading(engine) as conn:
        qs = conn.execute(sa.select(queues).order_by(queues.c.id.desc())).mappings().all()
        out = []
        for q in qs:
            p = _progress(conn, q["id"])
            out.append(dict(q) | {"done": p.done, "left": p.left, "skipped": p.skipped,
                                  "flagged": p.flagged})
    return out


def get_queue(engine: Engine, queue_id: int) -> dict[str, Any]:
    """The queue's row as a dict; raises LabellingError when there is no such queue."""
    with reading(engine) as conn:
        return _queue(conn, queue_id)



def set_status(engine: Engine, queue_id: int, status: str, *, actor: Actor | None = None) -> None:
    """Close a queue (no more claims) or reopen it. Needs the lead role."""
    if status not in ("open", "closed"):
        raise LabellingError("status is open or closed")
    who = authorize(engine, actor, "queue.close", f"queue {queue_id}")
    _ensure_audit(engine)
    with writing(engine) as conn:
        old = _queue(conn, queue_id)["status"]
        conn.execute(queues.update().where(queues.c.id == queue_id).values(status=status))
        _audit.record(conn, who, "queue.close" if status == "closed" else "queue.reopen",
                      f"queue {queue_id}", {"from": old, "to": status})



def progress(engine: Engine, queue_id: int, reviewer: str | None = None,
             now: float | None = None) -> Progress:
    """Counts for the queue (and for one reviewer when given)."""
    with reading(engine) as conn:
        _queue(conn, queue_id)
        return _progress(conn, queue_id, reviewer, now)


def _progress(conn: Connection, queue_id: int, reviewer: str | None = None,
              now: float | None = None) -> Progress:
    t = time.time() if now is None else now
    undo = events.alias("undo")
    standing = sa.and_(events.c.action == "answer", ~sa.exists().where(undo.c.supersedes == events.c.id))
    done_expr = items.c.answers >= items.c.needed
    row = conn.execute(sa.select(
        sa.func.count().label("size"),
        sa.func.coalesce(sa.func.sum(sa.case((done_expr, 1), else_=0)), 0).label("done"),
        sa.func.coalesce(sa.func.sum(items.c.answers), 0).label("answers"),
        sa.func.coalesce(sa.func.sum(sa.case(
            (sa.and_(~done_expr, items.c.claimed_by.is_not(None), items.c.lease_until >= t), 1),
            else_=0)), 0).label("in_progress"),
        sa.func.coalesce(sa.func.sum(sa.case(
            (sa.and_(~done_expr, sa.exists().where(events.c.item_id == items.c.id,
                                                    events.c.action == "skip")), 1),
            else_=0)), 0).label("skipped"),
    ).where(items.c.queue_id == queue_id)).mappings().one()
    skips = conn.execute(sa.select(sa.func.count()).where(
        events.c.queue_id == queue_id, events.c.action == "skip")).scalar_one()
    flagged = conn.execute(sa.select(sa.func.count(sa.distinct(events.c.item_id))).where(
        events.c.queue_id == queue_id, standing, events.c.flagged.is_(True))).scalar_one()
    mine_done = mine_skipped = 0
    if reviewer:
        mine_done = conn.execute(sa.select(sa.func.count()).where(
            events.c.queue_id == queue_id, events.c.reviewer == reviewer, standing)).scalar_one()
        mine_skipped = conn.execute(sa.select(sa.func.count(sa.distinct(events.c.item_id))).where(
            events.c.queue_id == queue_id, events.c.reviewer == reviewer, events.c.action == "skip",
            events.c.item_id.in_(sa.select(items.c.id).where(items.c.queue_id == queue_id,
                                                            ~done_expr)))).scalar_one()
    size, done = int(row["size"]), int(row["done"])
    return Progress(size=size, done=done, answers=int(row["answers"]), left=size - done,
                    in_progress=int(row["in_progress"]), skipped=int(row["skipped"]),
                    skips=int(skips), flagged=int(flagged), mine_done=int(mine_done),
                    mine_skipped=int(mine_skipped))




def last_change(engine: Engine, queue_id: int, now: float | None = None) -> tuple:
    """A stamp that changes whenever anything a queue report shows changes: the latest
    event (answer, skip, undo), the latest claim, the live leases and the status. Cheap
    (index lookups), so a live view can ask it every few seconds and recompute only on change."""
    t = time.time() if now is None else now
    with reading(engine) as conn:
        row = conn.execute(sa.select(
            sa.select(sa.func.max(events.c.id)).where(events.c.queue_id == queue_id).scalar_subquery(),
            sa.select(sa.func.max(items.c.claimed_at)).where(items.c.queue_id == queue_id).scalar_subquery(),
            sa.select(sa.func.count()).where(items.c.queue_id == queue_id, items.c.claimed_by.is_not(None),
                                             items.c.lease_until >= t).scalar_subquery(),
            sa.select(queues.c.status).where(queues.c.id == queue_id).scalar_subquery(),
        )).one()
    return tuple(row)

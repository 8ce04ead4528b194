"""Queues in the database: create from a sample, then claim, answer, skip and undo.

    qid = create_queue(engine, ws.source, ws.con, QueueSpec(size=60, seed=7), created_by="lea")
    item = claim_next(engine, qid, "ana")           # the reviewer's own claim first, else a free item
    answer(engine, item, "ana", "wrong", correct_label="high")
    undo_last(engine, qid, "ana")                   # supersedes the answer; the item is ana's again

Every write takes the acting user (`actor=`, a monitoring.auth.Actor; None is the person at
this machine, allowed only in [auth] mode "none") and checks its role: reviewers claim,
answer, skip and undo, under their own name when signed in; leads create and close queues.
A wrong role raises monitoring.auth.PermissionDenied. Creating, closing, answering, skipping
and undoing are audited in the same transaction.

Claims are leases: an item stays with its reviewer until answered, skipped or the lease
runs out, and no two reviewers hold the same item. Each claim is one atomic statement
(UPDATE ... RETURNING; on PostgreSQL its candidate row is picked FOR UPDATE SKIP LOCKED),
and an answer only counts when the claim it names is still the item's current claim, in
the same transaction that appends the event. Events are never updated or deleted: an
undo is a new event that supersedes an answer.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..auth import audit as _audit
from ..auth.guard import as_reviewer, authorize
from ..auth.roles import Actor
from ..auth.store import ensure as _ensure_audit
from ..source import LogSource
from .db import events, items, queues, reading, writing
from .sampling import QueueSpec, Sample, draw

VERDICTS = ("correct", "wrong", "unsure")
FLAG_REASONS = (
    "Needs a second look",
    "Inputs look wrong or incomplete",
    "Cannot judge from what is shown",
    "Sensitive or personal data",
    "Other (see comment)",
)
MAX_NAME = 100
MAX_TEXT = 5_000


class LabellingError(ValueError):
    """A labelling action cannot be done as asked; the message says why, in one line."""


class LeaseLost(LabellingError):
    """The reviewer's claim on the item ended (expired and taken, or already answered)."""


@dataclass(frozen=True)
class Item:
    """One claimed item, as a reviewer sees it, with the claim that lets them answer."""

    id: int
    queue_id: int
    position: int
    request_id: str
    ts: datetime | None
    model_name: str | None
    model_version: str | None
    endpoint: str | None
    prediction: str | None
    score: float | None
    inputs: dict[str, Any]
    calibration: bool
    claim_token: str
    claimed_at: float
    lease_until: float


@dataclass(frozen=True)
class Progress:
    """Where a queue stands. `done`: items with all the answers they need."""

    size: int
    done: int
    answers: int
    left: int
    in_progress: int
    skipped: int          # items skipped at least once and not done yet
    skips: int            # skip events
    flagged: int          # items whose current answers carry a flag
    mine_done: int = 0    # for one reviewer: their current answers
    mine_skipped: int = 0


def normalize_reviewer(name: str | None) -> str:
    """Trim and collapse spaces; raises LabellingError when empty or too long."""
    clean = " ".join((name or "").split())
    if not clean:
        raise LabellingError("a reviewer needs a name")
    if len(clean) > MAX_NAME:
        raise LabellingError(f"reviewer names are at most {MAX_NAME} characters")
    return clean


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


def _queue(conn: Connection, queue_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(queues).where(queues.c.id == int(queue_id))).mappings().first()
    if row is None:
        raise LabellingError(f"no queue {queue_id} in this database")
    return dict(row)


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


# -- reviewing -------------------------------------------------------------------------------

def claim_next(engine: Engine, queue_id: int, reviewer: str, *, lease_seconds: float | None = None,
               revisit_skipped: bool = False, now: float | None = None,
               actor: Actor | None = None) -> Item | None:
    """The reviewer's unfinished claim (lease renewed), else the next free item; None when
    nothing is left for them. Items they skipped come back only with revisit_skipped."""
    _, reviewer = as_reviewer(engine, actor, reviewer, f"queue {queue_id}")
    reviewer = normalize_reviewer(reviewer)
    with writing(engine) as conn:
        q = _queue(conn, queue_id)
        if q["status"] != "open":
            return None
        t = time.time() if now is None else now
        until = t + (lease_seconds if lease_seconds is not None else q["lease_seconds"])
        # Candidates are picked from an alias so the subquery never correlates with the
        # UPDATE's own table.
        cand = items.alias("cand")
        mine = (sa.select(cand.c.id)
                .where(cand.c.queue_id == queue_id, cand.c.claimed_by == reviewer,
                       cand.c.answers < cand.c.needed)
                .order_by(cand.c.position).limit(1)
                .with_for_update(skip_locked=True).scalar_subquery())
        row = conn.execute(
            items.update().where(items.c.id == mine, items.c.claimed_by == reviewer)
            .values(lease_until=until).returning(*items.c)
        ).mappings().first()
        if row is None:
            conds = [cand.c.queue_id == queue_id, cand.c.answers < cand.c.needed,
                     sa.or_(cand.c.claimed_by.is_(None), cand.c.lease_until < t),
                     ~_current_answer_exists(cand.c.id, reviewer)]
            if not revisit_skipped:
                conds.append(~_skip_exists(cand.c.id, reviewer))
            pick = (sa.select(cand.c.id).where(*conds).order_by(cand.c.position).limit(1)
                    .with_for_update(skip_locked=True).scalar_subquery())
            # The outer condition re-checks the claim is free (PostgreSQL re-evaluates it on
            # the locked row; SQLite runs the statement under the write lock).
            free = sa.or_(items.c.claimed_by.is_(None), items.c.lease_until < t)
            row = conn.execute(
                items.update().where(items.c.id == pick, free)
                .values(claimed_by=reviewer, claim_token=secrets.token_hex(16), claimed_at=t,
                        lease_until=until)
                .returning(*items.c)
            ).mappings().first()
        return _item(row) if row is not None else None


def _current_answer_exists(item_id: sa.ColumnElement, reviewer: str) -> sa.Exists:
    # An answer by this reviewer on the item that no undo has superseded.
    undo = events.alias("undo")
    return sa.exists().where(
        events.c.item_id == item_id, events.c.reviewer == reviewer, events.c.action == "answer",
        ~sa.exists().where(undo.c.supersedes == events.c.id),
    )


def _skip_exists(item_id: sa.ColumnElement, reviewer: str) -> sa.Exists:
    return sa.exists().where(events.c.item_id == item_id, events.c.reviewer == reviewer,
                             events.c.action == "skip")


def _item(row) -> Item:
    inputs = row["inputs"]
    if isinstance(inputs, str):
        inputs = json.loads(inputs)
    return Item(id=int(row["id"]), queue_id=int(row["queue_id"]), position=int(row["position"]),
                request_id=row["request_id"], ts=row["ts"], model_name=row["model_name"],
                model_version=row["model_version"], endpoint=row["endpoint"],
                prediction=row["prediction"], score=row["score"], inputs=dict(inputs or {}),
                calibration=bool(row["calibration"]), claim_token=row["claim_token"],
                claimed_at=float(row["claimed_at"]), lease_until=float(row["lease_until"]))


def answer(engine: Engine, item: Item, reviewer: str, verdict: str, *,
           correct_label: str | None = None, flag_reason: str | None = None,
           comment: str | None = None, now: float | None = None,
           actor: Actor | None = None) -> int:
    """Record the reviewer's answer on a claimed item; returns the event id.

    `verdict` is correct, wrong or unsure; `correct_label` only goes with wrong; a flag is a
    non-empty `flag_reason`. Raises LeaseLost when the claim is no longer theirs.
    """
    who, reviewer = as_reviewer(engine, actor, reviewer, f"queue {item.queue_id} item {item.position}")
    reviewer = normalize_reviewer(reviewer)
    if verdict not in VERDICTS:
        raise LabellingError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    correct_label = _text(correct_label)
    if correct_label is not None and verdict != "wrong":
        raise LabellingError("a correct label goes with a 'wrong' answer")
    if correct_label is not None and correct_label == item.prediction:
        raise LabellingError("the correct label is the prediction itself: answer 'correct' instead")
    flag_reason = _text(flag_reason)
    return _finish(engine, item, reviewer, "answer", now, who, verdict=verdict,
                   correct_label=correct_label, flagged=flag_reason is not None,
                   flag_reason=flag_reason, comment=_text(comment))


def skip(engine: Engine, item: Item, reviewer: str, *, comment: str | None = None,
         now: float | None = None, actor: Actor | None = None) -> int:
    """Give the item back to the pool for others; the skip is recorded. Returns the event id."""
    who, reviewer = as_reviewer(engine, actor, reviewer, f"queue {item.queue_id} item {item.position}")
    return _finish(engine, item, normalize_reviewer(reviewer), "skip", now, who, comment=_text(comment))


def _finish(engine: Engine, item: Item, reviewer: str, action: str, now: float | None,
            who: Actor, **fields: Any) -> int:
    t = time.time() if now is None else now
    _ensure_audit(engine)
    with writing(engine) as conn:
        values: dict[str, Any] = {"claimed_by": None, "claim_token": None, "claimed_at": None,
                                  "lease_until": None}
        if action == "answer":
            values["answers"] = items.c.answers + 1
        row = conn.execute(
            items.update()
            .where(items.c.id == item.id, items.c.claim_token == item.claim_token,
                   items.c.claimed_by == reviewer)
            .values(**values).returning(items.c.id)
        ).first()
        if row is None:
            raise LeaseLost("your claim on this item ended (the lease ran out and another reviewer "
                            "took it, or it was already answered); nothing was recorded")
        eid = _append(conn, item, reviewer, action, t, seconds_spent=max(0.0, t - item.claimed_at),
                      **fields)
        _audit.record(conn, who, f"label.{action}", f"queue {item.queue_id} item {item.position}",
                      {"event": eid, "request_id": item.request_id, "reviewer": reviewer,
                       "verdict": fields.get("verdict"), "correct_label": fields.get("correct_label"),
                       "flagged": fields.get("flagged", False)},
                      at=datetime.fromtimestamp(t, UTC))
        return eid


def _append(conn: Connection, item: Item, reviewer: str, action: str, t: float, **fields: Any) -> int:
    return int(conn.execute(events.insert().values(
        queue_id=item.queue_id, item_id=item.id, request_id=item.request_id, reviewer=reviewer,
        action=action, at=datetime.fromtimestamp(t, UTC), prediction_shown=item.prediction,
        score_shown=item.score, model_version=item.model_version, calibration=item.calibration,
        **fields,
    ).returning(events.c.id)).scalar_one())


def undo_last(engine: Engine, queue_id: int, reviewer: str, *, now: float | None = None,
              actor: Actor | None = None) -> Item | None:
    """Supersede the reviewer's latest standing answer in the queue with an undo event.

    The item goes back to them under a fresh lease when no one else holds it; returns it
    (or None when it is held by someone else). Raises LabellingError when there is nothing
    to undo.
    """
    who, reviewer = as_reviewer(engine, actor, reviewer, f"queue {queue_id}")
    reviewer = normalize_reviewer(reviewer)
    t = time.time() if now is None else now
    undo = events.alias("undo")
    _ensure_audit(engine)
    with writing(engine) as conn:
        q = _queue(conn, queue_id)
        last = conn.execute(
            sa.select(events).where(
                events.c.queue_id == queue_id, events.c.reviewer == reviewer,
                events.c.action == "answer", ~sa.exists().where(undo.c.supersedes == events.c.id))
            .order_by(events.c.id.desc()).limit(1)
        ).mappings().first()
        if last is None:
            raise LabellingError("nothing to undo: you have no standing answer in this queue")
        # The unique index on `supersedes` makes a concurrent second undo of the same answer
        # fail (PostgreSQL; SQLite serialises writers, so the select above already sees it).
        try:
            conn.execute(events.insert().values(
                queue_id=queue_id, item_id=last["item_id"], request_id=last["request_id"],
                reviewer=reviewer, action="undo", at=datetime.fromtimestamp(t, UTC),
                prediction_shown=last["prediction_shown"], score_shown=last["score_shown"],
                model_version=last["model_version"], calibration=last["calibration"],
                supersedes=last["id"]))
        except sa.exc.IntegrityError as exc:  # the transaction is rolled back on the way out
            raise LabellingError("that answer was already undone") from exc
        _audit.record(conn, who, "label.undo", f"queue {queue_id}",
                      {"undoes_event": int(last["id"]), "request_id": last["request_id"],
                       "reviewer": reviewer}, at=datetime.fromtimestamp(t, UTC))
        free = sa.or_(items.c.claimed_by.is_(None), items.c.lease_until < t,
                      items.c.claimed_by == reviewer)
        row = conn.execute(
            items.update().where(items.c.id == last["item_id"], free)
            .values(answers=items.c.answers - 1, claimed_by=reviewer,
                    claim_token=secrets.token_hex(16), claimed_at=t,
                    lease_until=t + q["lease_seconds"])
            .returning(*items.c)
        ).mappings().first()
        if row is None:  # someone else holds it (a calibration item): it just needs one more answer
            conn.execute(items.update().where(items.c.id == last["item_id"])
                         .values(answers=items.c.answers - 1))
            return None
        return _item(row)


def release(engine: Engine, item: Item, reviewer: str, *, actor: Actor | None = None) -> bool:
    """Give a claim back without recording anything (the reviewer left); True if it was theirs."""
    _, reviewer = as_reviewer(engine, actor, reviewer, f"queue {item.queue_id}")
    with writing(engine) as conn:
        res = conn.execute(items.update().where(items.c.id == item.id,
                                                items.c.claim_token == item.claim_token,
                                                items.c.claimed_by == normalize_reviewer(reviewer))
                           .values(claimed_by=None, claim_token=None, claimed_at=None, lease_until=None))
        return res.rowcount == 1


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


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    if len(value) > MAX_TEXT:
        raise LabellingError(f"text is limited to {MAX_TEXT:,} characters")
    return value


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None

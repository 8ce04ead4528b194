"""Reviewing a queue: claim the next item, answer, skip, undo, release.

    item = claim_next(engine, qid, "ana")           # the reviewer's own claim first, else a free item
    answer(engine, item, "ana", "wrong", correct_label="high")
    eid, item = answer_and_next(engine, item, "ana", "correct")   # one transaction: write + next
    undo_last(engine, qid, "ana")                   # supersedes the answer; the item is ana's again

Claims are leases: an item stays with its reviewer until answered, skipped or the lease
runs out, and no two reviewers hold the same item. Each claim is one atomic statement
(UPDATE ... RETURNING; on PostgreSQL its candidate row is picked FOR UPDATE SKIP LOCKED),
and an answer only counts when the claim it names is still the item's current claim, in
the same transaction that appends the event. Events are never updated or deleted: an
undo is a new event that supersedes an answer.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..auth import audit as _audit
from ..auth.guard import as_reviewer
from ..auth.roles import Actor
from ..auth.store import ensure as _ensure_audit
from .db import events, items, writing
from .records import (
    VERDICTS,
    Item,
    LabellingError,
    LeaseLost,
    _item,
    _queue,
    _text,
    normalize_reviewer,
)


def claim_next(engine: Engine, queue_id: int, reviewer: str, *, lease_seconds: float | None = None,
               revisit_skipped: bool = False, now: float | None = None,
               actor: Actor | None = None) -> Item | None:
    """The reviewer's unfinished claim (lease renewed), else the next free item; None when
    nothing is left for them. Items they skipped come back only with revisit_skipped.

    A reviewer who reloads the page (or comes back from another device) gets the item they
    held back, so nothing is left "in progress" behind them."""
    _, reviewer = as_reviewer(engine, actor, reviewer, f"queue {queue_id}")
    reviewer = normalize_reviewer(reviewer)
    with writing(engine) as conn:
        t = time.time() if now is None else now
        return _claim(conn, queue_id, reviewer, t, lease_seconds, revisit_skipped)


def _claim(conn: Connection, queue_id: int, reviewer: str, t: float, lease_seconds: float | None,
           revisit_skipped: bool) -> Item | None:
    q = _queue(conn, queue_id)
    if q["status"] != "open":
        return None
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



def answer(engine: Engine, item: Item, reviewer: str, verdict: str, *,
           correct_label: str | None = None, flag_reason: str | None = None,
           comment: str | None = None, now: float | None = None,
           actor: Actor | None = None) -> int:
    """Record the reviewer's answer on a claimed item; returns the event id.

    `verdict` is correct, wrong or unsure; `correct_label` only goes with wrong; a flag is a
    non-empty `flag_reason`. Raises LeaseLost when the claim is no longer theirs.
    """
    who, reviewer, fields = _answer_fields(engine, item, reviewer, verdict, correct_label,
                                           flag_reason, comment, actor)
    return _finish(engine, item, reviewer, "answer", now, who, None, **fields)[0]


def answer_and_next(engine: Engine, item: Item, reviewer: str, verdict: str, *,
                    correct_label: str | None = None, flag_reason: str | None = None,
                    comment: str | None = None, revisit_skipped: bool = False,
                    now: float | None = None, actor: Actor | None = None) -> tuple[int, Item | None]:
    """`answer`, and the reviewer's next item claimed in the same short transaction:
    returns (event id, next item or None). The label is written before the next item is
    handed out, and a failed write hands out nothing (LeaseLost, LabellingError)."""
    who, reviewer, fields = _answer_fields(engine, item, reviewer, verdict, correct_label,
                                           flag_reason, comment, actor)
    return _finish(engine, item, reviewer, "answer", now, who, revisit_skipped, **fields)


def _answer_fields(engine: Engine, item: Item, reviewer: str, verdict: str, correct_label: str | None,
                   flag_reason: str | None, comment: str | None,
                   actor: Actor | None) -> tuple[Actor, str, dict[str, Any]]:
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
    return who, reviewer, {"verdict": verdict, "correct_label": correct_label,
                           "flagged": flag_reason is not None, "flag_reason": flag_reason,
                           "comment": _text(comment)}


def skip(engine: Engine, item: Item, reviewer: str, *, comment: str | None = None,
         now: float | None = None, actor: Actor | None = None) -> int:
    """Give the item back to the pool for others; the skip is recorded. Returns the event id."""
    who, reviewer = as_reviewer(engine, actor, reviewer, f"queue {item.queue_id} item {item.position}")
    return _finish(engine, item, normalize_reviewer(reviewer), "skip", now, who, None,
                   comment=_text(comment))[0]


def skip_and_next(engine: Engine, item: Item, reviewer: str, *, comment: str | None = None,
                  revisit_skipped: bool = False, now: float | None = None,
                  actor: Actor | None = None) -> tuple[int, Item | None]:
    """`skip`, and the reviewer's next item in the same transaction: (event id, next or None)."""
    who, reviewer = as_reviewer(engine, actor, reviewer, f"queue {item.queue_id} item {item.position}")
    return _finish(engine, item, normalize_reviewer(reviewer), "skip", now, who, revisit_skipped,
                   comment=_text(comment))


def _finish(engine: Engine, item: Item, reviewer: str, action: str, now: float | None,
            who: Actor, then_claim: bool | None, **fields: Any) -> tuple[int, Item | None]:
    """Record `action` on the held item; with then_claim not None (its value: revisit skipped
    items), claim the reviewer's next item in the same transaction."""
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
        nxt = None if then_claim is None else _claim(conn, item.queue_id, reviewer, t, None, then_claim)
        return eid, nxt


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



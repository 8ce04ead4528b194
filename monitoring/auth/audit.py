"""The audit trail: every write, who made it, when, from which session, and what it was.

    record(conn, actor, "queue.create", "queue 3", {"size": 60})   # inside the write's transaction
    frame = query(engine, actor="ana", action="label.answer", start=..., end=...)
    data = csv_bytes(frame)          # formula cells neutralised for spreadsheets

Rows are only ever added. `detail` holds what changed (ids, verdicts, roles), never a
password, a token or a hash: `record` refuses keys that look like one.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..database import reading, writing
from .roles import Actor
from .store import MAX_NAME, audit, ensure

_SECRET_KEYS = ("password", "token", "secret", "hash", "cookie")
COLUMNS = ("id", "at", "actor", "role", "session", "via", "action", "target", "outcome", "detail")


def record(conn: Connection, actor: Actor, action: str, target: str = "",
           detail: dict[str, Any] | None = None, *, outcome: str = "ok",
           at: datetime | None = None) -> int:
    """Append one audit row on `conn` (the caller's transaction); returns its id."""
    detail = dict(detail or {})
    bad = [k for k in detail if any(s in k.lower() for s in _SECRET_KEYS)]
    if bad:  # a programming error: secrets never go to the audit trail
        raise ValueError(f"audit detail may not hold {', '.join(bad)}")
    return int(conn.execute(audit.insert().values(
        at=at or datetime.now(UTC), actor=actor.name[:MAX_NAME], role=actor.role or "",
        session=actor.session[:32], via=actor.via[:16], action=action[:64],
        target=str(target)[:500], outcome=outcome, detail=_jsonable(detail),
    ).returning(audit.c.id)).scalar_one())


def record_alone(engine: Engine, actor: Actor, action: str, target: str = "",
                 detail: dict[str, Any] | None = None, *, outcome: str = "ok",
                 at: datetime | None = None) -> int:
    """`record` in its own transaction (for writes outside the database, and refusals)."""
    ensure(engine)
    with writing(engine) as conn:
        return record(conn, actor, action, target, detail, outcome=outcome, at=at)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, datetime):
        return v.isoformat()
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return str(v)


def query(engine: Engine, *, start: datetime | None = None, end: datetime | None = None,
          actor: str | None = None, action: str | None = None, outcome: str | None = None,
          session: str | None = None, limit: int = 10_000) -> pl.DataFrame:
    """Audit rows in [start, end), newest first, filtered by exact actor / outcome /
    session and by action prefix ("queue" matches queue.create and queue.close).
    Columns: COLUMNS, `detail` as JSON text."""
    ensure(engine)
    q = sa.select(audit)
    if start is not None:
        q = q.where(audit.c.at >= start)
    if end is not None:
        q = q.where(audit.c.at < end)
    if actor:
        q = q.where(audit.c.actor == actor)
    if outcome:
        q = q.where(audit.c.outcome == outcome)
    if session:
        q = q.where(audit.c.session == session)
    if action:
        q = q.where(sa.or_(audit.c.action == action, audit.c.action.startswith(action + ".", autoescape=True)))
    q = q.order_by(audit.c.id.desc()).limit(int(limit))
    with reading(engine) as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    import json

    schema = {"id": pl.Int64, "at": pl.Datetime("us", "UTC"), "actor": pl.String, "role": pl.String,
              "session": pl.String, "via": pl.String, "action": pl.String, "target": pl.String,
              "outcome": pl.String, "detail": pl.String}
    return pl.DataFrame([{**{k: r[k] for k in COLUMNS if k != "detail"},
                          "detail": json.dumps(r["detail"], ensure_ascii=False, sort_keys=True)}
                         for r in rows], schema=schema)


def distinct(engine: Engine, column: str) -> list[str]:
    """Distinct values of actor, action or outcome, sorted (for filter widgets)."""
    if column not in ("actor", "action", "outcome", "via"):
        raise ValueError(f"no filter on {column!r}")
    ensure(engine)
    col = audit.c[column]
    with reading(engine) as conn:
        return [r[0] for r in conn.execute(sa.select(col).distinct().order_by(col))]


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """The frame as CSV (UTC times, ISO 8601), text cells neutralised by monitoring.fmt
    (a cell a spreadsheet would run as a formula starts with ')."""
    from ..fmt import safe_frame

    buf = io.BytesIO()
    safe_frame(frame).write_csv(buf, datetime_format="%Y-%m-%dT%H:%M:%S%.fZ")
    return buf.getvalue()

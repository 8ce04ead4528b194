"""Alert history and acknowledgements in the product's database (component "alerts").

Episodes are upserted by (logs, rule, subject, start): a new evaluation adds the episodes it
finds and updates the end and peak of those it already knew; nothing is deleted. An
acknowledgement records who took an episode in hand, when, and a note.

    engine = open_alerts_db(cfg.database_url)
    sync(engine, cfg.logs, episodes)
    history(engine, cfg.logs)   # -> polars frame, newest first, with acknowledgement
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..database import BigId, UTCDateTime, open_component, reading, writing
from .engine import Episode

COMPONENT = "alerts"
metadata = sa.MetaData()


def _tables_v1(md: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """The tables as schema version 1 created them. Frozen: a later version changes the live
    tables below through its own migration step and leaves this alone."""
    episodes = sa.Table(
        "alert_episodes", md,
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("logs", sa.String(2000), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("area", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("page", sa.String(64), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("resolved_at", UTCDateTime, nullable=True),
        sa.Column("peak", sa.Float, nullable=True),
        sa.Column("threshold", sa.Float, nullable=True),
        sa.Column("unit", sa.String(16), nullable=False, server_default=""),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("first_seen_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("logs", "rule", "subject", "started_at", name="uq_alert_episode"),
        sa.Index("ix_alert_episodes_time", "logs", "started_at"),
    )

    acks = sa.Table(
        "alert_acks", md,
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("episode_id", sa.BigInteger, sa.ForeignKey("alert_episodes.id"), nullable=False),
        sa.Column("who", sa.String(100), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Index("ix_alert_acks_episode", "episode_id"),
    )
    return episodes, acks


# The live tables; identical to version 1 until a migration step changes them.
episodes, acks = _tables_v1(metadata)


def _v1(conn: Connection) -> None:
    """First schema: episodes and acknowledgements."""
    md = sa.MetaData()
    md.create_all(conn, tables=list(_tables_v1(md)))


MIGRATIONS = (_v1,)


def open_alerts_db(url: str) -> Engine:
    return open_component(url, MIGRATIONS, COMPONENT, tables=(episodes.name, acks.name))


def _num(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


def sync(engine: Engine, logs: str, found: list[Episode]) -> dict[str, int]:
    """Store the evaluation's episodes; returns counts of new and updated ones."""
    now = datetime.now(UTC)
    new = updated = 0
    with writing(engine) as conn:
        known = {
            (r.rule, r.subject, r.started_at): r
            for r in conn.execute(sa.select(episodes).where(episodes.c.logs == logs))
        }
        for e in found:
            row = known.get((e.rule, e.subject, e.start))
            values = {"resolved_at": e.end, "peak": _num(e.peak), "message": e.message, "updated_at": now,
                      "threshold": _num(e.threshold), "unit": e.unit, "title": e.title, "page": e.page,
                      "area": e.area}
            if row is None:
                conn.execute(episodes.insert().values(logs=logs, rule=e.rule, subject=e.subject,
                                                      started_at=e.start, first_seen_at=now, **values))
                new += 1
            elif row.resolved_at != e.end or _num(row.peak) != _num(e.peak):
                conn.execute(episodes.update().where(episodes.c.id == row.id).values(**values))
                updated += 1
    return {"new": new, "updated": updated}


def history(engine: Engine, logs: str, start: datetime | None = None, end: datetime | None = None) -> pl.DataFrame:
    """Episodes overlapping [start, end), newest first, with their latest acknowledgement."""
    last_ack = (sa.select(acks.c.episode_id, sa.func.max(acks.c.id).label("ack_id"))
                .group_by(acks.c.episode_id).subquery())
    q = (sa.select(episodes, acks.c.who.label("ack_by"), acks.c.at.label("ack_at"), acks.c.note.label("ack_note"))
         .select_from(episodes.outerjoin(last_ack, last_ack.c.episode_id == episodes.c.id)
                      .outerjoin(acks, acks.c.id == last_ack.c.ack_id))
         .where(episodes.c.logs == logs))
    if start is not None:
        q = q.where(sa.or_(episodes.c.resolved_at.is_(None), episodes.c.resolved_at > start))
    if end is not None:
        q = q.where(episodes.c.started_at < end)
    q = q.order_by(episodes.c.started_at.desc(), episodes.c.rule)
    with reading(engine) as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    return pl.DataFrame([{k: r.get(k) for k in HISTORY_SCHEMA} for r in rows], schema=HISTORY_SCHEMA)


HISTORY_SCHEMA = {"id": pl.Int64, "rule": pl.String, "subject": pl.String, "area": pl.String, "title": pl.String,
                  "page": pl.String, "started_at": pl.Datetime("us", "UTC"), "resolved_at": pl.Datetime("us", "UTC"),
                  "peak": pl.Float64, "threshold": pl.Float64, "unit": pl.String, "message": pl.String,
                  "ack_by": pl.String, "ack_at": pl.Datetime("us", "UTC"), "ack_note": pl.String}


def episodes_frame(found: list[Episode]) -> pl.DataFrame:
    """Evaluated episodes in the shape of `history` (no id, no acknowledgement), newest first:
    what the Alerts page shows when the database cannot be read."""
    rows = [{"id": None, "rule": e.rule, "subject": e.subject, "area": e.area, "title": e.title, "page": e.page,
             "started_at": e.start, "resolved_at": e.end, "peak": _num(e.peak), "threshold": _num(e.threshold),
             "unit": e.unit, "message": e.message, "ack_by": None, "ack_at": None, "ack_note": None}
            for e in sorted(sorted(found, key=lambda e: e.rule), key=lambda e: e.start, reverse=True)]
    return pl.DataFrame(rows, schema=HISTORY_SCHEMA)


def acknowledge(engine: Engine, episode_id: int, who: str, note: str | None = None) -> None:
    who = (who or "").strip()
    if not who:
        raise ValueError("an acknowledgement needs a name")
    with writing(engine) as conn:
        if conn.execute(sa.select(episodes.c.id).where(episodes.c.id == episode_id)).first() is None:
            raise ValueError(f"no alert episode {episode_id}")
        conn.execute(acks.insert().values(episode_id=episode_id, who=who[:100], at=datetime.now(UTC),
                                          note=(note or None)))

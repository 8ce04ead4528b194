"""The labelling tables and their migrations, on the product's database (monitoring.database).

    engine = open_db("sqlite:///.data/modelwatch.sqlite")   # creates or upgrades the schema
    with writing(engine) as conn: ...                       # one atomic write transaction
    with reading(engine) as conn: ...                       # a consistent read

SQLite (the default, a file in the data folder) runs in WAL mode with a busy timeout, and
every write transaction starts with BEGIN IMMEDIATE so concurrent writers queue instead of
failing half-way. PostgreSQL is used through psycopg 3 (`postgresql://` URLs are mapped to
`postgresql+psycopg://`). Timestamps are stored as naive UTC and come back aware (UTC).

The schema carries a version per component in `schema_versions`. `MIGRATIONS` is the
ordered list of steps; `upgrade()` applies the missing ones in one transaction and refuses a
database newer than this code. Every step only adds: data is never dropped.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..database import (  # re-exported: the labelling modules and tests use them from here
    BigId,
    DatabaseError,
    Migration,
    UTCDateTime,
    create_engine,
    first_line,
    open_component,
    reading,
    safe_url,
    schema_versions,
    writing,
)
from ..database import schema_version as _schema_version
from ..database import upgrade as _upgrade

COMPONENT = "labelling"
__all__ = ["BigId", "DatabaseError", "UTCDateTime", "create_engine", "events", "first_line", "items",
           "open_db", "queues", "reading", "safe_url", "schema_version", "schema_versions", "upgrade",
           "writing"]

metadata = sa.MetaData()

queues = sa.Table(
    "labelling_queues", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("logs", sa.String(2000), nullable=True),
    sa.Column("window_start", UTCDateTime, nullable=True),
    sa.Column("window_end", UTCDateTime, nullable=True),
    sa.Column("model_name", sa.String(200), nullable=True),
    sa.Column("strategy", sa.String(16), nullable=False),
    sa.Column("stratify_by", sa.String(64), nullable=True),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("size_requested", sa.Integer, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("population", sa.BigInteger, nullable=False),
    sa.Column("calibration_share", sa.Float, nullable=False, server_default="0"),
    sa.Column("calibration_reviewers", sa.Integer, nullable=False, server_default="2"),
    sa.Column("lease_seconds", sa.Float, nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),     # the full QueueSpec, to reproduce
    sa.Column("features", sa.JSON, nullable=False),     # feature names in display order
    sa.Column("classes", sa.JSON, nullable=False),      # known classes, for "wrong → class"
)

items = sa.Table(
    "labelling_items", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("queue_id", sa.BigInteger, sa.ForeignKey("labelling_queues.id"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("request_id", sa.String(512), nullable=False),
    sa.Column("ts", UTCDateTime, nullable=True),
    sa.Column("model_name", sa.String(200), nullable=True),
    sa.Column("model_version", sa.String(200), nullable=True),
    sa.Column("endpoint", sa.String(500), nullable=True),
    sa.Column("prediction", sa.Text, nullable=True),     # as shown to reviewers
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("inputs", sa.JSON, nullable=False),        # feature -> value, copied from the logs
    sa.Column("stratum", sa.String(500), nullable=True),
    sa.Column("calibration", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("needed", sa.Integer, nullable=False, server_default="1"),
    # Work-queue state, changed only together with an event in the same transaction.
    sa.Column("answers", sa.Integer, nullable=False, server_default="0"),
    sa.Column("claimed_by", sa.String(100), nullable=True),
    sa.Column("claim_token", sa.String(32), nullable=True),
    sa.Column("claimed_at", sa.Float, nullable=True),    # epoch seconds
    sa.Column("lease_until", sa.Float, nullable=True),   # epoch seconds
    # v2: why the item was drawn, and its design weight (inverse inclusion probability).
    sa.Column("reason", sa.String(32), nullable=False, server_default="random"),
    sa.Column("weight", sa.Float, nullable=False, server_default="1.0"),
    sa.UniqueConstraint("queue_id", "request_id", name="uq_labelling_items_request"),
    sa.UniqueConstraint("queue_id", "position", name="uq_labelling_items_position"),
    sa.Index("ix_labelling_items_claim", "queue_id", "answers", "position"),
    sa.Index("ix_labelling_items_claimed_by", "queue_id", "claimed_by"),
)

events = sa.Table(
    "labelling_events", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("queue_id", sa.BigInteger, sa.ForeignKey("labelling_queues.id"), nullable=False),
    sa.Column("item_id", sa.BigInteger, sa.ForeignKey("labelling_items.id"), nullable=False),
    sa.Column("request_id", sa.String(512), nullable=False),
    sa.Column("reviewer", sa.String(100), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # answer | skip | undo
    sa.Column("verdict", sa.String(16), nullable=True),  # correct | wrong | unsure
    sa.Column("correct_label", sa.Text, nullable=True),
    sa.Column("flagged", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("flag_reason", sa.Text, nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("seconds_spent", sa.Float, nullable=True),
    sa.Column("prediction_shown", sa.Text, nullable=True),
    sa.Column("score_shown", sa.Float, nullable=True),
    sa.Column("model_version", sa.String(200), nullable=True),
    sa.Column("calibration", sa.Boolean, nullable=False, server_default=sa.false()),
    # An undo names the answer it supersedes; each answer can be superseded once.
    sa.Column("supersedes", sa.BigInteger, sa.ForeignKey("labelling_events.id"), nullable=True,
              unique=True),
    sa.Index("ix_labelling_events_queue", "queue_id", "reviewer"),
    sa.Index("ix_labelling_events_item", "item_id", "reviewer"),
)


# -- migrations ------------------------------------------------------------------------------

def _v1(conn: Connection) -> None:
    """The first schema: queues, items (without reason and weight) and the event log.

    Frozen on purpose: later steps change the tables above, never this definition.
    """
    md = sa.MetaData()
    sa.Table(
        "labelling_queues", md,
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("logs", sa.String(2000), nullable=True),
        sa.Column("window_start", UTCDateTime, nullable=True),
        sa.Column("window_end", UTCDateTime, nullable=True),
        sa.Column("model_name", sa.String(200), nullable=True),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("stratify_by", sa.String(64), nullable=True),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("size_requested", sa.Integer, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("population", sa.BigInteger, nullable=False),
        sa.Column("calibration_share", sa.Float, nullable=False, server_default="0"),
        sa.Column("calibration_reviewers", sa.Integer, nullable=False, server_default="2"),
        sa.Column("lease_seconds", sa.Float, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("classes", sa.JSON, nullable=False),
    )
    sa.Table(
        "labelling_items", md,
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("queue_id", sa.BigInteger, sa.ForeignKey("labelling_queues.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(512), nullable=False),
        sa.Column("ts", UTCDateTime, nullable=True),
        sa.Column("model_name", sa.String(200), nullable=True),
        sa.Column("model_version", sa.String(200), nullable=True),
        sa.Column("endpoint", sa.String(500), nullable=True),
        sa.Column("prediction", sa.Text, nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("stratum", sa.String(500), nullable=True),
        sa.Column("calibration", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("needed", sa.Integer, nullable=False, server_default="1"),
        sa.Column("answers", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("claim_token", sa.String(32), nullable=True),
        sa.Column("claimed_at", sa.Float, nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.UniqueConstraint("queue_id", "request_id", name="uq_labelling_items_request"),
        sa.UniqueConstraint("queue_id", "position", name="uq_labelling_items_position"),
        sa.Index("ix_labelling_items_claim", "queue_id", "answers", "position"),
        sa.Index("ix_labelling_items_claimed_by", "queue_id", "claimed_by"),
    )
    sa.Table(
        "labelling_events", md,
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("queue_id", sa.BigInteger, sa.ForeignKey("labelling_queues.id"), nullable=False),
        sa.Column("item_id", sa.BigInteger, sa.ForeignKey("labelling_items.id"), nullable=False),
        sa.Column("request_id", sa.String(512), nullable=False),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=True),
        sa.Column("correct_label", sa.Text, nullable=True),
        sa.Column("flagged", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("flag_reason", sa.Text, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("seconds_spent", sa.Float, nullable=True),
        sa.Column("prediction_shown", sa.Text, nullable=True),
        sa.Column("score_shown", sa.Float, nullable=True),
        sa.Column("model_version", sa.String(200), nullable=True),
        sa.Column("calibration", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("supersedes", sa.BigInteger, sa.ForeignKey("labelling_events.id"), nullable=True,
                  unique=True),
        sa.Index("ix_labelling_events_queue", "queue_id", "reviewer"),
        sa.Index("ix_labelling_events_item", "item_id", "reviewer"),
    )
    md.create_all(conn)


def _v2(conn: Connection) -> None:
    """Items record why they were drawn (quotas) and their design weight (stratified)."""
    real = sa.Float().compile(dialect=conn.dialect)
    conn.exec_driver_sql(
        "ALTER TABLE labelling_items ADD COLUMN reason VARCHAR(32) NOT NULL DEFAULT 'random'")
    conn.exec_driver_sql(f"ALTER TABLE labelling_items ADD COLUMN weight {real} NOT NULL DEFAULT 1.0")


MIGRATIONS: tuple[Migration, ...] = (_v1, _v2)   # index + 1 = the version it produces
SCHEMA_VERSION = len(MIGRATIONS)




def schema_version(engine: Engine, component: str = COMPONENT) -> int:
    return _schema_version(engine, component)


def upgrade(engine: Engine, migrations=MIGRATIONS, component: str = COMPONENT, to: int | None = None) -> int:
    return _upgrade(engine, migrations, component, to)


def open_db(url: str) -> Engine:
    """Engine for `url` with the labelling schema created or upgraded; raises DatabaseError."""
    return open_component(url, MIGRATIONS, COMPONENT, tables=(queues.name, items.name, events.name))

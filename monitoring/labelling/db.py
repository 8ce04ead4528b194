"""The labelling database: engine from a URL, tables, schema version and migrations.

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

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

COMPONENT = "labelling"
SQLITE_BUSY_TIMEOUT_S = 30.0


class DatabaseError(ValueError):
    """The database cannot be used (bad URL, unreachable, newer schema); one line to act on."""


class UTCDateTime(sa.types.TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC on every backend."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # defensive: SQLite rows written by other tools
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Autoincrementing 64-bit keys on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

schema_versions = sa.Table(
    "schema_versions", metadata,
    sa.Column("component", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("upgraded_at", UTCDateTime, nullable=False),
)

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


Migration = Callable[[Connection], None]
MIGRATIONS: tuple[Migration, ...] = (_v1, _v2)   # index + 1 = the version it produces
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(engine: Engine, component: str = COMPONENT) -> int:
    """The version recorded in the database (0 when the component has no tables yet)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(schema_versions.name):
            return 0
        v = conn.execute(sa.select(schema_versions.c.version)
                         .where(schema_versions.c.component == component)).scalar()
        return int(v or 0)


def upgrade(engine: Engine, migrations: tuple[Migration, ...] = MIGRATIONS,
            component: str = COMPONENT, to: int | None = None) -> int:
    """Apply the missing migrations (up to `to`, default all); returns the version reached.

    Runs in one transaction holding the write lock (SQLite) or an advisory lock
    (PostgreSQL), so two processes starting together upgrade once.
    """
    target = len(migrations) if to is None else to
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7311500421)"))
        schema_versions.create(conn, checkfirst=True)
        row = conn.execute(sa.select(schema_versions.c.version)
                           .where(schema_versions.c.component == component)).scalar()
        current = int(row or 0)
        if current > len(migrations):
            raise DatabaseError(
                f"the database schema of {component} is version {current}, newer than this "
                f"modelwatch understands ({len(migrations)}); upgrade modelwatch")
        for version in range(current + 1, target + 1):
            migrations[version - 1](conn)
        if target > current:
            now = datetime.now(UTC)
            if row is None:
                conn.execute(schema_versions.insert().values(component=component, version=target,
                                                             upgraded_at=now))
            else:
                conn.execute(schema_versions.update().where(schema_versions.c.component == component)
                             .values(version=target, upgraded_at=now))
        return max(current, target)


# -- engine ----------------------------------------------------------------------------------

def normalize_url(url: str) -> sa.URL:
    """Parse a SQLAlchemy URL; PostgreSQL URLs without a driver use psycopg 3."""
    try:
        u = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise DatabaseError(f"not a database URL: {url!r}") from exc
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseError(f"unsupported database {u.get_backend_name()!r}: use sqlite:/// or postgresql://")
    return u


def create_engine(url: str) -> Engine:
    """An engine for `url` with the product's settings; no schema work (see open_db)."""
    u = normalize_url(url)
    if u.get_backend_name() == "sqlite":
        return _sqlite_engine(u)
    try:
        return sa.create_engine(u, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except ModuleNotFoundError as exc:
        raise DatabaseError("PostgreSQL needs psycopg: pip install 'modelwatch[postgres]'") from exc


def _sqlite_engine(u: sa.URL) -> Engine:
    memory = u.database in (None, "", ":memory:")
    if not memory:
        folder = Path(u.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the database folder {folder}: {exc.strerror}") from exc
    kwargs: dict = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = sa.pool.StaticPool
    else:
        kwargs |= {"pool_size": 10, "max_overflow": 20}
    engine = sa.create_engine(u, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # pysqlite's own transaction handling is bypassed: SQLAlchemy's begin event below
        # emits BEGIN itself (the documented recipe for real SQLite transactions).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        # FULL: a committed answer survives a power cut too, not only a crashed process.
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take the lock up front: no deadlock-prone read-then-upgrade in WAL mode.
        mode = "BEGIN" if conn.get_execution_options().get("modelwatch_read") else "BEGIN IMMEDIATE"
        conn.exec_driver_sql(mode)

    return engine


def open_db(url: str) -> Engine:
    """Engine for `url` with the schema created or upgraded; raises DatabaseError."""
    engine = create_engine(url)
    try:
        upgrade(engine)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise DatabaseError(f"cannot open the database {safe_url(url)}: {first_line(exc)}") from exc
    except DatabaseError:
        engine.dispose()
        raise
    return engine


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """One write transaction (BEGIN IMMEDIATE on SQLite); commits on success."""
    with engine.begin() as conn:
        yield conn


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """One read transaction: a consistent snapshot that never blocks writers (WAL)."""
    with engine.connect() as conn:
        conn.execution_options(modelwatch_read=True)
        with conn.begin():
            yield conn


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid URL>"


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

"""The product's own database: engine from a URL, schema versions and migrations.

Shared by every component that keeps state (labelling queues, alert history):

    engine = create_engine(url)                  # SQLite (WAL, busy timeout) or PostgreSQL
    upgrade(engine, MIGRATIONS, component="x")   # apply the component's missing steps
    with writing(engine) as conn: ...            # one atomic write transaction
    with reading(engine) as conn: ...            # a consistent read

SQLite (the default, a file in the data folder) runs in WAL mode with a busy timeout, and
every write transaction starts with BEGIN IMMEDIATE so concurrent writers queue instead of
failing half-way. PostgreSQL is used through psycopg 3 (`postgresql://` URLs are mapped to
`postgresql+psycopg://`). Timestamps are stored as naive UTC and come back aware (UTC).

Each component records its version in `schema_versions`; `upgrade()` applies the missing
steps in one transaction and refuses a database newer than the code. Steps only add.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

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

Migration = Callable[[Connection], None]


def schema_version(engine: Engine, component: str) -> int:
    """The version recorded in the database (0 when the component has no tables yet)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(schema_versions.name):
            return 0
        v = conn.execute(sa.select(schema_versions.c.version)
                         .where(schema_versions.c.component == component)).scalar()
        return int(v or 0)


def upgrade(engine: Engine, migrations: tuple[Migration, ...], component: str,
            to: int | None = None) -> int:
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


def _sqlite_file(u: sa.URL) -> Path | None:
    """The file a SQLite URL names (also `sqlite:///file:PATH?uri=true`), None in memory."""
    db = u.database
    if db in (None, "", ":memory:"):
        return None
    if u.query.get("uri") in ("true", "1") and db.startswith("file:"):
        db = db[len("file:"):].split("?", 1)[0]
        if db in ("", ":memory:") or u.query.get("mode") == "memory":
            return None
    return Path(db).expanduser()


def _refuse_empty_file(path: Path) -> None:
    """A 0-byte file is a database that lost its content (a failed copy, a full disk, a
    truncation), not a new one: SQLite would silently start an empty database in it. Refuse.
    A file another process is creating this instant is 0 bytes only until its first write
    (the WAL header, microseconds later), so look again for a moment before refusing."""
    for _ in range(20):
        try:
            if path.stat().st_size:
                return
        except FileNotFoundError:
            return
        time.sleep(0.05)
    raise DatabaseError(
        f"the database file {path} is empty (0 bytes): it is not a SQLite database and it is not "
        "replaced; restore it from a backup, or delete it to start a new database")


def _sqlite_engine(u: sa.URL) -> Engine:
    path = _sqlite_file(u)
    memory = path is None
    if not memory:
        folder = path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the database folder {folder}: {exc.strerror}") from exc
        _refuse_empty_file(path)
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


def describe(exc: BaseException, url: str | None = None) -> str:
    """One sentence for any failure of the database (DatabaseError or SQLAlchemy's)."""
    if isinstance(exc, DatabaseError):
        return str(exc)
    where = f" {safe_url(url)}" if url else ""
    return f"database error on{where}: {first_line(exc)}"


# What "the database cannot be used" looks like to a caller: catch these, say `describe(exc)`.
FAILURES: tuple[type[BaseException], ...] = (DatabaseError, sa.exc.SQLAlchemyError)


def _check_tables(engine: Engine, component: str, tables: tuple[str, ...]) -> None:
    with engine.connect() as conn:
        present = set(sa.inspect(conn).get_table_names())
    missing = [t for t in tables if t not in present]
    if missing:
        raise DatabaseError(
            f"the database records the {component} schema but its table(s) {', '.join(missing)} "
            "are missing (was it emptied?); restore it from a backup or point the app at another database")


def open_component(url: str, migrations: tuple[Migration, ...], component: str,
                   tables: tuple[str, ...] = ()) -> Engine:
    """Engine for `url` with `component`'s schema created or upgraded and its `tables`
    present; raises DatabaseError with one line to act on."""
    engine = create_engine(url)
    try:
        upgrade(engine, migrations, component)
        _check_tables(engine, component, tables)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise DatabaseError(f"cannot open the database {safe_url(url)}: {first_line(exc)}") from exc
    except DatabaseError:
        engine.dispose()
        raise
    return engine

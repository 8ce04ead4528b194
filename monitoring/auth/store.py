"""The access tables in the product's database (component "auth"): users, sessions, audit.

    engine = open_auth_db(cfg.database_url)   # creates or upgrades the auth tables
    ensure(engine)                            # same, once per engine, for other components'
                                              # engines that write audit rows

Steps only add (monitoring.database). Passwords are stored as argon2id hashes only;
sessions by the SHA-256 of their token, so neither a copy of the database nor the audit
trail holds anything that signs someone in.
"""

from __future__ import annotations

import threading
import weakref

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..database import (
    BigId,
    DatabaseError,
    UTCDateTime,
    first_line,
    open_component,
    safe_url,
    upgrade,
)

COMPONENT = "auth"
MAX_NAME = 100


def _tables_v1(md: sa.MetaData) -> tuple[sa.Table, sa.Table, sa.Table]:
    """The tables as schema version 1 created them. Frozen: later versions change the live
    tables through their own step and leave this alone."""
    users = sa.Table(
        "auth_users", md,
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(MAX_NAME), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=True, unique=True),   # lower case
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),       # None: OIDC only
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("password_changed_at", UTCDateTime, nullable=True),
    )
    sessions = sa.Table(
        "auth_sessions", md,
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_name", sa.String(MAX_NAME), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),                  # password | oidc | cli
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("ended_reason", sa.String(32), nullable=True),          # logout | expired | idle
        sa.Column("client", sa.String(200), nullable=True),               # e.g. the remote address
        sa.Index("ix_auth_sessions_user", "user_name"),
    )
    audit = sa.Table(
        "auth_audit", md,
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(MAX_NAME), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("session", sa.String(32), nullable=False, server_default=""),
        sa.Column("via", sa.String(16), nullable=False),                  # web | cli | local
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(500), nullable=False, server_default=""),
        sa.Column("outcome", sa.String(16), nullable=False, server_default="ok"),  # ok | denied | failed
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Index("ix_auth_audit_at", "at"),
        sa.Index("ix_auth_audit_actor", "actor", "at"),
    )
    return users, sessions, audit


metadata = sa.MetaData()
users, sessions, audit = _tables_v1(metadata)


def _v1(conn: Connection) -> None:
    """First schema: users, sessions and the audit trail."""
    md = sa.MetaData()
    md.create_all(conn, tables=list(_tables_v1(md)))


MIGRATIONS = (_v1,)
TABLES = ("auth_users", "auth_sessions", "auth_audit")

_ready: weakref.WeakSet[Engine] = weakref.WeakSet()
_lock = threading.Lock()


def open_auth_db(url: str) -> Engine:
    """Engine for `url` with the auth tables created or upgraded; raises DatabaseError."""
    engine = open_component(url, MIGRATIONS, COMPONENT, tables=TABLES)
    _ready.add(engine)
    return engine


def ensure(engine: Engine) -> Engine:
    """Create or upgrade the auth tables on `engine` once per process; returns it."""
    if engine in _ready:
        return engine
    with _lock:
        if engine not in _ready:
            try:
                upgrade(engine, MIGRATIONS, COMPONENT)
            except sa.exc.SQLAlchemyError as exc:
                raise DatabaseError(f"cannot create the access tables in "
                                    f"{safe_url(str(engine.url))}: {first_line(exc)}") from exc
            _ready.add(engine)
    return engine

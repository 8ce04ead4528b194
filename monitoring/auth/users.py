"""Users in the product's database: add, change role, disable, set a password, list.

    add_user(engine, "ana", "reviewer", password="…", actor=admin)
    set_role(engine, "ana", "lead", actor=admin)
    disable(engine, "ana", actor=admin)
    list_users(engine)     # [{"name", "email", "role", "disabled", "locked_until", ...}]

Every change needs the admin role (users.manage) and is audited in the same transaction.
The first admin of an empty database can be added by the person at the shell (`bootstrap`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..database import reading, writing
from . import audit
from .guard import authorize
from .passwords import check_new, hash_password
from .roles import Actor, check_role, local_actor
from .settings import AuthSettings, configured
from .store import MAX_NAME, ensure, users


class UserError(ValueError):
    """A user change cannot be made as asked; one line saying why."""


def normalize_name(name: str | None) -> str:
    clean = " ".join((name or "").split())
    if not clean:
        raise UserError("a user needs a name")
    if len(clean) > MAX_NAME:
        raise UserError(f"user names are at most {MAX_NAME} characters")
    if any(not ch.isprintable() for ch in clean):
        raise UserError("user names are printable text")
    return clean


def _email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    e = email.strip().lower()
    if "@" not in e or len(e) > 320 or any(ch.isspace() for ch in e):
        raise UserError(f"not an e-mail address: {email!r}")
    return e


def _row(conn: Connection, name: str) -> dict[str, Any]:
    r = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
    if r is None:
        raise UserError(f"no user {name!r}")
    return dict(r)


def has_admin(engine: Engine) -> bool:
    ensure(engine)
    with reading(engine) as conn:
        return conn.execute(sa.select(users.c.id).where(
            users.c.role == "admin", users.c.disabled.is_(False)).limit(1)).first() is not None


def add_user(engine: Engine, name: str, role: str, *, password: str | None = None,
             email: str | None = None, actor: Actor | None = None,
             settings: AuthSettings | None = None, bootstrap: bool = False,
             now: datetime | None = None) -> dict[str, Any]:
    """Add a user; returns its row (without the hash). `bootstrap=True` lets the person at
    the shell add the first admin of a database that has none."""
    s = settings or configured()
    name, role, email = normalize_name(name), check_role(role), _email(email)
    ensure(engine)
    if bootstrap and actor is None:
        if has_admin(engine):
            raise UserError("this database has an admin already: add users --as an admin")
        if role != "admin":
            raise UserError("the first user of a database is an admin (--role admin)")
        actor = Actor(name=f"{local_actor().name} (shell)", role="admin", via="cli")
    actor = authorize(engine, actor, "users.manage", f"user {name}", s)
    if password is not None:
        check_new(password, s.min_password_length)
    t = now or datetime.now(UTC)
    with writing(engine) as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.name == name)).first():
            raise UserError(f"there is a user {name!r} already")
        if email and conn.execute(sa.select(users.c.id).where(users.c.email == email)).first():
            raise UserError(f"another user has the e-mail {email}")
        conn.execute(users.insert().values(
            name=name, email=email, role=role, created_at=t, updated_at=t,
            password_hash=hash_password(password) if password is not None else None,
            password_changed_at=t if password is not None else None))
        audit.record(conn, actor, "users.add", f"user {name}",
                     {"role": role, "email": email, "sign_in": "password" if password is not None else "oidc"}, at=t)
        return _public(_row(conn, name))


def set_role(engine: Engine, name: str, role: str, *, actor: Actor | None = None,
             settings: AuthSettings | None = None) -> dict[str, Any]:
    name, role = normalize_name(name), check_role(role)
    return _change(engine, name, actor, settings, "users.set_role", {"role": role},
                   lambda old: {"from": old["role"], "to": role})


def disable(engine: Engine, name: str, *, actor: Actor | None = None,
            settings: AuthSettings | None = None, enabled: bool = False) -> dict[str, Any]:
    """Disable a user (no sign-in, sessions end at their next request); enabled=True undoes."""
    name = normalize_name(name)
    values: dict[str, Any] = {"disabled": not enabled}
    if enabled:
        values |= {"failures": 0, "locked_until": None}
    return _change(engine, name, actor, settings, "users.enable" if enabled else "users.disable",
                   values, lambda old: {})


def set_password(engine: Engine, name: str, password: str, *, actor: Actor | None = None,
                 settings: AuthSettings | None = None) -> dict[str, Any]:
    """Set a new password (and unlock the account)."""
    s = settings or configured()
    name = normalize_name(name)
    check_new(password, s.min_password_length)
    return _change(engine, name, actor, s, "users.set_password",
                   {"password_hash": hash_password(password), "failures": 0, "locked_until": None,
                    "password_changed_at": datetime.now(UTC)}, lambda old: {})


def _change(engine, name, actor, settings, action, values, describe) -> dict[str, Any]:
    ensure(engine)
    actor = authorize(engine, actor, "users.manage", f"user {name}", settings)
    with writing(engine) as conn:
        old = _row(conn, name)
        if old["role"] == "admin" and not old["disabled"] and (
                values.get("disabled") or values.get("role", "admin") != "admin"):
            others = conn.execute(sa.select(sa.func.count()).where(
                users.c.role == "admin", users.c.disabled.is_(False), users.c.name != name)).scalar_one()
            if not others:
                raise UserError(f"{name} is the last admin: make another admin first")
        conn.execute(users.update().where(users.c.name == name)
                     .values(**values, updated_at=datetime.now(UTC)))
        audit.record(conn, actor, action, f"user {name}", describe(old))
        return _public(_row(conn, name))


def get_user(engine: Engine, name: str) -> dict[str, Any] | None:
    ensure(engine)
    with reading(engine) as conn:
        r = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
        return _public(dict(r)) if r else None


def by_email(engine: Engine, email: str) -> dict[str, Any] | None:
    ensure(engine)
    with reading(engine) as conn:
        r = conn.execute(sa.select(users).where(users.c.email == email.strip().lower())).mappings().first()
        return _public(dict(r)) if r else None


def list_users(engine: Engine) -> list[dict[str, Any]]:
    """Every user by name, without password hashes."""
    ensure(engine)
    with reading(engine) as conn:
        return [_public(dict(r)) for r in conn.execute(sa.select(users).order_by(users.c.name)).mappings()]


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "password_hash"}
    out["has_password"] = row.get("password_hash") is not None
    return out

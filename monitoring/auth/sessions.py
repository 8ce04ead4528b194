"""Sign-in, sessions with expiry, lockout after repeated failures, sign-out.

    s = login(engine, "ana", password, settings=cfg, now=t)      # Session or LoginFailed
    actor, why = validate(engine, s.token, settings=cfg, now=t)  # Actor, or None and a reason
    logout(engine, s.token)

A session ends `session_minutes` after sign-in or `idle_minutes` after its last use,
whichever comes first; a user disabled or removed loses their sessions at the next use, and
a role change applies at the next use. After `max_failures` wrong passwords in a row the
account locks for `lockout_minutes` (even the right password is refused meanwhile). The
clock is passed in (`now`), so tests need no sleeps. Tokens are random (256 bits) and
stored hashed; every sign-in, failure, lockout and sign-out is audited.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..database import writing
from . import audit
from .passwords import hash_password, needs_rehash, verify
from .roles import Actor
from .settings import AuthSettings
from .store import ensure, sessions, users


class LoginFailed(ValueError):
    """Sign-in refused; the message is safe to show (it never says which part was wrong)."""


@dataclass(frozen=True)
class Session:
    token: str          # give to the client; never logged or stored in clear
    actor: Actor
    expires_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def login(engine: Engine, name: str, password: str, *, settings: AuthSettings,
          now: datetime | None = None, client: str | None = None, via: str = "web") -> Session:
    """Check the password and open a session; raises LoginFailed. `via`: web or cli."""
    ensure(engine)
    t = _now(now)
    name = " ".join((name or "").split())
    who = Actor(name=name[:100] or "(empty)", role="", via=via)
    with writing(engine) as conn:
        row = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
        locked = row is not None and row["locked_until"] is not None and row["locked_until"] > t
        ok = not locked and verify(row["password_hash"] if row else None, password or "")
        if locked:
            # Recorded, then refused after the commit (a raise here would roll the record back).
            audit.record(conn, who, "auth.login", f"user {name}", {"reason": "locked"},
                         outcome="denied", at=t)
            failed = LoginFailed(f"this account is locked after too many failed sign-ins; try again "
                                 f"after {row['locked_until']:%H:%M} UTC or ask an admin")
        elif not ok or row is None or row["disabled"]:
            if row is not None:
                failures = int(row["failures"]) + 1
                locked = failures >= settings.max_failures
                conn.execute(users.update().where(users.c.id == row["id"]).values(
                    failures=0 if locked else failures,
                    locked_until=t + timedelta(minutes=settings.lockout_minutes) if locked else None))
                audit.record(conn, who, "auth.login", f"user {name}",
                             {"reason": "locked now" if locked else "wrong password or disabled",
                              "failures": failures}, outcome="failed", at=t)
            else:
                audit.record(conn, who, "auth.login", f"user {name}", {"reason": "unknown user"},
                             outcome="failed", at=t)
            failed = LoginFailed("wrong name or password")   # raised after the commit
        else:
            failed = None
            values = {"failures": 0, "locked_until": None}
            if needs_rehash(row["password_hash"]):
                values["password_hash"] = hash_password(password)
            conn.execute(users.update().where(users.c.id == row["id"]).values(**values))
            session = _open(conn, row["name"], row["role"], "password", settings, t, client, via)
            audit.record(conn, session.actor, "auth.login", f"user {name}", {}, at=t)
    if failed is not None:
        raise failed
    return session


def _open(conn, name: str, role: str, via: str, settings: AuthSettings, t: datetime,
          client: str | None, channel: str = "web") -> Session:
    token = secrets.token_urlsafe(32)
    expires = t + timedelta(minutes=settings.session_minutes)
    sid = conn.execute(sessions.insert().values(
        token_hash=_hash(token), user_name=name, via=via, created_at=t, last_seen_at=t,
        expires_at=expires, client=(client or None) and client[:200],
    ).returning(sessions.c.id)).scalar_one()
    return Session(token, Actor(name=name, role=role, session=f"s{sid}", via=channel,
                                authenticated=True), expires)


def open_session(engine: Engine, name: str, role: str, *, via: str, settings: AuthSettings,
                 now: datetime | None = None, client: str | None = None,
                 detail: dict | None = None) -> Session:
    """A session for a user proven elsewhere (OIDC); audited as a sign-in."""
    ensure(engine)
    t = _now(now)
    with writing(engine) as conn:
        s = _open(conn, name, role, via, settings, t, client)
        audit.record(conn, s.actor, "auth.login", f"user {name}", {"via": via, **(detail or {})}, at=t)
    return s


def validate(engine: Engine, token: str | None, *, settings: AuthSettings,
             now: datetime | None = None, role: str | None = None) -> tuple[Actor | None, str]:
    """The session's actor (last use updated), or (None, reason) when it has ended.

    The role is read again from the users table (unless the caller passes `role`, as OIDC
    does with the role its claims give), so a change applies at once; a disabled user's
    session ends."""
    if not token:
        return None, "not signed in"
    ensure(engine)
    t = _now(now)
    with writing(engine) as conn:
        s = conn.execute(sa.select(sessions).where(sessions.c.token_hash == _hash(token))).mappings().first()
        if s is None:
            return None, "unknown session"
        if s["ended_at"] is not None:
            return None, "signed out" if s["ended_reason"] == "logout" else f"session {s['ended_reason']}"
        reason = None
        if t >= s["expires_at"]:
            reason = "expired"
        elif t - s["last_seen_at"] >= timedelta(minutes=settings.idle_minutes):
            reason = "idle"
        u = conn.execute(sa.select(users).where(users.c.name == s["user_name"])).mappings().first()
        if reason is None and u is not None and u["disabled"]:
            reason = "disabled"
        if reason is None and u is None and role is None:
            reason = "removed"
        # An OIDC caller passes the role it decided (claim first); a password session reads
        # the table, so a role change applies at the next use.
        current_role = role if role is not None else (u["role"] if u is not None else None)
        actor = Actor(name=s["user_name"], role=current_role or "", session=f"s{s['id']}", via="web",
                      authenticated=True)
        if reason is not None:
            conn.execute(sessions.update().where(sessions.c.id == s["id"])
                         .values(ended_at=t, ended_reason=reason))
            audit.record(conn, actor, "auth.session_end", f"user {s['user_name']}",
                         {"reason": reason}, at=t)
            return None, {"expired": "your session expired; sign in again",
                          "idle": "your session ended after a period without activity; sign in again",
                          }.get(reason, f"session ended ({reason})")
        conn.execute(sessions.update().where(sessions.c.id == s["id"]).values(last_seen_at=t))
        return actor, ""


def logout(engine: Engine, token: str | None, *, now: datetime | None = None) -> bool:
    """End the session; True when it was open."""
    if not token:
        return False
    ensure(engine)
    t = _now(now)
    with writing(engine) as conn:
        s = conn.execute(sa.select(sessions).where(sessions.c.token_hash == _hash(token),
                                                   sessions.c.ended_at.is_(None))).mappings().first()
        if s is None:
            return False
        conn.execute(sessions.update().where(sessions.c.id == s["id"])
                     .values(ended_at=t, ended_reason="logout"))
        audit.record(conn, Actor(s["user_name"], "", f"s{s['id']}", "web", True), "auth.logout",
                     f"user {s['user_name']}", {}, at=t)
        return True

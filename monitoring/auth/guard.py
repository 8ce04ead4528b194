"""The check every write function makes: who is acting, and may they?

    actor = authorize(engine, actor, "queue.create", target="queue")   # or PermissionDenied
    with writing(engine) as conn:
        ...the write...
        audit.record(conn, actor, "queue.create", f"queue {qid}", {...})

`actor=None` means the person at this machine: allowed (as admin, under their login name)
only when [auth] mode is "none"; with sign-in on, a write without an actor is refused, so
a caller that forgets to pass one cannot write as anybody. A refusal is itself audited.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from .roles import Actor, PermissionDenied, require
from .settings import AuthSettings, configured


def resolve(actor: Actor | None, settings: AuthSettings | None = None) -> Actor:
    """The acting user: `actor`, or the local user in `none` mode; else PermissionDenied."""
    if actor is not None:
        return actor
    s = settings or configured()
    if s.enabled:
        raise PermissionDenied(f"sign in first: [auth] mode is {s.mode!r}, and this write "
                               "names no user (the CLI takes --as NAME)")
    from .roles import local_actor

    return local_actor(s)


def authorize(engine: Engine | None, actor: Actor | None, action: str, target: str = "",
              settings: AuthSettings | None = None) -> Actor:
    """`resolve` then `require`; a refusal is recorded in the audit trail on `engine`
    (when given) before PermissionDenied is raised."""
    who = resolve(actor, settings)
    try:
        return require(who, action)
    except PermissionDenied as exc:
        if engine is not None:
            import sqlalchemy as sa

            from ..database import DatabaseError
            from .audit import record_alone

            try:
                record_alone(engine, who, action, target, {"reason": str(exc)}, outcome="denied")
            except (sa.exc.SQLAlchemyError, DatabaseError):
                pass  # the refusal stands even when the database cannot record it
        raise


def as_reviewer(engine: Engine | None, actor: Actor | None, reviewer: str | None,
                target: str = "", settings: AuthSettings | None = None) -> tuple[Actor, str]:
    """(actor, reviewer name) for a labelling write: the role must allow labelling, and a
    signed-in user labels under their own name only (no typed names, no impostors)."""
    who = authorize(engine, actor, "label", target, settings)
    name = " ".join((reviewer or "").split())
    if who.authenticated:
        if name and name != who.name:
            exc = PermissionDenied(f"signed in as {who.name}: you review under your own name, "
                                   f"not {name!r}")
            if engine is not None:
                from .audit import record_alone

                record_alone(engine, who, "label", target, {"reason": str(exc)}, outcome="denied")
            raise exc
        return who, who.name
    # On a laptop (no sign-in) the typed name stands, as before; an explicit actor names itself.
    return who, name or (who.name if actor is not None else "")

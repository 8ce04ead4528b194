"""Roles, the acting user, and the one table of who may do what.

    actor = Actor("ana", "reviewer", session="s-12", via="web")
    require(actor, "label")          # returns the actor
    require(actor, "queue.create")   # raises PermissionDenied: a reviewer cannot create queues

Roles are ordered: viewer < reviewer < lead < admin, and each can do what the ones before
it can. Every write function in monitoring/ calls `authorize()` with the acting user it was
given (None means "the person at this machine", allowed only in `none` mode), so the check
holds whatever the UI shows or hides.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from .settings import ROLES, AuthSettings

# action -> the least role that may do it. One place: pages, CLI and write functions ask it.
ACTIONS: dict[str, str] = {
    "view": "viewer",
    "label": "reviewer",            # claim, answer, skip, undo, release
    "queue.create": "lead",
    "queue.close": "lead",
    "queue.export": "lead",
    "alert.acknowledge": "lead",
    "drift.reference": "lead",
    "registry.edit": "lead",
    "users.manage": "admin",
    "settings.edit": "admin",
    "audit.read": "admin",
    "audit.export": "admin",
}


class PermissionDenied(ValueError):
    """The acting user's role does not allow the action; the message says which role would.

    A ValueError, so every caller that turns bad input into one clear line (the CLI, the
    pages) shows this one the same way.
    """


@dataclass(frozen=True)
class Actor:
    """Who is acting: a name, a role, the session it came from and how (web, cli, local)."""

    name: str
    role: str
    session: str = ""
    via: str = "local"
    authenticated: bool = False   # True when the name was proven (password or OIDC)

    def can(self, action: str) -> bool:
        return rank(self.role) >= rank(ACTIONS[action])


def rank(role: str) -> int:
    """0 for viewer up to 3 for admin; -1 for an unknown role (which may do nothing)."""
    return ROLES.index(role) if role in ROLES else -1


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def local_actor(settings: AuthSettings | None = None) -> Actor:
    """The person at this machine in `none` mode: every role, under their login name."""
    name = (settings.local_user if settings else "") or _login_name()
    return Actor(name=name, role="admin", session="", via="local", authenticated=False)


def _login_name() -> str:
    try:
        return getpass.getuser() or "local"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "local"


def require(actor: Actor, action: str) -> Actor:
    """Return `actor` when its role allows `action`; raises PermissionDenied otherwise."""
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r}")
    if not actor.can(action):
        need = ACTIONS[action]
        raise PermissionDenied(f"{actor.name} ({actor.role or 'no role'}) may not "
                               f"{_WORDS.get(action, action)}: that needs the {need} role or higher")
    return actor


_WORDS = {
    "view": "view the dashboards", "label": "review items", "queue.create": "create queues",
    "queue.close": "close or reopen queues", "queue.export": "export queues",
    "alert.acknowledge": "acknowledge alerts", "drift.reference": "change the drift reference",
    "registry.edit": "edit the model registry", "users.manage": "manage users",
    "settings.edit": "change settings", "audit.read": "read the audit trail",
    "audit.export": "export the audit trail",
}

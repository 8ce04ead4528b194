"""Access: users and roles, sign-in sessions, the check every write makes, and the audit trail.

    from monitoring.auth import Actor, authorize, PermissionDenied
    actor = Actor("ana", "reviewer", session="s3", via="web", authenticated=True)
    authorize(engine, actor, "queue.create")    # PermissionDenied: that needs lead

Modules: `settings` ([auth] in monitoring.toml, secrets), `roles` (roles, Actor, the action
table), `guard` (resolve the acting user and check), `store` (tables and migrations),
`passwords` (argon2id), `users`, `sessions` (sign-in, expiry, lockout), `oidc` (claims to
roles), `audit` (record and query), `cli` (`python -m monitoring users ...`).
See docs/access.md. Names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AuthSettings": "settings", "MODES": "settings", "ROLES": "settings", "configured": "settings",
    "load_settings": ("settings", "load"), "secret": "settings",
    "ACTIONS": "roles", "Actor": "roles", "PermissionDenied": "roles", "local_actor": "roles",
    "rank": "roles", "require": "roles",
    "authorize": "guard", "resolve": "guard",
    "ensure": "store", "open_auth_db": "store",
    "UserError": "users", "add_user": "users", "disable": "users", "list_users": "users",
    "set_password": "users", "set_role": "users",
    "LoginFailed": "sessions", "Session": "sessions", "login": "sessions", "logout": "sessions",
    "open_session": "sessions", "validate": "sessions",
    "role_for_claims": "oidc",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

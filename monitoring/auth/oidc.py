"""OpenID Connect: from the claims of a verified ID token to a name and a role.

    name, role, why = role_for_claims(engine, claims, settings)

Streamlit's st.login verifies the token and st.user carries its claims; this module only
decides. The role comes from the `role_claim` claim (a string or a list; values that are
role names map to themselves, others through [auth.role_map]; the highest wins), else from
the users table by e-mail (only when the provider does not say the e-mail is unverified),
else `default_role`. A user disabled in the table is refused whatever the claim says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine

from .roles import PermissionDenied, rank
from .settings import ROLES, AuthSettings
from .users import by_email, get_user


def claim_roles(claims: Mapping[str, Any], settings: AuthSettings) -> list[str]:
    """Roles named by the role claim, through role_map; unknown values are ignored."""
    raw = claims.get(settings.role_claim)
    values = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list | tuple) else []
    out = []
    for v in values:
        v = str(v)
        role = settings.role_map.get(v) or (v if v in ROLES else None)
        if role:
            out.append(role)
    return out


def identity(claims: Mapping[str, Any]) -> str:
    """The name recorded for the user: the e-mail, else preferred_username, else sub."""
    for key in ("email", "preferred_username", "sub"):
        v = claims.get(key)
        if isinstance(v, str) and v.strip():
            return v.strip()[:100]
    raise PermissionDenied("the identity provider sent no e-mail, username or subject")


def role_for_claims(engine: Engine, claims: Mapping[str, Any],
                    settings: AuthSettings) -> tuple[str, str, str]:
    """(name, role, source of the role); raises PermissionDenied when they get none."""
    name = identity(claims)
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    verified = claims.get("email_verified", True) is not False
    row = None
    if email and verified:
        row = by_email(engine, email)
    if row is None:
        row = get_user(engine, name)
    if row is not None and row["disabled"]:
        raise PermissionDenied(f"{name} is disabled here; ask an admin")
    roles = claim_roles(claims, settings)
    if roles:
        return (row["name"] if row else name), max(roles, key=rank), f"claim {settings.role_claim}"
    if row is not None:
        return row["name"], row["role"], "users table"
    if settings.default_role:
        return name, settings.default_role, "default_role"
    reason = "" if verified or not email else " (the provider says the e-mail is not verified)"
    raise PermissionDenied(f"{name} has no role here{reason}; ask an admin to add them")

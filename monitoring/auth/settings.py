"""Access settings: the [auth] table of monitoring.toml, every key with its default and help.

    [auth]
    mode = "password"          # "none" (laptop, 127.0.0.1 only), "password" or "oidc"
    session_minutes = 480      # a session ends this long after sign-in ...
    idle_minutes = 60          # ... or after this long without activity
    max_failures = 5           # failed sign-ins in a row before the account locks
    lockout_minutes = 15

    [auth.role_map]            # oidc: claim value -> role (claim values that are role
    "ml-leads" = "lead"        # names map to themselves)

`load(section)` validates the table and returns `AuthSettings`; a mistake raises ConfigError
naming the key (with "did you mean" for a misspelt one). Secrets never live in
monitoring.toml: `secret(name)` reads the environment (MODELWATCH_<NAME>), then the
[modelwatch] table of .streamlit/secrets.toml.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, Setting, register_section

MODES = ("none", "password", "oidc")
ROLES = ("viewer", "reviewer", "lead", "admin")   # each role can do what the ones before it can

SETTINGS: tuple[Setting, ...] = (
    Setting("mode", "none", 'Who may use the app: "none" (one person on this machine, served on 127.0.0.1 only), "password" (users in the database) or "oidc" (an OpenID Connect provider through st.login).'),
    Setting("session_minutes", 480, "A session ends this many minutes after sign-in."),
    Setting("idle_minutes", 60, "A session also ends after this many minutes without activity."),
    Setting("max_failures", 5, "Failed sign-ins in a row that lock an account."),
    Setting("lockout_minutes", 15, "How long a locked account stays locked."),
    Setting("min_password_length", 12, "Shortest password accepted for a new or changed password."),
    Setting("role_claim", "roles", "oidc: the ID-token claim holding the user's role(s), a string or a list."),
    Setting("default_role", "", 'oidc: role of a signed-in user with no role from the claim or the users table ("" refuses them).'),
    Setting("provider", "", "oidc: the provider name under [auth.<provider>] in .streamlit/secrets.toml (\"\" for the single [auth] provider)."),
    Setting("local_user", "", 'none mode: the name recorded for the person at this machine (default: the login name).'),
)
_TABLES = {"role_map": "oidc: a table of claim value = role, for groups whose names are not role names."}


@dataclass(frozen=True)
class AuthSettings:
    mode: str = "none"
    session_minutes: int = 480
    idle_minutes: int = 60
    max_failures: int = 5
    lockout_minutes: int = 15
    min_password_length: int = 12
    role_claim: str = "roles"
    default_role: str = ""
    provider: str = ""
    local_user: str = ""
    role_map: dict[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        """True when people sign in (password or oidc)."""
        return self.mode != "none"


def _unknown(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(sorted(known))})"
    return f"[auth] unknown key {key!r}{hint}"


def load(section: dict[str, Any] | None) -> AuthSettings:
    """Validate the [auth] table; raises ConfigError naming the key."""
    data = dict(section or {})
    known = [s.key for s in SETTINGS] + list(_TABLES)
    for key in data:
        if key not in known:
            raise ConfigError(_unknown(key, known))
    values: dict[str, Any] = {}
    for s in SETTINGS:
        v = data.get(s.key, s.default)
        if isinstance(s.default, int):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"[auth] {s.key} must be a positive whole number, got {v!r}")
        elif not isinstance(v, str):
            raise ConfigError(f"[auth] {s.key} must be text, got {v!r}")
        values[s.key] = v.strip() if isinstance(v, str) else v
    if values["mode"] not in MODES:
        close = difflib.get_close_matches(str(values["mode"]), MODES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"[auth] mode must be one of {', '.join(map(repr, MODES))}, got {values['mode']!r}{hint}")
    if values["default_role"] and values["default_role"] not in ROLES:
        raise ConfigError(f"[auth] default_role must be one of {', '.join(ROLES)} or \"\", got {values['default_role']!r}")
    if values["min_password_length"] < 8:
        raise ConfigError("[auth] min_password_length must be at least 8")
    role_map = data.get("role_map", {}) or {}
    if not isinstance(role_map, dict):
        raise ConfigError("[auth.role_map] must be a table of claim value = role")
    for k, v in role_map.items():
        if v not in ROLES:
            raise ConfigError(f"[auth.role_map] {k!r} = {v!r}: the role must be one of {', '.join(ROLES)}")
    return AuthSettings(**values, role_map={str(k): str(v) for k, v in role_map.items()})


# Declared once: monitoring.config checks [auth] with these keys, then `load`, when a file is read.
register_section("auth", SETTINGS + tuple(Setting(k, {}, h) for k, h in _TABLES.items()),
                 check=load)


def configured() -> AuthSettings:
    """The [auth] settings of the effective configuration (monitoring.toml + environment).

    MODELWATCH_AUTH_MODE overrides the mode, for a server started without editing the file.
    """
    from ..config import load_config

    return from_config(load_config())


def from_config(cfg) -> AuthSettings:
    """The [auth] settings of a loaded `Config` (MODELWATCH_AUTH_MODE overrides the mode)."""
    section = cfg.section("auth")
    mode = os.environ.get("MODELWATCH_AUTH_MODE")
    if mode:
        section["mode"] = mode
    return load(section)


def secret(name: str, secrets_file: str | os.PathLike | None = None) -> str | None:
    """A secret by name: MODELWATCH_<NAME> in the environment, else [modelwatch] <name> in
    .streamlit/secrets.toml (or `secrets_file`). None when neither has it. Never logged."""
    env = os.environ.get(f"MODELWATCH_{name.upper()}")
    if env:
        return env
    path = Path(secrets_file) if secrets_file else Path(".streamlit") / "secrets.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    value = (data.get("modelwatch") or {}).get(name)
    return str(value) if value else None


def loopback_only(address: str | None) -> bool:
    """True when a server bound to `address` (or a client at it) is this machine only:
    127.0.0.0/8, ::1 or "localhost". None or "" (every interface) and 0.0.0.0 are not."""
    import ipaddress

    if not address:
        return False
    a = address.strip().strip("[]")
    if a.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(a)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback

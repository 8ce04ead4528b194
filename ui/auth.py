"""Streamlit glue for access: sign-in per [auth] mode, the sidebar's identity block, the
pages a role may open, and the acting user every write is given.

    pages = gate(pages)        # app.py, before st.navigation: may stop at a sign-in form
    actor()                    # the Actor to pass to monitoring's write functions
    can("queue.create")        # hide what the role may not do (monitoring/ checks anyway)

Modes: `none` (one person at this machine; refused unless served on a loopback address),
`password` (a sign-in form; users in the database), `oidc` (Streamlit's st.login / st.user;
roles from a claim or the users table). The session token lives in st.session_state only.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from sqlalchemy.engine import Engine

from monitoring.auth.roles import ACTIONS, Actor, PermissionDenied, local_actor
from monitoring.auth.settings import AuthSettings, configured, loopback_only
from monitoring.auth.store import open_auth_db
from monitoring.config import ConfigError, load_config
from monitoring.database import DatabaseError, safe_url
from monitoring.fmt import md

# `monitoring.auth.sessions` and `.oidc` (argon2 with a reference hash made on import: 0.3 s)
# are imported where a mode that signs people in uses them: `none` mode never pays for them.

__all__ = ["PermissionDenied", "acting", "actor", "can", "denied", "engine", "gate", "require_page",
           "settings"]

TOKEN = "auth_token"
ACTOR = "auth_actor"
# url_path of a page -> the action needed to see it at all (the rest: "view").
PAGE_ACTIONS = {"review": "label", "audit": "audit.read"}


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    return open_auth_db(url)


def engine() -> Engine:
    url = load_config().database_url
    try:
        return _engine(url)
    except DatabaseError as exc:
        st.error(f"The user database is unavailable: {exc}")
        st.info(f"Database URL: {md(safe_url(url))}.")
        st.stop()


CONFIG_ERROR = "auth_config_error"


def settings() -> AuthSettings | None:
    """The [auth] settings; None (after one sentence) when the configuration is invalid:
    no one is signed in then, and every page stops at its first line (fail closed)."""
    try:
        s = configured()
    except ConfigError as exc:
        st.error(f"The configuration is invalid: {md(str(exc), limit=600)}")
        st.session_state[CONFIG_ERROR] = True
        return None
    st.session_state.pop(CONFIG_ERROR, None)
    return s


def actor() -> Actor | None:
    """The signed-in user (or the local user in `none` mode), as set by gate()."""
    return st.session_state.get(ACTOR)


def acting() -> Actor | None:
    """The acting user for a write, checked again now: button callbacks run before app.py's
    gate, so a session that ended since the last run must not write once more."""
    a = actor()
    if a is None or not a.authenticated:
        return a
    s = settings()
    if s is None:
        raise PermissionDenied("the configuration is invalid; nothing was recorded")
    from monitoring.auth import sessions

    who, why = sessions.validate(engine(), st.session_state.get(TOKEN), settings=s,
                                 role=a.role if s.mode == "oidc" else None)
    if who is None:
        raise PermissionDenied(f"{why}; nothing was recorded")
    st.session_state[ACTOR] = who
    return who


def can(action: str) -> bool:
    a = actor()
    return a is not None and a.can(action)


def gate(pages: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Sign the user in, draw who they are in the sidebar and return the navigation with
    only the pages their role may open (Audit for admins). Not signed in, the navigation is
    the sign-in page alone, so every URL leads there."""
    s = settings()
    if s is None:   # said why above; the pages stay registered and each stops at once
        st.session_state.pop(ACTOR, None)
        return pages
    if s.mode == "none":
        who, page = _local(s)
    elif s.mode == "password":
        who, page = _password(s)
    else:
        who, page = _oidc(s)
    if who is None:
        st.session_state.pop(ACTOR, None)
        return {"": [st.Page(page, title="Sign in", url_path="signin", default=True,
                             icon=":material/login:")]}
    st.session_state[ACTOR] = who
    _identity(s, who)
    allowed: dict[str, list[Any]] = {}
    for section, items in pages.items():
        keep = [p for p in items if who.can(PAGE_ACTIONS.get(p.url_path, "view"))]
        if keep:
            allowed[section] = keep
    if who.can("audit.read"):
        allowed["Admin"] = [st.Page("pages/audit.py", title="Audit", icon=":material/policy:")]
    return allowed


# -- none --------------------------------------------------------------------------------------

def _local(s: AuthSettings):
    from streamlit import config

    address = config.get_option("server.address")
    # AppTest runs no server (no address): nothing listens, nothing to refuse.
    if not (config.get_option("global.appTest") and not address) and not loopback_only(address):
        return None, lambda: _refuse(
            f"Refusing to serve: [auth] mode is \"none\" (no sign-in), but the server listens on "
            f"{md(address or 'every network interface')}, so anyone who reaches the port could "
            "label, acknowledge and change settings. Serve on 127.0.0.1 (`--server.address "
            "127.0.0.1`, the default in .streamlit/config.toml) or turn sign-in on in "
            "monitoring.toml ([auth] mode = \"password\" or \"oidc\").")
    ip = _client_ip()
    if ip and not loopback_only(ip):
        return None, lambda: _refuse(
            "Refusing this request: without sign-in ([auth] mode \"none\") modelwatch answers "
            "only this machine, and this request came from elsewhere.")
    return local_actor(s), None


def _refuse(text: str) -> None:
    st.title("modelwatch")
    st.error(text)


def _client_ip() -> str | None:
    try:
        ip = st.context.ip_address
    except (AttributeError, RuntimeError):
        return None
    return ip if isinstance(ip, str) else None   # AppTest hands out a mock


# -- password ----------------------------------------------------------------------------------

def _password(s: AuthSettings):
    from monitoring.auth import sessions

    eng = engine()
    who, reason = sessions.validate(eng, st.session_state.get(TOKEN), settings=s)
    if who is not None:
        return who, None
    if st.session_state.pop(TOKEN, None) and reason:
        st.session_state["auth_notice"] = reason
    return None, lambda: _login_form(eng, s)


def _login_form(eng: Engine, s: AuthSettings) -> None:
    from monitoring.auth import sessions
    from monitoring.auth.users import has_admin

    st.title("Sign in to modelwatch")
    notice = st.session_state.pop("auth_notice", None)
    if notice:
        st.info(notice)
    if not has_admin(eng):
        st.warning("No users yet. On the server, add the first admin with "
                   "`python -m monitoring users add NAME --role admin`, then sign in here.")
    with st.form("login", clear_on_submit=True):
        name = st.text_input("Name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            session = sessions.login(eng, name, password, settings=s, client=_client_ip())
        except sessions.LoginFailed as exc:
            st.error(str(exc))
            return
        st.session_state[TOKEN] = session.token
        st.rerun()


# -- oidc --------------------------------------------------------------------------------------

def _oidc_page(s: AuthSettings, refused: str | None = None) -> None:
    st.title("Sign in to modelwatch")
    notice = st.session_state.pop("auth_notice", None)
    if notice:
        st.info(notice)
    if refused:
        st.error(refused)
        st.button("Sign out", key="oidc_logout", on_click=st.logout)
        return
    st.button("Sign in", type="primary", key="oidc_login", on_click=st.login,
              args=(s.provider,) if s.provider else ())


def _oidc_configured() -> bool:
    try:
        return st.secrets.load_if_toml_exists() and "auth" in st.secrets
    except FileNotFoundError:   # StreamlitSecretNotFoundError: no or unreadable secrets file
        return False


def _oidc(s: AuthSettings):
    from monitoring.auth import oidc, sessions

    if not _oidc_configured():
        return None, lambda: _refuse(
            "[auth] mode is \"oidc\", but .streamlit/secrets.toml has no [auth] table for "
            "Streamlit's sign-in (redirect_uri, cookie_secret, client_id, client_secret, "
            "server_metadata_url); see docs/access.md.")
    eng = engine()
    if not st.user.to_dict().get("is_logged_in"):
        return None, lambda: _oidc_page(s)
    claims = st.user.to_dict()
    try:
        name, role, _source = oidc.role_for_claims(eng, claims, s)
    except PermissionDenied as exc:
        refused = str(exc)
        return None, lambda: _oidc_page(s, refused)
    token = st.session_state.get(TOKEN)
    if token is None:
        token = sessions.open_session(eng, name, role, via="oidc", settings=s, client=_client_ip(),
                                      detail={"role_from": _source}).token
        st.session_state[TOKEN] = token
    who, reason = sessions.validate(eng, token, settings=s, role=role)
    if who is None:  # expired or idle: the provider's cookie is not enough, sign in again
        st.session_state.pop(TOKEN, None)
        st.session_state["auth_notice"] = reason
        st.logout()
        st.stop()
    return who, None


# -- sidebar -----------------------------------------------------------------------------------

def _identity(s: AuthSettings, who: Actor) -> None:
    sb = st.sidebar
    if s.mode == "none":
        sb.caption(f"No sign-in (laptop mode): served on this machine only; changes are recorded "
                   f"as {md(who.name)}.")
        return
    sb.caption(f"Signed in as **{md(who.name)}** · {who.role}")
    sb.button("Sign out", key="logout", icon=":material/logout:", on_click=_logout, args=(s,))


def _logout(s: AuthSettings) -> None:
    from monitoring.auth import sessions

    sessions.logout(engine(), st.session_state.pop(TOKEN, None))
    st.session_state.pop(ACTOR, None)
    st.session_state["auth_notice"] = "You are signed out."
    if s.mode == "oidc":
        st.logout()


def require_page(action: str) -> Actor:
    """Stop the page (after one sentence) unless the signed-in role may `action`. The
    navigation already hides such pages; this covers a page script run on its own."""
    a = actor()
    if a is None:
        s = settings()
        if s is not None and s.mode == "none":
            # No sign-in to wait for: the local user, after the same address check as gate().
            a, refusal = _local(s)
            if a is None:
                refusal()
                st.stop()
            st.session_state[ACTOR] = a
        else:
            if s is not None:
                st.error("Sign in first: reload the page.")
            st.stop()
    if not a.can(action):
        st.error(denied(action))
        st.stop()
    return a


def denied(action: str) -> str:
    """One sentence for a control the role may not use."""
    a = actor()
    return (f"Your role ({a.role if a else 'none'}) cannot do this; it needs "
            f"{ACTIONS[action]} or higher.")

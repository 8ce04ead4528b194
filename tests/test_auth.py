"""Access core: [auth] settings, the role table, argon2id passwords, users, sign-in with
lockout and session expiry (a clock passed in, no sleeps), the audit trail and its CSV.

Database tests run on a SQLite file and on the PostgreSQL server the suite starts.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import argon2
import polars as pl
import pytest

from monitoring.auth import audit, passwords, sessions, users
from monitoring.auth.passwords import hash_password, verify
from monitoring.auth.roles import ACTIONS, Actor, PermissionDenied, require
from monitoring.auth.settings import ROLES, load, loopback_only, secret
from monitoring.auth.store import open_auth_db
from monitoring.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PW = "correct horse battery"
ADMIN = Actor("root", "admin", session="s0", via="web", authenticated=True)


# -- settings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("section, match", [
    ({"mode": "pasword"}, "did you mean 'password'"),
    ({"mode": "ldap"}, "mode must be one of"),
    ({"sesion_minutes": 30}, "unknown key 'sesion_minutes'; did you mean 'session_minutes'"),
    ({"max_failure": 3}, "did you mean 'max_failures'"),
    ({"zzz": 1}, r"unknown key 'zzz' \(known:"),
    ({"session_minutes": 0}, "session_minutes must be a positive whole number"),
    ({"lockout_minutes": True}, "lockout_minutes must be a positive whole number"),
    ({"max_failures": "5"}, "max_failures must be a positive whole number"),
    ({"default_role": "owner"}, "default_role must be one of"),
    ({"min_password_length": 6}, "at least 8"),
    ({"role_map": {"ml-leads": "boss"}}, r"\[auth.role_map\] 'ml-leads' = 'boss'"),
    ({"role_map": "lead"}, "must be a table"),
    ({"role_claim": 3}, "role_claim must be text"),
])
def test_bad_auth_settings_are_one_clear_sentence(section, match):
    with pytest.raises(ConfigError, match=match):
        load(section)


def test_auth_settings_defaults_and_values():
    s = load(None)
    assert (s.mode, s.enabled, s.session_minutes, s.max_failures, s.lockout_minutes) == ("none", False, 480, 5, 15)
    s = load({"mode": "oidc", "role_claim": "groups", "role_map": {"ml-leads": "lead"}})
    assert s.enabled and s.role_claim == "groups" and s.role_map == {"ml-leads": "lead"}


def test_auth_section_comes_from_monitoring_toml(tmp_path, monkeypatch):
    from monitoring.auth.settings import configured

    cfg = tmp_path / "monitoring.toml"
    cfg.write_text('[auth]\nmode = "password"\nmax_failures = 3\n')
    monkeypatch.setenv("MONITORING_CONFIG", str(cfg))
    s = configured()
    assert (s.mode, s.max_failures) == ("password", 3)
    monkeypatch.setenv("MODELWATCH_AUTH_MODE", "none")
    assert configured().mode == "none"


@pytest.mark.parametrize("address, local", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("::ffff:127.0.0.1", True), ("0.0.0.0", False), ("", False), (None, False), ("::", False),
    ("192.168.1.20", False), ("10.0.0.1", False), ("example.org", False),
])
def test_loopback_addresses(address, local):
    assert loopback_only(address) is local


def test_secrets_come_from_the_environment_then_secrets_toml(tmp_path, monkeypatch):
    f = tmp_path / "secrets.toml"
    f.write_text('[modelwatch]\npassword = "from-file"\n')
    monkeypatch.delenv("MODELWATCH_PASSWORD", raising=False)
    assert secret("password", f) == "from-file"
    monkeypatch.setenv("MODELWATCH_PASSWORD", "from-env")
    assert secret("password", f) == "from-env"
    assert secret("nothing", tmp_path / "missing.toml") is None


# -- roles -------------------------------------------------------------------------------------

# The issue's table, written out by hand: what each role may do.
MAY = {
    "viewer": {"view"},
    "reviewer": {"view", "label"},
    "lead": {"view", "label", "queue.create", "queue.close", "queue.export", "alert.acknowledge",
             "drift.reference", "registry.edit"},
    "admin": set(ACTIONS),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_role_may_do_exactly_what_the_issue_says(role, action):
    actor = Actor("x", role)
    if action in MAY[role]:
        assert require(actor, action) is actor
    else:
        with pytest.raises(PermissionDenied, match=f"needs the {ACTIONS[action]} role"):
            require(actor, action)


def test_an_unknown_role_may_do_nothing():
    with pytest.raises(PermissionDenied):
        require(Actor("x", "owner"), "view")


# -- passwords ---------------------------------------------------------------------------------

def test_passwords_are_salted_argon2id(default_hashing):
    a, b = hash_password(PW), hash_password(PW)
    assert a.startswith("$argon2id$") and "m=65536" in a and a != b   # salted
    assert verify(a, PW) and verify(b, PW)
    assert not verify(a, PW + "!") and not verify(None, PW) and not verify("garbage", PW)


def test_the_product_hashes_at_rfc_9106_cost_and_cheap_hashes_still_verify():
    # A fresh interpreter (as the app and the CLI are) hashes with the default, not the
    # suite's cheap parameters (tests/conftest.py).
    code = "from monitoring.auth.passwords import hash_password; print(hash_password('a long enough pw'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify(out.stdout.strip(), "a long enough pw") and not verify(out.stdout.strip(), PW)
    assert passwords.DEFAULT.memory_cost == 65536 and passwords.DEFAULT.time_cost == 3
    # hashes made cheaply verify, and read as weaker than the default
    cheap = hash_password(PW)
    assert "m=8,t=1,p=1" in cheap and verify(cheap, PW)
    passwords.use(passwords.DEFAULT)
    try:
        assert passwords.needs_rehash(cheap) and verify(cheap, PW)
    finally:
        passwords.use(argon2.profiles.CHEAPEST)


# -- users -------------------------------------------------------------------------------------

@pytest.fixture
def engine(any_db_url):
    e = open_auth_db(any_db_url)
    yield e
    e.dispose()


SETTINGS = load({"mode": "password", "max_failures": 3, "lockout_minutes": 10,
                 "session_minutes": 60, "idle_minutes": 20})


def _team(engine):
    users.add_user(engine, "root", "admin", password=PW, bootstrap=True, settings=SETTINGS)
    for name, role in (("vic", "viewer"), ("ana", "reviewer"), ("lea", "lead")):
        users.add_user(engine, name, role, password=PW, email=f"{name}@example.org",
                       actor=ADMIN, settings=SETTINGS)


def test_users_are_added_changed_disabled_and_listed_without_hashes(engine):
    _team(engine)
    listed = users.list_users(engine)
    assert [(u["name"], u["role"]) for u in listed] == [("ana", "reviewer"), ("lea", "lead"),
                                                        ("root", "admin"), ("vic", "viewer")]
    assert all("password_hash" not in u and u["has_password"] for u in listed)
    users.set_role(engine, "ana", "lead", actor=ADMIN, settings=SETTINGS)
    users.disable(engine, "vic", actor=ADMIN, settings=SETTINGS)
    got = {u["name"]: u for u in users.list_users(engine)}
    assert got["ana"]["role"] == "lead" and got["vic"]["disabled"]
    trail = audit.query(engine, action="users")
    assert trail["action"].to_list() == ["users.disable", "users.set_role"] + ["users.add"] * 4
    assert json.loads(trail["detail"][1]) == {"from": "reviewer", "to": "lead"}


@pytest.mark.parametrize("call, match", [
    (lambda e: users.add_user(e, "ana", "reviewer", actor=ADMIN, settings=SETTINGS), "already"),
    (lambda e: users.add_user(e, "x", "owner", actor=ADMIN, settings=SETTINGS), "unknown role"),
    (lambda e: users.add_user(e, " ", "viewer", actor=ADMIN, settings=SETTINGS), "needs a name"),
    (lambda e: users.add_user(e, "x", "viewer", password="short", actor=ADMIN, settings=SETTINGS),
     "at least 12 characters"),
    (lambda e: users.add_user(e, "x", "viewer", email="ana@example.org", actor=ADMIN, settings=SETTINGS),
     "another user has the e-mail"),
    (lambda e: users.add_user(e, "x", "viewer", email="not-mail", actor=ADMIN, settings=SETTINGS),
     "not an e-mail"),
    (lambda e: users.set_role(e, "nobody", "lead", actor=ADMIN, settings=SETTINGS), "no user 'nobody'"),
    (lambda e: users.set_role(e, "root", "lead", actor=ADMIN, settings=SETTINGS), "last admin"),
    (lambda e: users.disable(e, "root", actor=ADMIN, settings=SETTINGS), "last admin"),
    (lambda e: users.add_user(e, "y", "admin", bootstrap=True, settings=SETTINGS), "has an admin already"),
    (lambda e: users.set_role(e, "ana", "admin", actor=Actor("lea", "lead"), settings=SETTINGS),
     "may not manage users"),
    (lambda e: users.set_role(e, "ana", "admin", settings=SETTINGS), "sign in first"),
])
def test_bad_user_changes_are_refused_and_change_nothing(engine, call, match):
    _team(engine)
    before = users.list_users(engine)
    with pytest.raises(ValueError, match=match):
        call(engine)
    assert users.list_users(engine) == before


# -- sign-in, lockout, expiry ------------------------------------------------------------------

def test_sign_in_and_session_expiry_by_the_clock(engine):
    _team(engine)
    s = sessions.login(engine, "ana", PW, settings=SETTINGS, now=T0)
    assert (s.actor.name, s.actor.role, s.actor.authenticated) == ("ana", "reviewer", True)
    # idle_minutes = 20: used every 19 minutes it lives until session_minutes = 60 after sign-in.
    for minutes in (19, 38, 57):
        actor, _ = sessions.validate(engine, s.token, settings=SETTINGS, now=T0 + timedelta(minutes=minutes))
        assert actor == s.actor
    actor, why = sessions.validate(engine, s.token, settings=SETTINGS, now=T0 + timedelta(minutes=60))
    assert actor is None and "expired" in why
    # ended for good: an earlier clock does not bring it back
    assert sessions.validate(engine, s.token, settings=SETTINGS, now=T0)[0] is None


def test_an_idle_session_ends(engine):
    _team(engine)
    s = sessions.login(engine, "ana", PW, settings=SETTINGS, now=T0)
    assert sessions.validate(engine, s.token, settings=SETTINGS, now=T0 + timedelta(minutes=19, seconds=59))[0]
    actor, why = sessions.validate(engine, s.token, settings=SETTINGS, now=T0 + timedelta(minutes=40))
    assert actor is None and "without activity" in why


def test_role_changes_and_disabling_apply_to_open_sessions(engine):
    _team(engine)
    s = sessions.login(engine, "ana", PW, settings=SETTINGS, now=T0)
    users.set_role(engine, "ana", "viewer", actor=ADMIN, settings=SETTINGS)
    assert sessions.validate(engine, s.token, settings=SETTINGS, now=T0)[0].role == "viewer"
    users.disable(engine, "ana", actor=ADMIN, settings=SETTINGS)
    assert sessions.validate(engine, s.token, settings=SETTINGS, now=T0)[0] is None


def test_logout_ends_the_session(engine):
    _team(engine)
    s = sessions.login(engine, "ana", PW, settings=SETTINGS, now=T0)
    assert sessions.logout(engine, s.token, now=T0) is True
    assert sessions.validate(engine, s.token, settings=SETTINGS, now=T0) == (None, "signed out")
    assert sessions.logout(engine, s.token, now=T0) is False


def test_lockout_after_repeated_failures_then_unlock_by_the_clock(engine):
    _team(engine)
    for i in range(SETTINGS.max_failures):
        with pytest.raises(sessions.LoginFailed, match="wrong name or password"):
            sessions.login(engine, "ana", f"guess {i}", settings=SETTINGS, now=T0 + timedelta(seconds=i))
    # locked: even the right password is refused until lockout_minutes have passed
    with pytest.raises(sessions.LoginFailed, match="locked"):
        sessions.login(engine, "ana", PW, settings=SETTINGS, now=T0 + timedelta(minutes=9))
    s = sessions.login(engine, "ana", PW, settings=SETTINGS, now=T0 + timedelta(minutes=11))
    assert s.actor.name == "ana"
    outcomes = audit.query(engine, actor="ana", action="auth.login")["outcome"].to_list()[::-1]
    assert outcomes == ["failed"] * 3 + ["denied", "ok"]


def test_a_success_resets_the_failure_count(engine):
    _team(engine)
    for _ in range(2):
        for _i in range(SETTINGS.max_failures - 1):
            with pytest.raises(sessions.LoginFailed):
                sessions.login(engine, "ana", "nope nope nope", settings=SETTINGS, now=T0)
        sessions.login(engine, "ana", PW, settings=SETTINGS, now=T0)   # never locked


@pytest.mark.parametrize("name, password", [("nobody", PW), ("vic", PW), ("ana", ""), ("", PW)])
def test_unknown_disabled_or_wrong_sign_ins_say_the_same(engine, name, password):
    _team(engine)
    users.disable(engine, "vic", actor=ADMIN, settings=SETTINGS)
    with pytest.raises(sessions.LoginFailed) as exc:
        sessions.login(engine, name, password, settings=SETTINGS, now=T0)
    assert str(exc.value) == "wrong name or password"


# -- audit -------------------------------------------------------------------------------------

def test_audit_filters(engine):
    a, b = Actor("ana", "reviewer", "s1", "web", True), Actor("lea", "lead", "s2", "cli", True)
    for i, (who, action) in enumerate([(a, "label.answer"), (a, "label.undo"), (b, "queue.create"),
                                       (b, "queue.close"), (a, "label.answer")]):
        audit.record_alone(engine, who, action, f"t{i}", {"i": i}, at=T0 + timedelta(hours=i))
    q = audit.query(engine)
    assert q["target"].to_list() == ["t4", "t3", "t2", "t1", "t0"]
    assert audit.query(engine, actor="ana")["target"].to_list() == ["t4", "t1", "t0"]
    assert audit.query(engine, action="queue")["target"].to_list() == ["t3", "t2"]
    assert audit.query(engine, action="label.answer")["target"].to_list() == ["t4", "t0"]
    assert audit.query(engine, action="label.ans")["target"].to_list() == []   # prefix of a word only
    assert audit.query(engine, start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=3))["target"].to_list() == ["t2", "t1"]
    assert audit.query(engine, session="s2")["via"].to_list() == ["cli", "cli"]
    assert audit.distinct(engine, "actor") == ["ana", "lea"]


@pytest.mark.parametrize("cell, written", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1+2", "'+1+2"), ("-3", "'-3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("plain", "plain"), ("a=b", "a=b"), ("", ""),
])
def test_csv_export_neutralises_formula_cells(engine, cell, written):
    audit.record_alone(engine, Actor(cell or "x", "viewer"), "label.answer", cell, {}, at=T0)
    rows = list(csv.DictReader(io.StringIO(audit.csv_bytes(audit.query(engine)).decode())))
    assert rows[0]["target"] == written
    if cell:
        assert rows[0]["actor"] == written
    assert rows[0]["at"] == "2026-11-02T09:00:00Z"


def test_the_audit_trail_refuses_secret_keys(engine):
    with pytest.raises(ValueError, match="may not hold password"):
        audit.record_alone(engine, ADMIN, "users.add", "x", {"password": PW})


def test_no_secret_in_the_database_the_trail_its_csv_or_the_logs(engine, caplog, any_db_url):
    """Passwords and session tokens appear nowhere: not in any table, audit row, CSV export,
    log line or error message, even after failures and a lockout."""
    import sqlalchemy as sa

    caplog.set_level(logging.DEBUG)
    _team(engine)
    tokens = []
    for i in range(4):
        try:
            sessions.login(engine, "lea", f"wrong-password-{i}", settings=SETTINGS, now=T0)
        except sessions.LoginFailed as exc:
            assert "wrong-password" not in str(exc)
    users.disable(engine, "lea", actor=ADMIN, settings=SETTINGS, enabled=True)
    s = sessions.login(engine, "lea", PW, settings=SETTINGS, now=T0)
    tokens.append(s.token)
    users.set_password(engine, "lea", "another long password", actor=ADMIN, settings=SETTINGS)
    secrets_ = [PW, "another long password", *tokens] + [f"wrong-password-{i}" for i in range(4)]
    dump = []
    with engine.connect() as conn:
        for table in ("auth_users", "auth_sessions", "auth_audit"):
            dump += [repr(tuple(r)) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]
    text = "\n".join(dump) + audit.csv_bytes(audit.query(engine)).decode() + caplog.text
    for secret_ in secrets_:
        assert secret_ not in text
    assert pl.Series(dump).str.contains(r"\$argon2id\$").any()   # only hashes are kept

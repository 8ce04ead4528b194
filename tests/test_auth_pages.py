"""Every page under every role, in-process (AppTest), with [auth] mode = "password": the
app asks for a sign-in first; a viewer cannot reach Review's writes; a reviewer labels under
their own name but cannot create, close or export queues; leads can; only admins reach the
Audit page; sign-out, expiry and lockout through the form; the none-mode binding check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from monitoring.auth import audit, users
from monitoring.auth.roles import Actor
from monitoring.auth.settings import ROLES, load
from monitoring.auth.store import open_auth_db
from tests.test_labelling_pages import make_queue

PW = "a long enough password"
S = load({"mode": "password", "max_failures": 3})
PAGES = ["pages/overview.py", "pages/latency.py", "pages/errors.py", "pages/throughput.py",
         "pages/review.py", "pages/queues.py", "pages/drift.py", "pages/summary.py", "pages/alerts.py",
         "pages/audit.py"]
# Pages a role may not open at all (not in its navigation); everything else it may read.
HIDDEN = {"viewer": {"pages/review.py", "pages/audit.py"}, "reviewer": {"pages/audit.py"},
          "lead": {"pages/audit.py"}, "admin": set()}


@pytest.fixture
def team(tmp_path, generated_logs):
    """An app database with one user per role and one open queue; returns its URL."""
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    e = open_auth_db(url)
    users.add_user(e, "root", "admin", password=PW, bootstrap=True, settings=S)
    for name, role in (("vic", "viewer"), ("ana", "reviewer"), ("lea", "lead")):
        users.add_user(e, name, role, password=PW, actor=Actor("root", "admin"), settings=S)
    e.dispose()
    make_queue(generated_logs, url, size=6)
    return url


NAMES = {"viewer": "vic", "reviewer": "ana", "lead": "lea", "admin": "root"}


def sign_in(at, name: str, password: str = PW):
    at.text_input(key="login_name").set_value(name)
    at.text_input(key="login_password").set_value(password)
    at.button(key="FormSubmitter:login-Sign in").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def main(at):
    """Run app.py itself. AppTest runs a page file directly once pages/ files are known
    (its legacy pages mode); the server runs app.py, and so its sign-in gate, every time."""
    at._page_hash = at._finished_page_script_hash = ""   # "": the main script (AppTest internals)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def app(app_env, logs, url, **env):
    return app_env(logs, db_url=url, MODELWATCH_AUTH_MODE="password", **env)


def test_a_fresh_app_asks_for_a_sign_in_and_shows_nothing_else(app_env, generated_logs, tmp_path):
    at = app(app_env, generated_logs, f"sqlite:///{tmp_path / 'empty.sqlite'}")
    at.run()
    assert [t.value for t in at.title] == ["Sign in to modelwatch"]
    assert "users add NAME --role admin" in at.warning[0].value     # how to make the first admin
    assert not at.metric and not at.dataframe
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/overview.py")


@pytest.mark.parametrize("role", ROLES)
def test_every_page_under_every_role(app_env, generated_logs, team, role):
    at = app(app_env, generated_logs, team)
    at.run()
    sign_in(at, NAMES[role])
    assert f"Signed in as **{NAMES[role]}** · {role}" in [c.value for c in at.sidebar.caption]
    # The navigation the role is given holds no hidden page.
    for page in HIDDEN[role]:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)
    for page in [p for p in PAGES if p not in HIDDEN[role]]:
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
        keys = {b.key for b in at.button}
        infos = " ".join(i.value for i in at.info)
        if page == "pages/review.py":
            assert {"answer_correct", "skip", "undo"} <= keys
            assert not [t for t in at.text_input if t.key == "reviewer_input"]   # no typed names
            assert f"Reviewing as **{NAMES[role]}**" in " ".join(c.value for c in at.caption)
        if page == "pages/queues.py":
            may = role in ("lead", "admin")
            assert ("q_create" in keys) is may and ("close_queue" in keys) is may
            assert ("cannot do this; it needs lead" in infos) is not may
        if page == "pages/alerts.py":
            assert bool(at.get("form")) is (role in ("lead", "admin"))
        if page == "pages/audit.py":
            assert at.title[0].value == "Audit" and at.dataframe
    # Run on its own (as AppTest does once pages are registered), a hidden page still
    # refuses, and shows none of its controls.
    for page in HIDDEN[role]:
        at.switch_page(page)
        at.run()
        assert "cannot do this" in at.error[0].value
        assert not ({b.key for b in at.button} & {"answer_correct", "skip", "undo", "audit_csv"})


def test_a_reviewer_labels_as_themselves_and_the_trail_says_so(app_env, generated_logs, team):
    at = app(app_env, generated_logs, team)
    at.run()
    sign_in(at, "ana")
    at.switch_page("pages/review.py")
    at.run()
    at.button(key="answer_correct").click()
    at.run()
    assert not at.exception
    e = open_auth_db(team)
    trail = audit.query(e, action="label")
    assert trail["actor"].to_list() == ["ana"] and trail["session"][0].startswith("s")
    with e.connect() as conn:
        assert conn.execute(sa.text("SELECT reviewer FROM labelling_events")).scalars().all() == ["ana"]
    e.dispose()


def test_sign_out_and_session_expiry(app_env, generated_logs, team):
    at = app(app_env, generated_logs, team)
    at.run()
    sign_in(at, "lea")
    at.sidebar.button(key="logout").click()
    at.run()
    assert "Sign in first" in at.error[0].value and not at.metric   # the page script alone
    main(at)
    assert at.title[0].value == "Sign in to modelwatch" and "signed out" in at.info[0].value
    sign_in(at, "lea")
    assert at.title[0].value == "Overview"
    # The session has been idle past idle_minutes: the next run asks for a sign-in again.
    e = open_auth_db(team)
    with e.begin() as conn:
        conn.execute(sa.text("UPDATE auth_sessions SET last_seen_at = :t WHERE ended_at IS NULL"),
                     {"t": (datetime.now(UTC) - timedelta(hours=2)).replace(tzinfo=None)})
    e.dispose()
    main(at)
    assert at.title[0].value == "Sign in to modelwatch"
    assert "without activity" in at.info[0].value


def test_the_form_locks_an_account_after_repeated_failures(app_env, generated_logs, team):
    at = app(app_env, generated_logs, team, MONITORING_CONFIG=_cfg(team))
    at.run()
    for _ in range(3):
        sign_in(at, "ana", "not the password")
        assert at.error[0].value == "wrong name or password"
    sign_in(at, "ana")
    assert "locked" in at.error[0].value and at.title[0].value == "Sign in to modelwatch"
    assert "not the password" not in " ".join(str(x.value) for x in [*at.error, *at.info, *at.text_input])


def _cfg(url: str) -> str:
    from pathlib import Path

    path = Path(url.removeprefix("sqlite:///")).with_name("monitoring.toml")
    path.write_text('[auth]\nmode = "password"\nmax_failures = 3\n')
    return str(path)


def test_none_mode_says_so_and_refuses_a_public_address(app_env, sample_logs):
    from streamlit import config

    at = app_env(sample_logs)
    at.run()
    assert any("No sign-in (laptop mode)" in c.value for c in at.sidebar.caption)
    assert "pages/audit.py" in {p for p in PAGES}   # the local user is admin: Audit is there
    at.switch_page("pages/audit.py")
    at.run()
    assert at.title[0].value == "Audit"
    old = config.get_option("server.address")
    try:
        config.set_option("server.address", "0.0.0.0")
        at = app_env(sample_logs)
        at.run()
        assert "Refusing to serve" in at.error[0].value and not at.metric
    finally:
        config.set_option("server.address", old)


@pytest.mark.parametrize("change", ["expired", "demoted"])
def test_a_click_after_the_session_ended_or_the_role_changed_records_nothing(app_env, generated_logs,
                                                                            team, change):
    """Button callbacks run before app.py's gate: the write checks the session again itself."""
    at = app(app_env, generated_logs, team)
    at.run()
    sign_in(at, "ana")
    at.switch_page("pages/review.py")
    at.run()
    e = open_auth_db(team)
    if change == "expired":
        with e.begin() as conn:
            conn.execute(sa.text("UPDATE auth_sessions SET last_seen_at = :t WHERE ended_at IS NULL"),
                         {"t": (datetime.now(UTC) - timedelta(hours=2)).replace(tzinfo=None)})
    else:
        users.set_role(e, "ana", "viewer", actor=Actor("root", "admin"), settings=S)
    at.button(key="answer_correct").click()
    at.run()
    assert not at.exception
    with e.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM labelling_events")).scalar_one() == 0
    trail = audit.query(e, action="label")
    e.dispose()
    assert trail["outcome"].to_list() == ([] if change == "expired" else ["denied"])
    warning = " ".join(w.value for w in at.warning) + " ".join(x.value for x in at.error)
    assert ("sign in again" if change == "expired" else "it needs reviewer or higher") in warning


def test_oidc_mode_without_a_provider_says_what_to_configure(app_env, sample_logs, tmp_path):
    at = app_env(sample_logs, MODELWATCH_AUTH_MODE="oidc")
    at.secrets["modelwatch"] = {"note": "secrets without an [auth] table"}   # not the developer's own
    at.run()
    assert not at.exception
    assert "has no [auth] table" in at.error[0].value and not at.metric

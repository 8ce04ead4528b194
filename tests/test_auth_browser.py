"""A browser journey with [auth] mode = "password": sign in, label, sign out.

`streamlit run` on 127.0.0.1 driven by headless Chromium (Playwright). The answer lands in
the database under the signed-in user, with no name typed, and on the audit trail."""

from __future__ import annotations

import pytest

from monitoring.auth import audit, users
from monitoring.auth.roles import Actor
from monitoring.auth.settings import load
from monitoring.auth.store import open_auth_db
from monitoring.labelling import db, results
from tests.test_labelling_browser import NEXT_ITEM, create, shown

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
PW = "a long enough password"


def test_sign_in_label_and_sign_out(streamlit_server, browser, generated_logs, tmp_path):
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"   # the fixture's server database
    e = open_auth_db(url)
    s = load({"mode": "password"})
    users.add_user(e, "root", "admin", password=PW, bootstrap=True, settings=s)
    users.add_user(e, "ana", "reviewer", password=PW, actor=Actor("root", "admin"), settings=s)
    q = create(generated_logs, url, 5)
    base = streamlit_server(MONITORING_LOGS=generated_logs, MODELWATCH_AUTH_MODE="password")

    ctx = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = ctx.new_page()
    page.goto(base + "/review", wait_until="domcontentloaded")   # a deep link still asks first
    page.get_by_role("heading", name="Sign in to modelwatch").wait_for(timeout=60_000)
    page.get_by_role("textbox", name="Name").fill("ana")
    page.get_by_role("textbox", name="Password").fill("not it at all")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("wrong name or password").wait_for(timeout=60_000)
    page.get_by_role("textbox", name="Name").fill("ana")
    page.get_by_role("textbox", name="Password").fill(PW)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for(timeout=60_000)

    page.locator("[data-testid=stSidebarNav]").get_by_text("Review").click()
    page.get_by_text("Reviewing as").wait_for(timeout=60_000)
    assert page.get_by_role("textbox", name="Your name").count() == 0     # no typed names
    assert page.locator("[data-testid=stSidebarNav]").get_by_text("Audit").count() == 0
    page.wait_for_function(NEXT_ITEM, arg="(none)", timeout=60_000)
    first = shown(page)
    page.get_by_role("button", name="Correct").click()
    page.wait_for_function(NEXT_ITEM, arg=first, timeout=60_000)

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in to modelwatch").wait_for(timeout=60_000)
    page.reload()
    page.get_by_role("heading", name="Sign in to modelwatch").wait_for(timeout=60_000)
    ctx.close()

    eng = db.open_db(url)
    ev = results.events_frame(eng, q)
    assert ev.select("reviewer", "action", "request_id").rows() == [("ana", "answer", first)]
    trail = audit.query(eng).reverse()
    assert [(r["actor"], r["action"], r["outcome"]) for r in trail.iter_rows(named=True)
            if r["actor"] == "ana"] == [("ana", "auth.login", "failed"), ("ana", "auth.login", "ok"),
                                        ("ana", "label.answer", "ok"), ("ana", "auth.logout", "ok")]
    sessions_ = set(trail.filter(trail["actor"] == "ana")["session"].to_list()) - {""}
    assert len(sessions_) == 1    # the answer came from the session that signed in
    eng.dispose()
    log = "\n".join(p.read_text() for p in tmp_path.glob("streamlit-*.log"))
    assert PW not in log and "not it at all" not in log

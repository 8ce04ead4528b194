"""The product's database down, corrupt, read-only, emptied or a 0-byte file: a table of cases,
each giving one clear sentence where the database is needed while everything else keeps working.

Read-only is a SQLite file opened with `mode=ro` (tests run as root, for whom file modes do not
stop a write); "down" is PostgreSQL on a port nothing listens on.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from monitoring.alerts.store import open_alerts_db
from monitoring.cli.main import main
from monitoring.config import load_config
from monitoring.database import DatabaseError
from monitoring.labelling.db import open_db
from monitoring.logs.workspace import open_workspace
from monitoring.reports.providers import standard_providers
from monitoring.reports.summary import weekly_summary

CASES = ["down", "corrupt", "read_only_empty", "emptied", "zero_bytes"]
# What each case's sentence says (lower case), whoever shows it.
SAYS = {"down": "connection refused", "corrupt": "file is not a database",
        "read_only_empty": "readonly database", "emptied": "missing (was it emptied?)",
        "zero_bytes": "is empty (0 bytes)"}


def broken_db(kind: str, folder: Path) -> str:
    """A database URL broken in the given way."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "down":
        return "postgresql://user:secret@127.0.0.1:1/modelwatch"
    path = folder / f"{kind}.sqlite"
    if kind == "corrupt":
        path.write_bytes(b"not a database, honest " * 200)
    elif kind == "read_only_empty":
        sqlite3.connect(path).execute("CREATE TABLE unrelated (x)").connection.close()
        return f"sqlite:///file:{path}?mode=ro&uri=true"
    elif kind == "emptied":
        url = f"sqlite:///{path}"
        open_db(url).dispose()
        open_alerts_db(url).dispose()
        con = sqlite3.connect(path)
        for table in ("labelling_events", "labelling_items", "labelling_queues", "alert_acks", "alert_episodes"):
            con.execute(f"DROP TABLE {table}")
        con.commit()
        con.close()
    elif kind == "zero_bytes":
        path.write_bytes(b"")
    return f"sqlite:///{path}"


@pytest.mark.parametrize("kind", CASES)
@pytest.mark.parametrize("opener", [open_db, open_alerts_db], ids=["labelling", "alerts"])
def test_opening_a_broken_database_is_one_sentence(tmp_path, kind, opener):
    url = broken_db(kind, tmp_path)
    with pytest.raises(DatabaseError) as info:
        opener(url)
    text = str(info.value)
    assert SAYS[kind] in text.lower() and "\n" not in text
    assert "secret" not in text          # the password never reaches a message


def test_a_zero_byte_file_is_refused_and_left_as_it_was(tmp_path):
    url = broken_db("zero_bytes", tmp_path)
    for opener in (open_db, open_alerts_db):
        with pytest.raises(DatabaseError):
            opener(url)
    assert (tmp_path / "zero_bytes.sqlite").stat().st_size == 0    # never replaced by an empty database


def test_a_new_database_file_is_still_created(tmp_path):
    engine = open_db(f"sqlite:///{tmp_path / 'new' / 'fresh.sqlite'}")
    engine.dispose()
    assert (tmp_path / "new" / "fresh.sqlite").stat().st_size > 0


def test_a_read_only_database_with_its_schema_is_readable(tmp_path):
    from datetime import UTC, datetime

    from monitoring.alerts import Episode
    from monitoring.alerts.store import history, sync

    path = tmp_path / "ro.sqlite"
    open_alerts_db(f"sqlite:///{path}").dispose()
    engine = open_alerts_db(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert history(engine, "logs").height == 0          # reads work
    import sqlalchemy as sa

    with pytest.raises(sa.exc.OperationalError, match="readonly"):
        sync(engine, "logs", [Episode("gap", "service", "traffic", "Gap", "Throughput",
                                      datetime(2026, 11, 1, tzinfo=UTC), None, 20.0, 15.0, "min", "silent")])
    engine.dispose()


@pytest.fixture(scope="module")
def ws(sample_logs):
    return open_workspace(load_config(overrides={"logs": str(sample_logs)}))


@pytest.mark.parametrize("kind", CASES)
def test_summary_says_labels_are_unavailable_not_none(ws, tmp_path, kind):
    """Late labels are switched off (a log without a `label` column) so the reviewers' database
    is the only source: "unavailable", never "no predictions were labelled"."""
    from dataclasses import replace

    providers = standard_providers(broken_db(kind, tmp_path))
    s = weekly_summary(ws, "2026-W47", replace(providers, drift=None, alerts=None))
    acc = s["areas"]["accuracy"]
    if acc.get("source") == "late labels":           # the sample logs carry labels of their own
        assert acc["available"] is False and "unavailable" in acc["reason"]
    else:
        assert acc["status"] == "grey" and acc["labelled"] is None and acc["available"] is False
        assert acc["reason"].startswith("Labelled accuracy unavailable") and "No predictions" not in acc["reason"]
        assert SAYS[kind] in acc["reason"].lower()


@pytest.fixture
def unlabelled_logs(tmp_path_factory):
    """The sample week without any label column: accuracy can only come from reviewers."""
    from tests.page_helpers import sample_without_labels

    return sample_without_labels(tmp_path_factory.mktemp("unlabelled") / "logs", 10, 400, 3)


@pytest.mark.parametrize("kind", CASES)
def test_summary_of_a_log_without_labels_reports_unavailable(unlabelled_logs, tmp_path, kind):
    from dataclasses import replace

    from monitoring.reports.summary import default_week

    ws = open_workspace(load_config(overrides={"logs": str(unlabelled_logs), "data_dir": str(tmp_path / "d")}))
    providers = replace(standard_providers(broken_db(kind, tmp_path)), drift=None, alerts=None)
    acc = weekly_summary(ws, default_week(ws), providers)["areas"]["accuracy"]
    assert acc["available"] is False and acc["labelled"] is None
    assert acc["reason"].startswith("Labelled accuracy unavailable") and SAYS[kind] in acc["reason"].lower()
    from monitoring.reports.export import figures

    s = weekly_summary(ws, default_week(ws), providers)
    assert ("accuracy", "Predictions labelled", "unavailable") in figures(s)


# -- the command line: one line on stderr, exit code 2 ------------------------------------------

COMMANDS = {
    "queue list": lambda logs, db: ["queue", "list", "--db", db],
    "queue status": lambda logs, db: ["queue", "status", "1", "--db", db],
    "queue create": lambda logs, db: ["queue", "create", "--logs", logs, "--size", "5", "--db", db],
    "alerts history": lambda logs, db: ["alerts", "history", "--logs", logs, "--db", db],
}


@pytest.fixture(scope="module")
def no_drift_rule(tmp_path_factory) -> str:
    """A config with the drift rule off. `alerts history` and `alerts check` evaluate every
    rule before they store (or fail to store) anything: the drift rule was 6 of their 10 s a
    run, and nothing these tests check comes from it (the error burst that fires at 15:00 on
    5 November is the error-rate rule; the accuracy rule, which reads the broken database's
    labels, stays on). The whole evaluation with each broken database runs on the Alerts page."""
    path = tmp_path_factory.mktemp("cfg") / "monitoring.toml"
    path.write_text("[alerts.rules.drift]\nenabled = false\n")
    return str(path)


@pytest.mark.parametrize("kind", CASES)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_cli_prints_one_line_and_exits_2(sample_logs, tmp_path, capsys, no_drift_rule, kind, command):
    args = COMMANDS[command](str(sample_logs), broken_db(kind, tmp_path))
    code = main(args + (["--config", no_drift_rule] if command.startswith("alerts") else []))
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and SAYS[kind] in lines[0].lower()
    assert "Traceback" not in err and "secret" not in err


@pytest.mark.parametrize("kind", CASES)
def test_alerts_check_still_prints_what_fires_when_the_history_cannot_be_stored(sample_logs, tmp_path, capsys,
                                                                                no_drift_rule, kind):
    code = main(["alerts", "check", "--logs", str(sample_logs), "--db", broken_db(kind, tmp_path),
                 "--at", "2026-11-05T15:00Z", "--no-webhook", "--config", no_drift_rule])
    out, err = capsys.readouterr()
    assert code == 1                                    # firing wins: cron still pages someone
    assert re.search(r"\d+ alert\(s\) firing", out) and "error_rate" in out
    assert err.count("\n") == 1 and "the alert history was not stored" in err


def test_summary_cli_with_the_database_down_says_unavailable(unlabelled_logs, tmp_path, capsys):
    code = main(["summary", "--logs", str(unlabelled_logs), "--db", broken_db("down", tmp_path),
                 "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    import json

    acc = json.loads(out)["areas"]["accuracy"]
    assert acc["available"] is False and acc["reason"].startswith("Labelled accuracy unavailable")


# -- pages ------------------------------------------------------------------------------------
#
# What a failure kind changes on a page is the database URL. Each page below is opened once
# per kind in one test, with Streamlit's data cache (which holds what was read from a
# database) cleared between kinds and its resource cache kept: the logs' workspace per URL,
# and the alert evaluation over the logs' history, keyed by the logs' fingerprint, computed
# once for the five kinds. That evaluation reads the database only through
# ground_truth.reviewed_labels, where every kind raises DatabaseError from open_db (checked
# for each kind above) and gives "no reviewed labels"; the page's own database path (the
# alert history, the labelling engine) runs anew for each kind.

NEEDS_DB = {"pages/alerts.py": "alert history cannot be stored or read",
            "pages/review.py": "labelling database is unavailable",
            "pages/queues.py": "labelling database is unavailable"}
LOGS_ONLY = ["pages/overview.py", "pages/latency.py", "pages/errors.py", "pages/throughput.py"]


def _open(at, page):
    """One run of app.py opening `page` directly, as a link to it does (before the first run
    AppTest names a page by its file, as st.Page does for these pages): the Overview is not
    computed first."""
    if page != "pages/overview.py":
        at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _shown(at) -> str:
    parts = [*at.error, *at.warning, *at.info, *at.markdown]
    return re.sub(r"\\(.)", r"\1", " ".join(str(p.value) for p in parts)).lower()


def _each_kind(app_env, logs, tmp_path, page, kinds=CASES):
    import streamlit as st

    for kind in kinds:
        st.cache_data.clear()
        yield kind, _open(app_env(logs, db_url=broken_db(kind, tmp_path / kind)), page)


@pytest.mark.parametrize("page", ["pages/review.py", "pages/queues.py"])
def test_pages_that_need_the_database_say_why_in_one_sentence(app_env, sample_logs, tmp_path, page):
    for kind, at in _each_kind(app_env, sample_logs, tmp_path, page):
        shown = _shown(at)
        assert NEEDS_DB[page] in shown and SAYS[kind] in shown, kind


def test_alerts_page_says_why_and_still_shows_what_fires(app_env, sample_logs, tmp_path):
    for kind, at in _each_kind(app_env, sample_logs, tmp_path, "pages/alerts.py"):
        shown = _shown(at)
        assert NEEDS_DB["pages/alerts.py"] in shown and SAYS[kind] in shown, kind
        assert any("firing at the end of the logs" in e.value for e in at.error), kind
        assert at.dataframe and at.dataframe[0].value.shape[0] > 0, kind    # the history, from the logs


# Weekly health reads the database only in monitoring.reports.summary's accuracy and quality
# providers: open_db(url) inside `except FAILURES` -> describe(exc), the same lines for every
# kind, and weekly_summary's reason for each kind is checked above (both summary tests). The
# page draws whatever summary it is given, so it is opened for one kind of each driver: the
# PostgreSQL connection refused, and the SQLite schema check (each run about 10 s).
def test_weekly_health_renders_with_accuracy_from_what_is_available(app_env, sample_logs, tmp_path):
    for kind, at in _each_kind(app_env, sample_logs, tmp_path, "pages/summary.py", kinds=("down", "emptied")):
        assert at.title[0].value == "Weekly health", kind
        shown = _shown(at)
        assert "labelled accuracy" in shown, kind
        assert "what happened" in " ".join(h.value.lower() for h in at.subheader), kind


@pytest.mark.parametrize("kind", ["down", "emptied"])
def test_pages_that_only_read_the_logs_keep_working(app_env, sample_logs, tmp_path, kind):
    url = broken_db(kind, tmp_path / "db")
    for page in LOGS_ONLY:
        at = _open(app_env(sample_logs, db_url=url), page)
        assert len(at.metric) >= 3, page
        assert all("database" not in e.value for e in at.error), page


def _page_as_app_runs_it():
    # What app.py does with the chosen page (AppTest's switch_page runs page files directly,
    # outside app.py's navigation, so the guard is composed here the same way).
    import os
    import runpy

    from ui import guard

    with guard.page():
        runpy.run_path(os.environ["PAGE"], run_name="__main__")


def test_a_database_emptied_while_the_app_runs(app_env, sample_logs, tmp_path, monkeypatch):
    """The engine is cached from a good database; its tables then vanish: the next run of the
    page says so in one sentence instead of a traceback."""
    from streamlit.testing.v1 import AppTest

    path = tmp_path / "live.sqlite"
    app_env(sample_logs, db_url=f"sqlite:///{path}", PAGE="pages/queues.py")
    at = AppTest.from_function(_page_as_app_runs_it, default_timeout=90)
    at.run()
    assert not at.exception and at.title[0].value == "Queues"
    con = sqlite3.connect(path)
    for table in ("labelling_events", "labelling_items", "labelling_queues"):
        con.execute(f"DROP TABLE {table}")
    con.commit()
    con.close()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "database cannot be used" in _shown(at) and "no such table" in _shown(at)

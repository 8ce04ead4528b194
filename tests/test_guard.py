"""ui/guard.py around every page: each failure from outside the page is one sentence, never a
traceback (AppTest of a page that raises it)."""

from __future__ import annotations

import pytest

# exception to raise -> what the page then says
CASES = {
    "duckdb": ("import duckdb; raise duckdb.IOException('IO Error: cannot open file logs/a.parquet')",
               "The logs could not be read: IO Error"),
    "sqlalchemy": ("import sqlalchemy as sa; raise sa.exc.OperationalError('SELECT 1', {}, Exception('disk I/O error'))",
                   "The product's database cannot be used"),
    "database": ("from monitoring.database import DatabaseError; raise DatabaseError('the database is gone')",
                 "The product's database cannot be used: the database is gone"),
    "config": ("from monitoring.config import ConfigError; raise ConfigError('[slo] error_rate must be between 0 and 1')",
               "The configuration is invalid"),
    "logs": ("from monitoring.logs.source import LogSourceError; raise LogSourceError('no Parquet files under x')",
             "The logs cannot be opened"),
}


def _script(code: str) -> str:
    return ("import streamlit as st\nfrom ui import guard\nwith guard.page():\n"
            "    st.title('Page')\n    " + code + "\n")


@pytest.mark.parametrize("case", list(CASES))
def test_a_failure_is_one_sentence(monkeypatch, tmp_path, clear_streamlit_cache, case):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MONITORING_LOGS", str(tmp_path / "none"))
    code, says = CASES[case]
    at = AppTest.from_string(_script(code), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(e.value for e in at.error).replace("\\", "")
    assert says in shown and at.title[0].value == "Page"


def test_other_errors_are_not_hidden(clear_streamlit_cache):
    """A bug is not bad input: it still surfaces (Streamlit's redacted error box)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string(_script("raise KeyError('bug')"), default_timeout=60)
    at.run()
    assert at.exception

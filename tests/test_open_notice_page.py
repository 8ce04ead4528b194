"""The app on new logs whose duplicate check runs in the background: every page says so above
its figures, and once the check is done the page shows the exact figures without a notice."""

from __future__ import annotations

import threading

import pytest

from tests.page_helpers import open_page
from tests.test_open_facts import ok, write


@pytest.fixture
def slow_check(monkeypatch):
    """Background check for any size of logs, held until the test releases it."""
    from monitoring.logs import facts, workspace

    release = threading.Event()
    real = facts.candidate_hashes

    def held(*a, **k):
        release.wait(60)
        return real(*a, **k)

    monkeypatch.setattr(workspace, "BACKGROUND_ROWS", 1)
    monkeypatch.setattr(facts, "candidate_hashes", held)
    return release


def _caption(at) -> str:
    return next(c.value for c in at.sidebar.caption if "valid rows" in c.value)


@pytest.mark.parametrize("page", ["pages/overview.py", "pages/latency.py", "pages/errors.py"])
def test_notice_while_checking_then_exact(app_env, tmp_path, slow_check, page):
    logs = tmp_path / "logs"
    # 6 rows, r1 three times and r2 twice across files: 3 extra copies, 3 requests.
    write(logs, {"a": [ok("r1", 0), ok("r2", 1), ok("r1", 2)], "b": [ok("r1", 3), ok("r2", 4), ok("r3", 5)]})
    at = open_page(app_env(logs), page)
    notices = [i.value for i in at.info if "duplicate request ids" in i.value]
    assert notices and "Checking 6 rows for duplicate request ids" in notices[0]
    assert "6 valid rows" in _caption(at)           # not yet corrected, and the page says so
    slow_check.set()
    from ui import data

    assert data.workspace().wait(60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [i.value for i in at.info if "duplicate request ids" in i.value]
    assert "3 valid rows" in _caption(at)

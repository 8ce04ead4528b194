"""The first-visit work done off the page (ui/prefetch.py, ui/warm.py): once the Overview has
drawn, the Drift and Weekly health pages read finished results (the computation is not run
again; a choice the prefetch did not make still computes), and the warm-up imports the pages'
modules and freezes what is alive for the garbage collector."""

from __future__ import annotations

import gc
import textwrap

import pytest

import monitoring.drift as drift_pkg
import monitoring.reports.summary as summary_mod
from ui import data, prefetch, warm


def _idle() -> None:
    # One thread each, first in first out: when these have run, all queued before them has too.
    prefetch._WORKER.submit(lambda: None).result(timeout=300)
    data._EVALUATOR.submit(lambda: None).result(timeout=300)


def _counting(monkeypatch, module, name: str) -> list:
    calls = []
    real = getattr(module, name)

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_drift_and_weekly_first_visits_read_the_prefetched_results(app_env, generated_logs, monkeypatch):
    at = app_env(generated_logs)
    at.run()                                  # the Overview: its sidebar queues the prefetch
    assert not at.exception, [e.value for e in at.exception]
    _idle()
    over_time = _counting(monkeypatch, drift_pkg, "analyze_over_time")
    weekly = _counting(monkeypatch, summary_mod, "weekly_summary")

    at.switch_page("pages/drift.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Drift" and at.get("plotly_chart")
    at.switch_page("pages/summary.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert (over_time, weekly) == ([], [])  # both pages drew from the background's results

    weeks = at.selectbox(key="summary_week").options
    other = next(w for w in weeks if w != at.selectbox(key="summary_week").value)
    at.selectbox(key="summary_week").set_value(other)
    at.run()
    assert not at.exception and weekly == [1]   # the counter counts: another week is computed


@pytest.mark.parametrize("weeks, default, shown", [
    (["2026-W44", "2026-W45", "2026-W46"], "2026-W45", "2026-W45"),
    (["2026-W44", "2026-W45", "2026-W46"], "2026-W47", "2026-W46"),
    (["2026-W44"], "2026-W44", "2026-W44"),
])
def test_the_week_weekly_health_opens_on(weeks, default, shown):
    assert prefetch.shown_week(weeks, default) == shown


@pytest.mark.parametrize("source, modules", [
    ("import polars as pl\nimport streamlit as st\n", ["polars", "streamlit"]),
    ("from ui import data, sidebar\n", ["ui", "ui.data", "ui.sidebar"]),
    ("from monitoring.fmt import md\nfrom . import x\n", ["monitoring.fmt", "monitoring.fmt.md"]),
    ("def f():\n    import json\n", ["json"]),
])
def test_page_modules_are_read_from_the_page_scripts(source, modules, tmp_path):
    (tmp_path / "a.py").write_text(textwrap.dedent(source))
    assert warm.page_modules(tmp_path) == modules


def test_the_warm_up_imports_skips_what_is_no_module_and_freezes(monkeypatch):
    import sys

    for name in ("colorsys", "xml.dom.minicompat"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    frozen = gc.get_freeze_count()
    monkeypatch.setattr(warm, "_done", warm.threading.Event())
    try:
        warm._warm(("colorsys", "colorsys.rgb_to_hsv", "no_such_module_xyz", "xml.dom.minicompat"))
        assert warm._done.is_set()
        assert "colorsys" in sys.modules and "xml.dom.minicompat" in sys.modules
        assert "no_such_module_xyz" not in sys.modules
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()

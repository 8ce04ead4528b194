"""A review session of 20 items by key presses in headless Chromium: every label stored, the
right values, in order. The key-press-to-next-item time is measured by the same session in
`make bench` (scripts/bench_browser.py --scenario review), not asserted here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from monitoring.labelling import db, queues, results

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_browser", ROOT / "scripts" / "bench_browser.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
N = 20


def test_twenty_items_by_keyboard_are_stored_in_order(streamlit_server, browser, generated_logs, tmp_path):
    url_db = f"sqlite:///{tmp_path / 'review.sqlite'}"
    qid = bench.make_queue(str(generated_logs), url_db, N + 5)
    url = streamlit_server(MONITORING_LOGS=generated_logs, MONITORING_DB_URL=url_db)
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    page.goto(f"{url}/review?reviewer=ana&queue={qid}", wait_until="domcontentloaded")  # a shared link
    page.get_by_text(bench.re.compile(r"^Item \d+ of ")).wait_for(timeout=90_000)
    page.wait_for_function(bench.SETTLED, timeout=90_000)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    session = bench.review_session(page, N)
    assert page.get_by_test_id("stException").count() == 0
    held = bench._card(page).split("request ")[1].split(" ·")[0]

    page.reload(wait_until="domcontentloaded")                      # reload-safe: same reviewer, same item
    page.get_by_text(bench.re.compile(r"^Item \d+ of ")).wait_for(timeout=90_000)
    page.wait_for_function(bench.SETTLED, timeout=90_000)
    assert bench._card(page).split("request ")[1].split(" ·")[0] == held
    ctx.close()

    engine = db.open_db(url_db)
    ev = results.events_frame(engine, qid)
    p = queues.progress(engine, qid)
    engine.dispose()
    assert ev.height == N                                           # 20 labels, none lost or doubled
    stored = list(zip(ev["request_id"].to_list(), ev["verdict"].to_list(), ev["correct_label"].to_list(),
                      strict=True))
    assert stored == [(s["request_id"], s["verdict"], s["label"]) for s in session]
    assert set(ev["reviewer"].to_list()) == {"ana"}
    assert (p.done, p.in_progress) == (N, 1)                        # the held item, and only it
    assert all(s["seconds"] is not None and s["seconds"] > 0 for s in session)   # measured, every press

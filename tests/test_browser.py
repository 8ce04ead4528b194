"""Real journeys: `streamlit run` on 127.0.0.1, headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-results"


def test_open_switch_pages_and_change_the_range(streamlit_server, browser, sample_logs):
    url = streamlit_server(MONITORING_LOGS=sample_logs)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("heading", name="Overview").wait_for(timeout=60_000)
    page.get_by_text("P95 latency").first.wait_for(timeout=60_000)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)

    # Switch page through the sidebar navigation.
    page.get_by_role("link", name="Latency").click()
    page.get_by_role("heading", name="Latency").wait_for(timeout=60_000)
    page.get_by_text("Latency percentiles").first.wait_for(timeout=60_000)
    sidebar = page.get_by_test_id("stSidebar")
    before = sidebar.get_by_text(re.compile(r"→ .* UTC · bucket")).inner_text()

    # Change the time range: the window and the bucket follow.
    sidebar.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="Last 24 hours").click()
    page.wait_for_function(
        "prev => ![...document.querySelectorAll('[data-testid=stSidebar] *')]"
        ".some(e => e.children.length === 0 && e.textContent === prev)",
        arg=before, timeout=60_000)
    after = sidebar.get_by_text(re.compile(r"→ .* UTC · bucket")).inner_text()
    assert after != before and after.startswith("2026-11-22 00:00 →") and "bucket 5 minutes" in after
    page.screenshot(path=str(SHOTS / "latency-24h.png"), full_page=True)

    # The choice survives a page switch.
    page.get_by_role("link", name="Errors").click()
    page.get_by_role("heading", name="Errors").wait_for(timeout=60_000)
    page.get_by_text("Error rate").first.wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "errors-24h.png"), full_page=True)
    assert sidebar.get_by_text(re.compile(r"→ .* UTC · bucket")).inner_text() == after
    assert page.get_by_test_id("stException").count() == 0
    page.close()


def test_weekly_html_export_renders_offline(browser, generated_logs, tmp_path):
    from monitoring.cli.main import main

    out = tmp_path / "week.html"
    assert main(["summary", "--logs", str(generated_logs), "--week", "2026-W47", "--format", "html",
                 "--out", str(out)]) == 0
    context = browser.new_context(offline=True)     # opens with no network at all
    page = context.new_page()
    page.goto(out.as_uri())
    page.get_by_text("Weekly model health: 2026-W47").wait_for(timeout=30_000)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3", timeout=30_000)
    assert page.locator(".js-plotly-plot").count() == 3
    assert page.get_by_text("on v3 since Tuesday").first.is_visible()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "weekly-export.png"), full_page=True)
    context.close()


def test_a_deep_link_on_a_fresh_server_gets_the_real_navigation(streamlit_server, browser, sample_logs):
    # Streamlit runs a page file directly when a deep link is the first request a server sees;
    # the app must still show its own navigation and the requested page.
    url = streamlit_server(MONITORING_LOGS=sample_logs)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url + "/throughput", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Throughput").wait_for(timeout=60_000)
    nav = page.get_by_test_id("stSidebarNav")
    # Legacy mode names links after files ("app", "overview"): wait for the app's own titles.
    nav.get_by_role("link", name="Overview", exact=True).wait_for(timeout=30_000)
    nav.get_by_role("link", name="app", exact=True).wait_for(state="detached", timeout=30_000)
    assert nav.get_by_role("link", name="app", exact=True).count() == 0
    page.close()

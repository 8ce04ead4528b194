"""A real journey: compare two versions on the sample logs, then open the model registry."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
SHOTS = Path(__file__).resolve().parent.parent / "test-results"


def test_compare_two_versions_then_open_the_registry(streamlit_server, browser, sample_logs):
    url = streamlit_server(MONITORING_LOGS=sample_logs)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("heading", name="Overview").wait_for(timeout=60_000)

    # Compare: the default pair over the last 7 days is v2 against v3, during v3's regression.
    page.get_by_role("link", name="Compare").click()
    page.get_by_role("heading", name="Compare versions").wait_for(timeout=60_000)
    page.get_by_text("Rollback signal: roll back v3.").wait_for(timeout=90_000)
    alert = page.locator("[data-testid=stAlertContainer]").filter(has_text="Rollback signal").first.inner_text()
    assert "slower at P95 by" in alert and "95% interval" in alert
    page.get_by_text("Differences, candidate − baseline").wait_for(timeout=30_000)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)

    # Then the registry: every version with validation against production.
    page.get_by_role("link", name="Models").click()
    page.get_by_role("heading", name="Models").wait_for(timeout=60_000)
    page.get_by_text("Registry entry").wait_for(timeout=60_000)
    page.get_by_text("trained 2026-11-05").wait_for(timeout=30_000)
    assert page.get_by_text("disagrees significantly with validation").count() >= 1
    page.screenshot(path=str(SHOTS / "models.png"), full_page=True)
    assert page.get_by_test_id("stException").count() == 0
    page.close()

"""Every page at 1440x900 in headless Chromium, as a person sees it: a screenshot of each
kept under test-results/screenshots/ (CI artifacts), no exception, and no chart whose tick
labels are clipped or whose value axis has no title. The weekly HTML export too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-results" / "screenshots"
VIEWPORT = {"width": 1440, "height": 900}

# Plotly draws each chart as SVG: a tick label or axis title whose box leaves the chart's
# SVG is cut off on screen ("3000" showing as "0"); a cartesian chart without a value-axis
# title leaves its unit unsaid.
CHART_PROBLEMS_JS = """() => {
  const out = [];
  document.querySelectorAll('.js-plotly-plot').forEach((plot, i) => {
    const svg = plot.querySelector('.main-svg');
    if (!svg) return;
    const box = svg.getBoundingClientRect();
    const name = (plot.querySelector('.gtitle') || {}).textContent || `chart ${i}`;
    plot.querySelectorAll('.xtick text, .ytick text, .g-xtitle text, .g-ytitle text').forEach(t => {
      const r = t.getBoundingClientRect();
      if (r.width === 0 || !t.textContent) return;
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1)
        out.push(`${name}: label '${t.textContent}' is clipped`);
    });
    const cartesian = plot.querySelector('.xtick') && plot.querySelector('.ytick');
    const ytitle = plot.querySelector('.g-ytitle text');
    if (cartesian && !(ytitle && ytitle.textContent.trim()))
      out.push(`${name}: the value axis has no title`);
  });
  return out;
}"""


def settle(page) -> None:
    """Wait until the script run is over and charts have drawn."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-testid=stApp]');"
        " const s = a && a.getAttribute('data-test-script-state');"
        " return s && !['running', 'rerunRequested', 'initial'].includes(s); }", timeout=120_000)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)


def expand_navigation(nav) -> None:
    """The navigation shows the first pages and "View N more": open it so every page is listed."""
    more = nav.get_by_role("button", name=re.compile(r"^View \d+ more$"))
    if more.count():
        more.first.click()
        nav.get_by_role("button", name=re.compile(r"^View less$")).wait_for(timeout=30_000)


def test_every_page_at_1440x900(streamlit_server, browser, sample_logs):
    url = streamlit_server(MONITORING_LOGS=sample_logs)
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("heading", name="Overview").wait_for(timeout=90_000)
    settle(page)
    nav = page.get_by_test_id("stSidebarNav")
    expand_navigation(nav)
    # A link's text is its icon's name, then its title.
    titles = [t.strip().splitlines()[-1].strip() for t in nav.get_by_role("link").all_inner_texts() if t.strip()]
    pages = len(list((ROOT / "pages").glob("*.py")))
    assert len(titles) == pages, titles                     # every page, none hidden behind "View more"
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}
    for title in titles:
        link = nav.get_by_role("link", name=re.compile(re.escape(title) + "$"))
        if not link.is_visible():
            expand_navigation(nav)
        link.click()
        page.get_by_role("heading", name=re.compile(re.escape(title.split(" ")[0]), re.I)).first.wait_for(timeout=90_000)
        settle(page)
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        page.screenshot(path=str(SHOTS / f"{slug}.png"), full_page=True)
        assert page.get_by_test_id("stException").count() == 0, title
        found = page.evaluate(CHART_PROBLEMS_JS)
        if found:
            problems[title] = found
    page.close()
    assert len(list(SHOTS.glob("*.png"))) >= pages
    assert not problems, problems


def test_weekly_html_export_has_room_for_its_labels(browser, generated_logs, tmp_path):
    from monitoring.cli.main import main

    out = tmp_path / "week.html"
    assert main(["summary", "--logs", str(generated_logs), "--week", "2026-W47", "--format", "html",
                 "--out", str(out)]) == 0
    context = browser.new_context(offline=True, viewport=VIEWPORT)
    page = context.new_page()
    page.goto(out.as_uri())
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3", timeout=30_000)
    page.wait_for_timeout(500)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "weekly-export.png"), full_page=True)
    assert page.evaluate(CHART_PROBLEMS_JS) == []
    context.close()

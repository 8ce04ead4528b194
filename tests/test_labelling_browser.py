"""Two reviewers in two browsers never hold the same item; hostile strings stay text.

`streamlit run` on 127.0.0.1 driven by headless Chromium (Playwright)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.config import load_config
from monitoring.labelling import db, queues, results
from monitoring.labelling.sampling import QueueSpec
from monitoring.logs.workspace import open_workspace

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-results"
CARD = re.compile(r"^Item \d+ of \d+ · request ")
SCRIPT = "<script>window.__pwned = 1</script>"
IMG = "<img src=x onerror=\"window.__pwned = 2\">"


def create(logs, url: str, size: int) -> int:
    ws = open_workspace(load_config(overrides={"logs": str(logs)}))
    engine = db.open_db(url)
    q = queues.create_queue(engine, ws.source, ws.con, QueueSpec(size=size, seed=11))
    engine.dispose()
    return q


@pytest.fixture
def hostile_logs(tmp_path):
    import datetime as dt

    n = 3
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    path = tmp_path / "hostile"
    path.mkdir()
    pq.write_table(pa.table({
        "request_id": [f"h{i}" for i in range(n)],
        "timestamp": pa.array([t0] * n, pa.timestamp("us", "UTC")),
        "model_version": ["v1"] * n, "latency_ms": [1.0] * n, "status": ["ok"] * n,
        "prediction": [IMG] * n, "score": [0.5] * n,
        "note": [SCRIPT] * n, "customer": ["'; DROP TABLE labelling_events; --"] * n,
    }), path / "part-0.parquet")
    return path


def start_review(browser, url: str, name: str, queue_label: str | None = None):
    ctx = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = ctx.new_page()
    page.goto(url + "/review", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Review").wait_for(timeout=60_000)
    if queue_label:
        page.get_by_test_id("stSelectbox").filter(has_text="Queue").click()
        page.get_by_role("option", name=re.compile(queue_label)).click()
    box = page.get_by_role("textbox", name="Your name")
    box.fill(name)
    box.press("Enter")
    page.get_by_text(CARD).wait_for(timeout=60_000)
    page.wait_for_function(NEXT_ITEM, arg="(none)", timeout=60_000)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    return ctx, page


def shown(page) -> str:
    return page.get_by_text(CARD).inner_text().split("request ")[1].split(" ·")[0]


NEXT_ITEM = (
    "prev => { const e = [...document.querySelectorAll('[data-testid=stCaptionContainer]')]"
    ".find(x => x.innerText.startsWith('Item ')); const app = document.querySelector("
    "'[data-test-script-state]'); return e && !e.innerText.includes(prev) && app && "
    "app.getAttribute('data-test-script-state') === 'notRunning'; }"
)


def test_two_reviewers_never_hold_the_same_item(streamlit_server, browser, generated_logs,
                                                hostile_logs, tmp_path):
    url_db = f"sqlite:///{tmp_path / 'review.sqlite'}"
    hostile_q = create(hostile_logs, url_db, 3)
    q = create(generated_logs, url_db, 30)
    url = streamlit_server(MONITORING_LOGS=generated_logs, MONITORING_DB_URL=url_db)
    ctx_a, ana = start_review(browser, url, "ana")
    ctx_b, ben = start_review(browser, url, "ben")
    seen = {"ana": [shown(ana)], "ben": [shown(ben)]}
    assert seen["ana"][0] != seen["ben"][0]

    keys = ["y", "n", "y", "u", "1", "y"]
    for i, key in enumerate(keys):            # keyboard only, both reviewers at once
        for who, page in (("ana", ana), ("ben", ben)):
            page.keyboard.press(key if who == "ana" else keys[-1 - i])
        for who, page in (("ana", ana), ("ben", ben)):
            prev = seen[who][-1]
            page.wait_for_function(NEXT_ITEM, arg=prev, timeout=60_000)  # next item, run finished
            seen[who].append(shown(page))
    SHOTS.mkdir(exist_ok=True)
    ana.screenshot(path=str(SHOTS / "review-ana.png"), full_page=True)
    assert not set(seen["ana"]) & set(seen["ben"])
    assert len(set(seen["ana"])) == len(keys) + 1 and len(set(seen["ben"])) == len(keys) + 1

    engine = db.open_db(url_db)
    ev = results.events_frame(engine, q)
    answered = dict(zip(ev["request_id"].to_list(), ev["reviewer"].to_list(), strict=True))
    assert Counter(ev["request_id"].to_list()).most_common(1)[0][1] == 1     # none twice
    assert {r for r, who in answered.items() if who == "ana"} == set(seen["ana"][:-1])
    assert {r for r, who in answered.items() if who == "ben"} == set(seen["ben"][:-1])
    p = queues.progress(engine, q)
    assert (p.done, p.in_progress) == (2 * len(keys), 2)                   # each holds one more
    engine.dispose()
    assert ana.get_by_test_id("stException").count() == 0
    ana.get_by_role("link", name="Queues").click()                  # the lead's view
    ana.get_by_role("heading", name="Queues").wait_for(timeout=60_000)
    ana.get_by_test_id("stMetric").filter(has_text="Accuracy").wait_for(timeout=60_000)
    ana.screenshot(path=str(SHOTS / "queues.png"), full_page=True)
    assert ana.get_by_test_id("stException").count() == 0
    ctx_a.close()
    ctx_b.close()

    # Hostile strings from the logs are shown as text and never run.
    ctx, page = start_review(browser, url, "cat", queue_label=f"#{hostile_q} ")
    # The inputs grid draws on a canvas; its accessible cells carry the text verbatim.
    page.get_by_text(SCRIPT, exact=True).first.wait_for(state="attached", timeout=30_000)
    assert page.locator("td[role=gridcell]", has_text=SCRIPT).count() >= 1
    assert page.locator("td[role=gridcell]", has_text="'; DROP TABLE labelling_events; --").count() >= 1
    page.get_by_text(IMG, exact=True).first.wait_for(timeout=30_000)   # the prediction, as text
    assert page.evaluate("window.__pwned === undefined")
    assert page.locator("img[src=x]").count() == 0
    page.screenshot(path=str(SHOTS / "review-hostile.png"), full_page=True)
    ctx.close()

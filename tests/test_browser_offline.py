"""The app makes no request to any host but its own: every request a real Chromium makes while
every page is opened is recorded, and all of them go to 127.0.0.1. The logs are hostile: a
feature, an error type and a version whose names are Markdown images and links pointing to
another host (image beacons), which must stay text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

BEACON = "http://beacon.invalid/b.png"
HOSTILE = [f"![beacon]({BEACON})", f"[link]({BEACON})", "<img src='" + BEACON + "'>"]
PAGES = [("", "Overview"), ("latency", "Latency"), ("errors", "Errors"), ("throughput", "Throughput"),
         ("review", "Review"), ("queues", "Queues"), ("drift", "Drift"), ("summary", "Weekly health"),
         ("alerts", "Alerts")]
LOCAL = {"127.0.0.1"}


@pytest.fixture
def beacon_logs(tmp_path):
    rng = np.random.default_rng(9)
    n = 3000
    t0 = datetime(2026, 11, 2, tzinfo=UTC)
    ts = [t0 + timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 14 * 86400, n))]
    status = np.where(rng.random(n) < 0.05, "error", "ok")
    pq.write_table(pa.table({
        "request_id": [f"r{i}" for i in range(n)], "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "model_version": rng.choice(["v1", HOSTILE[1]], n).tolist(), "endpoint": ["/predict"] * n,
        "latency_ms": rng.gamma(2, 60, n), "status": status.tolist(),
        "error_type": [HOSTILE[i % 3] if s == "error" else None for i, s in enumerate(status)],
        "prediction": rng.choice(["a", "b"], n).tolist(),
        HOSTILE[0]: rng.normal(0, 1, n), "note": rng.choice(HOSTILE, n).tolist(),
    }), tmp_path / "logs.parquet")
    return tmp_path / "logs.parquet"


def test_every_page_requests_only_the_app_itself(streamlit_server, browser, beacon_logs):
    url = streamlit_server(MONITORING_LOGS=beacon_logs)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    try:
        for path, title in PAGES:
            page.goto(f"{url}/{path}", wait_until="domcontentloaded")
            page.get_by_role("heading", name=title).first.wait_for(timeout=90_000)
            page.wait_for_load_state("networkidle", timeout=60_000)
            page.wait_for_timeout(500)     # favicons and fonts are fetched after the first paint
            errors = page.get_by_test_id("stException")
            # the exception's own text in the failure, so a rare one can be read from CI's log
            assert errors.count() == 0, f"{title}: {errors.first.inner_text()[:2000]}"
        icons = page.evaluate("[...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)")
    finally:
        context.close()
    foreign = sorted({u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")
                      and urlsplit(u).hostname not in LOCAL})
    assert not foreign, foreign
    assert not any("beacon.invalid" in u for u in requests)
    assert requests and all(urlsplit(u).scheme in ("http", "ws", "data", "blob") for u in requests)
    assert icons and all(urlsplit(i).hostname in LOCAL or i.startswith("data:") for i in icons), icons

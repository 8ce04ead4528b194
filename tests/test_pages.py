"""Every page rendered in-process (AppTest) on sample logs, an empty window and broken logs."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

PAGES = ["pages/overview.py", "pages/latency.py", "pages/errors.py", "pages/throughput.py"]


def render(at, page: str | None = None, preset: str | None = None, direct: bool = True):
    """Open `page` (after choosing `preset`). With no preset the page is opened directly, as a
    link to it does: one run of app.py, through its navigation and guard, without computing
    the Overview first (before the first run AppTest names a page by its file, as st.Page
    does). `direct=False`: the Overview first, then the page run on its own (AppTest's
    switch_page), outside app.py's guard, whose sentences a test of the page's own must not
    be able to take for the page's."""
    if page and page != "pages/overview.py" and direct and not preset:
        at.switch_page(page)
        at.run()
    else:
        at.run()
        if preset:
            at.sidebar.selectbox(key="range_preset").set_value(preset)
            at.run()
        if page and page != "pages/overview.py":
            at.switch_page(page)
            at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(markdown: str) -> str:
    """What Markdown displays for escaped text (monitoring.fmt.md): the backslashes go."""
    return re.sub(r"\\(.)", r"\1", markdown)


def set_custom(at, start: datetime, end: datetime):
    """A custom range from the sidebar's date and time inputs (UTC, end exclusive)."""
    at.sidebar.date_input(key="custom_from_d").set_value(start.date())
    at.sidebar.time_input(key="custom_from_t").set_value(start.time())
    at.sidebar.date_input(key="custom_to_d").set_value(end.date())
    at.sidebar.time_input(key="custom_to_t").set_value(end.time())
    at.run()
    return at


def texts(at) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [w.value for w in at.warning]
    parts += [i.value for i in at.info] + [s.value for s in at.success] + [c.value for c in at.caption]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_sample_logs(app_env, sample_logs, page):
    at = render(app_env(sample_logs), page)
    assert at.title[0].value in {"Overview", "Latency", "Errors", "Throughput"}
    assert len(at.metric) >= 3


def test_overview_lists_the_sample_incidents(app_env, sample_logs):
    at = render(app_env(sample_logs), preset="All data")
    body = texts(at)
    assert "Downtime**] 2026-11-13 02:" in body          # the documented 02:10-03:25 gap
    assert "Traffic spike**] at 2026-11-08 19:00" in body
    assert any("P95" in e.value and "SLO" in e.value for e in [*at.warning, *at.error])
    assert {m.label for m in at.metric} >= {"Requests", "Error rate", "P95 latency"}


def test_latency_page_flags_the_regression(app_env, sample_logs):
    at = render(app_env(sample_logs), "pages/latency.py")   # default: last 7 days
    warn = " ".join(w.value for w in at.warning)
    assert "P95 above the SLO" in warn and "2026-11-17" in warn


def test_errors_page_flags_the_burst(app_env, sample_logs):
    at = app_env(sample_logs)
    at.run()
    at.sidebar.selectbox(key="range_preset").set_value("All data")
    at.sidebar.selectbox(key="bucket").set_value("hour")
    at.run()
    at.switch_page("pages/errors.py")
    at.run()
    assert not at.exception
    assert "2026-11-05 14:00" in " ".join(w.value for w in at.warning)


def test_choices_survive_page_switches(app_env, sample_logs):
    at = render(app_env(sample_logs), preset="Last 24 hours")
    at.switch_page("pages/latency.py")
    at.run()
    assert at.sidebar.selectbox(key="range_preset").value == "Last 24 hours"


@pytest.fixture
def logs_with_a_hole(tmp_path):
    def day(d: date, n: int = 30, start: int = 0):
        ts = [datetime(d.year, d.month, d.day, 10) + timedelta(minutes=i) for i in range(n)]
        return pa.table({"request_id": [f"{d}-{i}" for i in range(n)], "timestamp": pa.array(ts, pa.timestamp("us")),
                         "model_version": ["v1"] * n, "latency_ms": [100.0] * n, "status": ["ok"] * n,
                         "prediction": ["a"] * n})
    pq.write_table(day(date(2026, 11, 1)), tmp_path / "a.parquet")
    pq.write_table(day(date(2026, 11, 6)), tmp_path / "b.parquet")
    return tmp_path


@pytest.mark.parametrize("page", PAGES)
def test_empty_window_explains_itself(app_env, logs_with_a_hole, page):
    at = app_env(logs_with_a_hole)
    at.run()
    at.sidebar.selectbox(key="range_preset").set_value("Custom")
    at.run()
    set_custom(at, datetime(2026, 11, 3), datetime(2026, 11, 5))
    if page != "pages/overview.py":
        at.switch_page(page)
        at.run()
    assert not at.exception
    assert any("No valid requests in this window" in i.value for i in at.info)


@pytest.mark.parametrize("page", PAGES)
def test_unreadable_logs_give_a_message(app_env, tmp_path, page):
    (tmp_path / "junk.parquet").write_text("this is not parquet")
    at = app_env(tmp_path)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception
    assert any("cannot be opened" in e.value for e in at.error)


def test_missing_logs_path_gives_a_message(app_env, tmp_path):
    at = render(app_env(tmp_path / "nowhere"))
    assert any("no such file or directory" in e.value for e in at.error)


@pytest.mark.parametrize("page", PAGES)
def test_broken_rows_and_files_show_in_data_health(app_env, tmp_path, page):
    n = 40
    ts = [datetime(2026, 11, 1, 10) + timedelta(minutes=i) for i in range(n)]
    lat = [100.0 + i for i in range(n)]
    lat[3] = float("nan")
    lat[4] = -1.0
    hostile = ["<script>alert(1)</script>", "'; DROP TABLE logs; --"] * (n // 2)
    pq.write_table(pa.table({
        "request_id": [f"r{i}" for i in range(n)], "timestamp": pa.array(ts, pa.timestamp("us")),
        "model_version": hostile, "endpoint": hostile, "latency_ms": lat,
        "status": ["ok"] * (n - 2) + ["error", "error"], "error_type": hostile[: n],
        "prediction": hostile}), tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_bytes(b"PAR1 truncated")
    at = render(app_env(tmp_path), page, preset="All data")
    expander = shown(" ".join(str(x.value) for x in [*at.sidebar.warning, *at.sidebar.error]))
    assert "b.parquet" in expander and "NaN" in expander and "negative" in expander
    assert "<script>" in " ".join(at.sidebar.multiselect(key="versions").options)


REPORT_PAGES = ["pages/summary.py", "pages/alerts.py"]


# The two report pages' first render is each checked by the test after it on the same run
# (title, then the week's incidents; title, then the history and an acknowledgement).
def test_weekly_page_reads_the_incident_week(app_env, sample_logs):
    at = render(app_env(sample_logs), "pages/summary.py")
    assert at.title[0].value == "Weekly health"
    at.selectbox(key="summary_week").set_value("2026-W47")
    at.run()
    assert not at.exception
    assert any("on v3 since Tuesday" in e.value for e in at.error)
    assert len(at.get("download_button")) == 3


def test_alerts_page_shows_history_and_acknowledges(app_env, sample_logs):
    at = render(app_env(sample_logs), "pages/alerts.py")
    assert at.title[0].value == "Alerts"
    # The income and device drifts last to the end of the sample logs, and so does the
    # rollback signal of v3 (a sequential test that rejected has decided).
    assert "3 alert(s) firing at the end of the logs" in at.error[0].value
    table = at.dataframe[0].value
    assert {"income", "device", "prediction"} <= set(table[table["title"] == "Drift"]["subject"])
    assert {"P95 latency above its SLO", "No traffic (downtime)", "Error rate above its objective",
            "Canary worse than its baseline: roll back"} <= set(table["title"])
    at.text_input[0].input("ana")
    next(b for b in at.button if b.label == "Acknowledge").click()
    at.run()
    assert not at.exception
    assert "ana" in set(at.dataframe[0].value["ack_by"].dropna())


@pytest.mark.parametrize("page", REPORT_PAGES)
def test_report_pages_on_unreadable_logs(app_env, tmp_path, page):
    (tmp_path / "junk.parquet").write_text("nope")
    at = render(app_env(tmp_path), page, direct=False)
    assert any("cannot be opened" in e.value for e in at.error)


def test_overview_incidents_come_from_every_detector(app_env, sample_logs):
    """The error-burst day lists the burst, not 'no incident'; the drifted window lists drift."""
    at = app_env(sample_logs)
    at.run()
    at.sidebar.selectbox(key="range_preset").set_value("Custom")
    at.run()
    set_custom(at, datetime(2026, 11, 5), datetime(2026, 11, 6))
    assert not at.exception, [e.value for e in at.exception]
    body = texts(at)
    assert "Errors**]" in body and "2026-11-05 14:" in body and "No incident" not in body
    # Drift comes from the alert rules' evaluation, which runs in the background: the page
    # says so meanwhile, and lists the drift once it is done (the fragment polls).
    import time as _time

    deadline = _time.monotonic() + 120
    while "Drift**]" not in body and _time.monotonic() < deadline:
        assert "Checking drift" in body
        _time.sleep(1)
        at.run()
        body = texts(at)
    assert "Drift**]" in body


def test_sub_day_presets_and_custom_times(app_env, sample_logs):
    at = render(app_env(sample_logs), preset="Last hour")
    cap = " ".join(c.value for c in at.sidebar.caption)
    assert "2026-11-22 23:00 → 2026-11-23 00:00 UTC" in cap
    at.sidebar.selectbox(key="range_preset").set_value("Custom")
    at.run()
    set_custom(at, datetime(2026, 11, 5, 14, 0), datetime(2026, 11, 5, 15, 30))
    assert not at.exception
    cap = " ".join(c.value for c in at.sidebar.caption)
    assert "2026-11-05 14:00 → 2026-11-05 15:30 UTC" in cap
    requests = next(m for m in at.metric if m.label == "Requests")
    # Oracle: a hand count of the rows in those 90 minutes.
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    t = ds.dataset(sorted(str(p) for p in sample_logs.rglob("*.parquet")), format="parquet").to_table(columns=["timestamp"])
    n = pc.sum(pc.and_(pc.greater_equal(t["timestamp"], pa.scalar(datetime(2026, 11, 5, 14), pa.timestamp("us", "UTC"))),
                       pc.less(t["timestamp"], pa.scalar(datetime(2026, 11, 5, 15, 30), pa.timestamp("us", "UTC"))))).as_py()
    assert requests.value == f"{n:,}"
    # The range and filters are in the URL, so the link reopens this view.
    q = {k: (v if isinstance(v, str) else v[0]) for k, v in at.query_params.items()}
    assert q["range"] == "custom" and q["from"] == "2026-11-05T14:00Z" and q["to"] == "2026-11-05T15:30Z"


def test_a_link_opens_on_its_range_and_filters(app_env, sample_logs):
    at = app_env(sample_logs)
    at.query_params["range"] = "custom"
    at.query_params["from"] = "2026-11-08T18:00Z"
    at.query_params["to"] = "2026-11-08T21:00Z"
    at.query_params["version"] = ["v1", "nonexistent"]
    at.run()
    assert not at.exception
    cap = " ".join(c.value for c in at.sidebar.caption)
    assert "2026-11-08 18:00 → 2026-11-08 21:00 UTC" in cap
    assert at.sidebar.multiselect(key="versions").value == ["v1"]


@pytest.mark.parametrize("event, expected", [
    ({"selection": {"box": [{"x": ["2026-11-17 09:00:00", "2026-11-17 12:30:00"]}]}},
     (datetime(2026, 11, 17, 9, tzinfo=UTC), datetime(2026, 11, 17, 12, 30, tzinfo=UTC))),
    ({"selection": {"box": [{"x": ["2026-11-17 12:30:00.5", "2026-11-17 09:00"]}]}},      # dragged leftwards
     (datetime(2026, 11, 17, 9, tzinfo=UTC), datetime(2026, 11, 17, 12, 30, 0, 500000, tzinfo=UTC))),
    ({"selection": {"box": [{"x": ["2026-11-17 09:00:00", "2026-11-17 09:00:30"]}]}}, None),   # under a minute
    ({"selection": {"box": [], "points": [{"x": 1}]}}, None),                                  # a click
    ({"selection": {"box": [{"x": ["yesterday", "today"]}]}}, None),
    (None, None),
])
def test_a_box_selection_is_a_time_range(event, expected):
    from ui.timerange import zoom_range

    assert zoom_range(event) == expected


def test_a_zoom_sets_the_global_window_on_every_page(app_env, sample_logs):
    """What the chart's on_select callback does (timerange._set_custom), then a page switch:
    the zoomed window holds on the next page too."""
    at = render(app_env(sample_logs), "pages/latency.py")
    at.session_state["range_preset"] = "Custom"
    at.session_state["custom_from_d"], at.session_state["custom_from_t"] = date(2026, 11, 17), time(9, 0)
    at.session_state["custom_to_d"], at.session_state["custom_to_t"] = date(2026, 11, 17), time(12, 30)
    at.run()
    at.switch_page("pages/errors.py")
    at.run()
    assert not at.exception
    cap = " ".join(c.value for c in at.sidebar.caption)
    assert "2026-11-17 09:00 → 2026-11-17 12:30 UTC" in cap

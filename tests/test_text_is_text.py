"""Text from the logs stays text everywhere it goes: Markdown, HTML, Plotly labels, exports.

One escaping path (monitoring.fmt): a table of hostile strings through each function, then
each place they reach (charts, the weekly exports, CSV downloads, every page) checked for the
raw string and for its escaped form.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring import charts
from monitoring.drift import OverTime
from monitoring.drift import charts as drift_charts
from monitoring.fmt import cell, html, label, md, safe_frame

HOSTILE = [
    "**bold** [link](http://x)",
    "![beacon](http://beacon.invalid/b.png)",
    "<script>alert(1)</script>",
    "<i>v2</i> &amp; <b>x</b>",
    "<a href='http://x'>l</a>",
    ":red[alarm] :material/home: $x^2$",
    "=HYPERLINK(\"http://x\",\"y\")",
]
RAW_MARKERS = ["](http", "<script", "<i>", "<b>", "<a ", "**bold**", ":red[alarm", "$x^2"]


def unescaped(marker: str, text: str) -> bool:
    """`marker` occurs in `text` as live Markdown: its first character not escaped."""
    return re.search(r"(?<!\\)" + re.escape(marker), text) is not None


# -- the functions ------------------------------------------------------------------------------

MD = [
    ("**bold** [link](http://x)", r"\*\*bold\*\* \[link\]\(http\:\/\/x\)"),
    ("![b](http://e/b.png)", r"\!\[b\]\(http\:\/\/e\/b\.png\)"),
    ("<script>", r"\<script\>"),
    (":red[x]", r"\:red\[x\]"),
    ("$x$", r"\$x\$"),
    ("www.example.com", r"www\.example\.com"),
    ("a\nb\tc", "a b c"),
    ("plain text 12", "plain text 12"),
]


@pytest.mark.parametrize(("text", "expected"), MD)
def test_md_escapes_every_markdown_construct(text, expected):
    assert md(text) == expected


def test_md_limits_length_only_when_asked():
    assert md("x" * 400) == "x" * 299 + "…" and md("x" * 400, limit=None) == "x" * 400


HTML = [("<script>a</script>", "&lt;script&gt;a&lt;/script&gt;"), ("a & b", "a &amp; b"),
        ("\"q\" 'q'", "&quot;q&quot; &#x27;q&#x27;"), ("ok", "ok")]


@pytest.mark.parametrize(("text", "expected"), HTML)
def test_html_escapes_elements_and_attributes(text, expected):
    assert html(text) == expected


LABEL = [("<i>v2</i>", "&lt;i&gt;v2&lt;/i&gt;"), ("a & b", "a &amp; b"), ("<br>", "&lt;br&gt;"),
         ("v1.2", "v1.2"), (3, "3")]


@pytest.mark.parametrize(("value", "expected"), LABEL)
def test_label_makes_plotly_show_tags_as_typed(value, expected):
    assert label(value) == expected


# The OWASP rule: =, +, -, @, tab and carriage return start a formula; an apostrophe makes text.
CELLS = [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
         ("\rx", "'\rx"), ("a=b", "a=b"), ("", ""), ("ok", "ok"), (-1, -1), (None, None), (1.5, 1.5)]


@pytest.mark.parametrize(("value", "expected"), CELLS)
def test_cell_neutralises_formulas(value, expected):
    assert cell(value) == expected


def test_safe_frame_applies_cell_to_text_columns_only():
    df = pl.DataFrame({"t": [v for v, _ in CELLS if isinstance(v, str) or v is None],
                       "n": list(range(10))})
    out = safe_frame(df)
    assert out["t"].to_list() == [cell(v) for v in df["t"].to_list()]
    assert out["n"].to_list() == df["n"].to_list() and out.schema == df.schema


# -- charts -----------------------------------------------------------------------------------

def _strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list | tuple):
        return [s for v in obj for s in _strings(v)]
    return []


def _assert_text_only(fig, values):
    texts = _strings(json.loads(fig.to_json())["data"]) + _strings(json.loads(fig.to_json())["layout"].get("yaxis", {}))
    joined = "\n".join(texts)
    for v in values:
        if "<" in v or "&" in v:
            assert v not in joined, v
        assert label(v) in joined, v


def _times(n):
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    return [t0 + timedelta(hours=i) for i in range(n)]


def test_errors_by_type_legend_names():
    types = pl.DataFrame({"time": _times(len(HOSTILE)), "error_type": HOSTILE, "errors": [1] * len(HOSTILE)})
    _assert_text_only(charts.errors_by_type(types, 3600), HOSTILE)


def test_breakdown_bars_axis_categories():
    df = pl.DataFrame({"key": HOSTILE, "p95": [1.0] * len(HOSTILE)})
    _assert_text_only(charts.breakdown_bars(df, "p95", "P95 by version", "ms"), HOSTILE)


def test_alert_timeline_labels_and_hover():
    n = len(HOSTILE)
    h = pl.DataFrame({"title": ["Drift"] * n, "subject": HOSTILE, "area": ["drift"] * n,
                      "started_at": _times(n), "resolved_at": [None] * n, "message": HOSTILE},
                     schema_overrides={"resolved_at": pl.Datetime("us", "UTC")})
    fig = charts.alert_timeline(h, _times(1)[0], _times(n + 1)[-1])
    _assert_text_only(fig, [f"Drift: {v}" for v in HOSTILE])
    _assert_text_only(fig, HOSTILE)


def test_drift_heatmap_feature_names():
    n = len(HOSTILE)
    ot = OverTime(chunk="day", chunks=pl.DataFrame({"k": [0], "start": _times(1), "end": _times(2)[1:], "rows": [10]}),
                  scores=pl.DataFrame({"name": HOSTILE, "role": ["feature"] * n, "k": [0] * n,
                                       "method": ["psi"] * n, "score": [0.1] * n, "p_value": [None] * n,
                                       "threshold": [0.2] * n, "band": [0.15] * n, "drifted": [False] * n,
                                       "n": [10] * n},
                                      schema_overrides={"p_value": pl.Float64}))
    _assert_text_only(drift_charts.heatmap(ot, HOSTILE), HOSTILE)


def test_drift_distribution_categories():
    dist = pl.DataFrame({"bin": HOSTILE, "x": list(range(len(HOSTILE))), "reference": [0.1] * len(HOSTILE),
                         "current": [0.2] * len(HOSTILE)})
    _assert_text_only(drift_charts.distributions(dist, SimpleNamespace(kind="categorical")), HOSTILE)


def test_labelling_trend_groups():
    from monitoring.labelling.charts import trend_figure

    n = len(HOSTILE)
    trend = pl.DataFrame({"group": HOSTILE, "at": _times(n), "accuracy": [0.5] * n, "ci_low": [0.4] * n,
                          "ci_high": [0.6] * n, "name": HOSTILE, "n": [10] * n})
    _assert_text_only(trend_figure(trend), HOSTILE)


# -- exports ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hostile_week_summary(sample_logs):
    from monitoring.config import load_config
    from monitoring.logs.workspace import open_workspace
    from monitoring.reports.summary import weekly_summary

    s = weekly_summary(open_workspace(load_config(overrides={"logs": str(sample_logs)})), "2026-W47")
    s["versions"] = {"deployed": [{"version": v, "first_seen": datetime(2026, 11, 17, tzinfo=UTC)} for v in HOSTILE],
                     "retired": []}
    s["alerts"] = [{"title": v, "subject": v, "message": v, "start": datetime(2026, 11, 18, tzinfo=UTC), "end": None}
                   for v in HOSTILE]
    s["areas"]["drift"]["reason"] = "Inputs " + ", ".join(HOSTILE) + " drifted."
    s["logs"] = "logs/<script>x</script>"
    return s


def test_markdown_export_keeps_log_text_inert(hostile_week_summary):
    from monitoring.reports.export import to_markdown

    text = to_markdown(hostile_week_summary)
    for marker in RAW_MARKERS:
        assert not unescaped(marker, text), marker
    for v in HOSTILE:
        assert md(v, limit=None) in text


def test_html_export_escapes_log_text(hostile_week_summary):
    from monitoring.reports.export import to_html

    page = to_html(hostile_week_summary)
    body = page[page.index("<body>"):]
    for v in HOSTILE:
        assert html(v) in body
    for marker in ("<script>alert", "<i>v2", "<a href='http://x'", "<b>x"):
        assert marker not in body


def test_labelling_csv_export_neutralises_formula_cells(tmp_path, hostile_logs_file):
    from monitoring.config import load_config
    from monitoring.labelling import export
    from monitoring.labelling.db import open_db
    from monitoring.labelling.queues import create_queue
    from monitoring.labelling.sampling import QueueSpec
    from monitoring.logs.workspace import open_workspace
    from monitoring.query.filters import Filters

    ws = open_workspace(load_config(overrides={"logs": str(hostile_logs_file), "data_dir": str(tmp_path)}))
    engine = open_db(f"sqlite:///{tmp_path / 'q.sqlite'}")
    qid = create_queue(engine, ws.source, ws.con, QueueSpec(filters=Filters(), size=20, seed=1),
                       created_by="=cmd|' /C calc'!A0")
    from monitoring.labelling.queues import answer, claim_next

    for _ in range(5):
        item = claim_next(engine, qid, "=evil")
        answer(engine, item, "=evil", "wrong", correct_label="-2+3", comment="@SUM(1)")
    for kind in export.KINDS:
        rows = list(csv.reader(io.StringIO(export.export_bytes(engine, qid, kind, "csv").decode())))
        cells = [c for row in rows[1:] for c in row]
        assert cells and not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells), kind
        assert any(c.startswith("'=") or c.startswith("'-") or c.startswith("'@") for c in cells), kind
    # Parquet and JSON lines keep the values exactly.
    frame = pl.read_parquet(io.BytesIO(export.export_bytes(engine, qid, "events", "parquet")))
    assert "=evil" in frame["reviewer"].to_list()
    engine.dispose()


# -- pages --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hostile_logs_file(tmp_path_factory):
    """Two weeks of traffic whose version, endpoint, error type, prediction and one feature's
    name are hostile; the hostile version is deployed in the second week."""
    rng = np.random.default_rng(4)
    n = 4000
    t0 = datetime(2026, 11, 2, tzinfo=UTC)
    ts = [t0 + timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 14 * 86400, n))]
    late = np.array([t >= t0 + timedelta(days=9) for t in ts])
    status = np.where(rng.random(n) < 0.05, "error", "ok")
    table = pa.table({
        "request_id": [f"r{i}" for i in range(n)],
        "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "model_version": np.where(late, HOSTILE[0], "v1").tolist(),
        "endpoint": rng.choice(HOSTILE[2:4], n).tolist(),
        "latency_ms": rng.gamma(2, 60, n), "status": status.tolist(),
        "error_type": [rng.choice(HOSTILE) if s == "error" else None for s in status],
        "prediction": rng.choice(["=1+1", "b"], n).tolist(),
        HOSTILE[1]: rng.normal(0, 1, n),
        "comment": rng.choice(HOSTILE, n).tolist(),
    })
    path = tmp_path_factory.mktemp("hostile") / "hostile.parquet"
    pq.write_table(table, path)
    return path


ALL_PAGES = ["pages/overview.py", "pages/latency.py", "pages/errors.py", "pages/throughput.py",
             "pages/drift.py", "pages/summary.py", "pages/alerts.py", "pages/queues.py",
             "pages/compare.py", "pages/models.py"]


def _rendered_markdown(at) -> list[str]:
    out = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "subheader"):
        out += [str(e.value) for e in getattr(at, kind)]
        out += [str(e.value) for e in getattr(at.sidebar, kind)]
    out += [str(m.label) + " " + str(m.value) for m in at.metric]
    return out


@pytest.mark.parametrize("page", ALL_PAGES)
def test_no_page_renders_log_text_as_markup(app_env, hostile_logs_file, page):
    at = app_env(hostile_logs_file)
    at.run()
    at.sidebar.selectbox(key="range_preset").set_value("All data")
    at.run()
    if page != "pages/overview.py":
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    for text in _rendered_markdown(at):
        for marker in RAW_MARKERS:
            assert not unescaped(marker, text), (marker, text[:200])
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        data_text = "\n".join(_strings(spec["data"]))
        for v in HOSTILE:
            if "<" in v:
                assert v not in data_text, (page, v)


def test_weekly_health_shows_the_hostile_version_literally(app_env, hostile_logs_file):
    at = app_env(hostile_logs_file)
    at.run()
    at.switch_page("pages/summary.py")
    at.run()
    at.selectbox(key="summary_week").set_value("2026-W46")
    at.run()
    assert not at.exception
    lines = [m.value for m in at.markdown]
    assert any(md(HOSTILE[0]) in line for line in lines)          # "Version **bold** [link](...) first served"
    assert not any("[link](http" in line for line in lines)
    # What Markdown displays once the escapes are read: exactly the version as logged.
    shown = [re.sub(r"\\(.)", r"\1", line) for line in lines]
    assert any(HOSTILE[0] in line for line in shown)

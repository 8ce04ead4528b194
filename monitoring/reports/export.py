"""Exports of the weekly summary: Markdown, and a self-contained HTML page that opens offline.

The HTML carries Plotly's JavaScript inline (no network), and every text that could come
from the logs (versions, feature names, messages, the logs path) is escaped for where it goes,
through monitoring.fmt: `html` in the HTML, `md` in the Markdown (which renderers would
otherwise pass raw HTML and links through), `label` in chart text. It is shown, never run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from ..fmt import html, md
from ..fmt import ms as _ms
from ..fmt import pct as _pct

STATUS_ICON = {"green": "🟢", "amber": "🟠", "red": "🔴", "grey": "⚪"}
STATUS_COLOR = {"green": "#2e7d32", "amber": "#ef6c00", "red": "#c62828", "grey": "#757575"}
AREA_TITLES = {"traffic": "Traffic", "availability": "Availability", "latency": "Latency",
               "errors": "Errors", "drift": "Drift", "accuracy": "Labelled accuracy", "quality": "Model quality"}


def _t(v: Any) -> str:
    if isinstance(v, datetime):
        return v.strftime("%a %Y-%m-%d %H:%M UTC")
    return "–" if v is None else str(v)


def _signed(v: float | None, fmt: str) -> str:
    return "–" if v is None else format(v, "+" + fmt)


def figures(s: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(area, figure, value) rows: every number the page shows, in words a reader knows."""
    a = s["areas"]
    rows = [
        ("traffic", "Requests", f"{a['traffic'].get('requests', 0):,}"),
        ("traffic", "Change on last week", _signed(a["traffic"].get("change"), ".1%")),
        ("traffic", "Requests per minute", f"{a['traffic'].get('requests_per_minute') or 0:,.2f}"),
        ("availability", "Successful requests", _pct(a["availability"].get("availability"), 3)),
        ("availability", "Minutes without traffic", str(a["availability"].get("downtime_minutes", 0))),
        ("latency", "P50", _ms(a["latency"].get("p50"))),
        ("latency", "P95", _ms(a["latency"].get("p95"))),
        ("latency", "P99", _ms(a["latency"].get("p99"))),
        ("latency", "P95 change on last week", _signed(a["latency"].get("p95_change"), ".1%")),
        ("latency", "P95 objective", _ms(a["latency"].get("slo_ms"))),
        ("latency", "Percentiles", a["latency"].get("method") or "–"),
        ("errors", "Error rate", _pct(a["errors"].get("error_rate"))),
        ("errors", "Failed requests", f"{a['errors'].get('errors') or 0:,}"),
        ("errors", "Change on last week (points)", _signed(
            None if a["errors"].get("error_rate_change") is None else a["errors"]["error_rate_change"] * 100, ".2f")),
        ("errors", "Objective", _pct(a["errors"].get("objective"), 0)),
    ]
    d = a["drift"]
    rows.append(("drift", "Drifted over the week", ", ".join(d.get("drifted") or []) or "none"))
    some = d.get("drifted_some_days") or {}
    rows.append(("drift", "Drifted on some days", "; ".join(f"{k}: {', '.join(v)}" for k, v in some.items()) or "none"))
    rows.append(("drift", "Features and outputs checked", str(d.get("features_checked", 0))))
    acc = a["accuracy"]
    ci = acc.get("accuracy_ci")
    rows.append(("accuracy", "Accuracy", _pct(acc.get("accuracy"), 1)))
    rows.append(("accuracy", "95% interval", "–" if not ci else f"{_pct(ci[0], 1)} – {_pct(ci[1], 1)}"))
    rows.append(("accuracy", "Predictions labelled",
                 "unavailable" if acc.get("available") is False and acc.get("labelled") is None
                 else str(acc.get("labelled") or 0)))
    if s.get("quality"):
        from ..quality.summary import figure_rows

        rows += figure_rows(s["quality"])
    return rows


def to_markdown(s: dict[str, Any]) -> str:
    lines = [f"# Weekly model health: {md(s['week'])}", "",
             f"{_t(s['start'])} to {_t(s['end'])} · logs {_md(s['logs'])}", "",
             f"**{STATUS_ICON[s['status']]} {_md(s['headline'])}**", "",
             "| Area | Status | Why |", "| --- | --- | --- |"]
    for name, a in s["areas"].items():
        lines.append(f"| {AREA_TITLES[name]} | {STATUS_ICON[a['status']]} {a['status']} | {_md(a['reason'])} |")
    lines += ["", "## Figures", "", "| Area | Figure | Value |", "| --- | --- | --- |"]
    for area, fig, value in figures(s):
        lines.append(f"| {AREA_TITLES[area]} | {fig} | {_md(value)} |")
    lines += ["", "## What happened", ""]
    lines += events(s, _md) or ["Nothing: no deployments, no retirements, no alerts."]
    if s.get("daily"):
        lines += ["", "## Day by day", "", "| Day | Requests | Error rate | Worst hour P95 |", "| --- | ---: | ---: | ---: |"]
        for d in s["daily"]:
            lines.append(f"| {d['day']:%a %d %b} | {d['requests']:,} | {_pct(d['error_rate'])} | {_ms(d['worst_hour_p95'])} |")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    # Every punctuation mark escaped (a pipe cannot break the table, `<script>` stays text),
    # on one line, never cut short.
    return md(text, limit=None)


def events(s: dict[str, Any], esc) -> list[str]:
    """What happened, as Markdown list lines; `esc` escapes text from the logs."""
    out = []
    for v in s["versions"]["deployed"]:
        out.append(f"- Version {esc(v['version'])} first served on {_t(v['first_seen'])}.")
    for v in s["versions"]["retired"]:
        out.append(f"- Version {esc(v['version'])} last served on {_t(v['last_seen'])}.")
    for al in s.get("alerts", []):
        end = "still firing" if al["end"] is None else f"resolved {_t(al['end'])}"
        who = "" if al["subject"] == "service" else f" ({esc(al['subject'])})"
        out.append(f"- Alert **{esc(al['title'])}**{who}: fired {_t(al['start'])}, {end}. "
                   f"{esc(al['message'][:1].upper() + al['message'][1:])}.")
    if s.get("alerts_error"):
        out.append(f"- Alerts unavailable: the alert rules could not be evaluated ({esc(s['alerts_error'])}).")
    return out


def charts(s: dict[str, Any]) -> list[go.Figure]:
    days = [d["day"] for d in s.get("daily", [])]
    if not days:
        return []
    slo = s["slo"]
    req = go.Figure(go.Bar(x=days, y=[d["requests"] for d in s["daily"]], marker_color="#1f77b4"))
    req.update_layout(title="Requests per day", yaxis_title="requests")
    lat = go.Figure(go.Scatter(x=days, y=[d["worst_hour_p95"] for d in s["daily"]], mode="lines+markers",
                               name="worst hour P95"))
    lat.add_hline(y=slo["p95_latency_ms"], line=dict(color="#c62828", dash="dash"), annotation_text="SLO")
    lat.update_layout(title="Worst hourly P95 latency per day", yaxis_title="ms")
    err = go.Figure(go.Scatter(x=days, y=[(d["error_rate"] or 0) * 100 for d in s["daily"]], mode="lines+markers",
                               line=dict(color="#c62828")))
    err.add_hline(y=slo["error_rate"] * 100, line=dict(color="#555", dash="dash"), annotation_text="objective")
    err.update_layout(title="Error rate per day", yaxis_title="% of requests")
    for f in (req, lat, err):
        # Axes make room for their own tick labels and titles (no "3000" cut to "0").
        f.update_layout(height=280, margin=dict(l=10, r=10, t=40, b=10), xaxis_title="day (UTC)")
        f.update_xaxes(automargin=True)
        f.update_yaxes(automargin=True)
    return [req, lat, err]


def to_html(s: dict[str, Any]) -> str:
    e = html
    chart_html = "".join(pio.to_html(f, include_plotlyjs=False, full_html=False,
                                 config={"displayModeBar": False, "staticPlot": False}) for f in charts(s))
    rows = "".join(
        f"<tr><td>{e(AREA_TITLES[n])}</td><td><span class='dot' style='background:{STATUS_COLOR[a['status']]}'>"
        f"</span>{e(a['status'])}</td><td>{e(a['reason'])}</td></tr>" for n, a in s["areas"].items())
    figs = "".join(f"<tr><td>{e(AREA_TITLES[a])}</td><td>{e(f)}</td><td>{e(v)}</td></tr>" for a, f, v in figures(s))
    happened = events(s, e) or ["- Nothing: no deployments, no retirements, no alerts."]
    ev = "".join(f"<li>{x[2:].replace('**', '')}</li>" for x in happened)
    plotly_js = get_plotlyjs() if chart_html else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Weekly model health {e(s['week'])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 2rem auto; max-width: 980px;
        color: #222; line-height: 1.45; padding: 0 1rem; }}
h1 {{ margin-bottom: .2rem; }} .sub {{ color: #666; margin-top: 0; }}
.headline {{ border-left: 6px solid {STATUS_COLOR[s['status']]}; padding: .6rem 1rem; background: #fafafa; font-weight: 600; }}
table {{ border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }}
td, th {{ border-bottom: 1px solid #e5e5e5; padding: .4rem .5rem; text-align: left; vertical-align: top; }}
.dot {{ display: inline-block; width: .8rem; height: .8rem; border-radius: 50%; margin-right: .4rem; }}
.charts {{ display: grid; grid-template-columns: 1fr; gap: .5rem; }}
</style>
<script>{plotly_js}</script>
</head><body>
<h1>Weekly model health: {e(s['week'])}</h1>
<p class="sub">{e(_t(s['start']))} to {e(_t(s['end']))} · logs {e(str(s['logs']))}</p>
<p class="headline">{e(s['headline'])}</p>
<table><tr><th>Area</th><th>Status</th><th>Why</th></tr>{rows}</table>
<h2>What happened</h2><ul>{ev}</ul>
<h2>Charts</h2><div class="charts">{chart_html or '<p>No traffic this week.</p>'}</div>
<h2>Figures</h2><table><tr><th>Area</th><th>Figure</th><th>Value</th></tr>{figs}</table>
</body></html>
"""

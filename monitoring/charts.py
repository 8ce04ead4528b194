"""Plotly figures for the pages. Pure: frames in, figures out; no Streamlit.

Text from the logs (versions, endpoints, error types, rule subjects, messages) goes through
`fmt.label` wherever it reaches a figure (legend names, axis categories, hover text): Plotly
reads a subset of HTML in all of them, so a version named `<i>v2</i>` shows as typed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import polars as pl

from .fmt import label, labels
from .metrics import sketch

OK_COLOR = "#2e7d32"
WARN_COLOR = "#ef6c00"
BAD_COLOR = "#c62828"
LINE_COLORS = {"p50": "#1f77b4", "p95": "#ff7f0e", "p99": "#9467bd"}


TIME_HOVER = "%Y-%m-%d %H:%M UTC"


def _layout(fig: go.Figure, title: str, y_title: str, height: int = 360) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10),
                      yaxis_title=y_title, xaxis_title="time (UTC)", hovermode="x unified",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    # Every time tooltip says the zone; every value its unit (set per trace).
    fig.update_xaxes(hoverformat=TIME_HOVER)
    return fig


def _hover(unit: str, fmt: str = ",.0f") -> str:
    return "%{fullData.name}: %{y:" + fmt + "} " + unit + "<extra></extra>"


def add_markers(fig: go.Figure, events: Sequence[tuple]) -> go.Figure:
    """Vertical markers for (time, text, kind) events: kind "deploy" or an alert area.
    Texts from the logs (versions, rule subjects) are escaped for Plotly here."""
    for t, text, kind in events:
        color = "#455a64" if kind == "deploy" else AREA_COLORS.get(kind, "#555")
        fig.add_vline(x=t, line=dict(color=color, width=1, dash="dot" if kind == "deploy" else "dashdot"))
        fig.add_annotation(x=t, y=1, yref="paper", text=label(text), showarrow=False, textangle=-90,
                           xanchor="right", yanchor="top", font=dict(size=10, color=color))
    return fig


def percentile_lines(buckets: pl.DataFrame, slo_ms: float, log: bool = False) -> go.Figure:
    fig = go.Figure()
    for col in ("p50", "p95", "p99"):
        fig.add_trace(go.Scatter(x=buckets["time"].to_list(), y=buckets[col].to_list(), name=col.upper(),
                                 mode="lines", line=dict(color=LINE_COLORS[col]), hovertemplate=_hover("ms")))
    fig.add_hline(y=slo_ms, line=dict(color=BAD_COLOR, dash="dash"),
                  annotation_text=f"P95 SLO {slo_ms:,.0f} ms", annotation_position="top left")
    _layout(fig, "Latency percentiles (successful requests)", "milliseconds" + (" (log scale)" if log else ""))
    if log:
        fig.update_yaxes(type="log")
    return fig


def latency_distribution(hist: pl.DataFrame, slo_ms: float) -> go.Figure:
    """Histogram of successful latencies from log-spaced bins, merged to ~60 bars."""
    fig = go.Figure()
    if hist.height:
        h = hist.filter(pl.col("bin") != sketch.ZERO_BIN)
        merge = max(1, (int(h["bin"].max()) - int(h["bin"].min()) + 1) // 60)
        g = h.with_columns((pl.col("bin") // merge).alias("g")).group_by("g").agg(
            pl.col("n").sum(), pl.col("bin").min().alias("lo"), pl.col("bin").max().alias("hi")).sort("g")
        # Each merged bar spans its bins' edges: gamma^(lo-1) .. gamma^hi, drawn as steps
        # (bars on a log axis would get linear widths).
        left = np.power(sketch.GAMMA, g["lo"].to_numpy() - 1.0)
        right = np.power(sketch.GAMMA, g["hi"].to_numpy().astype(float))
        x = np.column_stack([left, right]).ravel()
        y = np.repeat(g["n"].to_numpy(), 2)
        fig.add_trace(go.Scatter(x=x.tolist(), y=y.tolist(), name="requests", mode="lines",
                                 line=dict(color="#1f77b4", shape="hv"), fill="tozeroy",
                                 hovertemplate="%{x:.0f} ms: %{y} requests<extra></extra>"))
    fig.add_vline(x=slo_ms, line=dict(color=BAD_COLOR, dash="dash"), annotation_text="SLO")
    fig.update_xaxes(type="log", title="latency (ms, log scale)")
    fig.update_layout(title="Latency distribution (successful requests)", height=320,
                      margin=dict(l=10, r=10, t=50, b=10), yaxis_title="requests", bargap=0.05)
    return fig


def error_rate_line(buckets: pl.DataFrame, slo_rate: float) -> go.Figure:
    fig = go.Figure(go.Scatter(x=buckets["time"].to_list(), y=(buckets["error_rate"] * 100).to_list(),
                               name="error rate", mode="lines", line=dict(color=BAD_COLOR),
                               hovertemplate=_hover("% of requests", ",.2f")))
    fig.add_hline(y=slo_rate * 100, line=dict(color="#555", dash="dash"),
                  annotation_text=f"SLO {slo_rate:.0%}", annotation_position="top left")
    return _layout(fig, "Error rate", "% of requests")


def errors_by_type(types: pl.DataFrame, bucket_s: int, window: tuple | None = None) -> go.Figure:
    """Stacked bars per bucket; bars are as wide as their bucket, the axis spans the window."""
    fig = go.Figure()
    for et in sorted(types["error_type"].unique().to_list()):
        part = types.filter(pl.col("error_type") == et)
        fig.add_trace(go.Bar(x=part["time"].to_list(), y=part["errors"].to_list(), name=label(et),
                             width=bucket_s * 1000 * 0.9, offset=0, hovertemplate=_hover("failed requests")))
    fig.update_layout(barmode="stack")
    if window:
        fig.update_xaxes(range=list(window))
    return _layout(fig, "Failed requests by error type", "failed requests")


def throughput(frame: pl.DataFrame, bucket_minutes: float, spikes: Sequence, gaps: Sequence) -> go.Figure:
    """Requests per minute with the expected level, spikes marked and gaps shaded."""
    rpm = (frame["requests"] / bucket_minutes).to_list()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=frame["time"].to_list(), y=rpm, name="requests/min", mode="lines",
                             line=dict(color="#1f77b4"), hovertemplate=_hover("requests/min", ",.1f")))
    fig.add_trace(go.Scatter(x=frame["time"].to_list(), y=(frame["expected"] / bucket_minutes).to_list(),
                             name="expected", mode="lines", line=dict(color="#999", dash="dot"),
                             hovertemplate=_hover("requests/min", ",.1f")))
    if spikes:
        fig.add_trace(go.Scatter(x=[s.time for s in spikes], y=[s.requests / bucket_minutes for s in spikes],
                                 name="spike", mode="markers",
                                 marker=dict(color=WARN_COLOR, size=11, symbol="triangle-up")))
    for g in gaps:
        fig.add_vrect(x0=g.start, x1=g.end, fillcolor=BAD_COLOR, opacity=0.25, line_width=0,
                      annotation_text="gap", annotation_position="top left")
    return _layout(fig, "Throughput", "requests per minute")


def breakdown_bars(df: pl.DataFrame, value: str, title: str, unit: str) -> go.Figure:
    fig = go.Figure(go.Bar(x=labels(str(k) for k in df["key"].to_list()), y=df[value].to_list(),
                           marker_color="#1f77b4"))
    fig.update_xaxes(type="category")   # versions like "1" or "2026-11-01" stay names
    fig.update_layout(title=title, height=300, margin=dict(l=10, r=10, t=50, b=10), yaxis_title=unit)
    return fig


AREA_COLORS = {"latency": "#ff7f0e", "errors": BAD_COLOR, "traffic": "#1f77b4", "drift": "#9467bd",
               "quality": "#8c564b"}


def alert_timeline(history: pl.DataFrame, first, last) -> go.Figure:
    """One row per rule and subject, a bar from fired to resolved (to the end while firing)."""
    fig = go.Figure()
    for r in history.sort("started_at").iter_rows(named=True):
        end = r["resolved_at"] or last
        name = label(r["title"] if r["subject"] == "service" else f"{r['title']}: {r['subject']}")
        fig.add_trace(go.Scatter(
            x=[r["started_at"], end], y=[name, name], mode="lines+markers", showlegend=False,
            line=dict(color=AREA_COLORS.get(r["area"], "#555"), width=10),
            hovertext=label(r["message"]), hoverinfo="text+x"))
    fig.update_xaxes(range=[first, last], title="time (UTC)")
    fig.update_layout(title="When each alert fired", yaxis_title="rule",
                      height=max(220, 60 + 36 * history["title"].n_unique()),
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig

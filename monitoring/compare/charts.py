"""Plotly figures of a comparison: distributions of the two versions overlaid, as shares so
that a 10% canary and its 90% baseline read on one scale. Pure: frames in, figures out.
Version and class names come from the logs: Plotly reads trace names and category labels as
markup, so they are escaped."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from ..fmt import label, labels
from .evidence import VersionStats

COLORS = ("#1f77b4", "#ff7f0e")   # baseline, candidate


def _shares(df: pl.DataFrame, v: str) -> pl.DataFrame:
    d = df.filter(pl.col("v") == v)
    total = d["n"].sum() or 1
    return d.with_columns((pl.col("n") / total).alias("share"))


def _layout(fig: go.Figure, title: str, x_title: str, log_x: bool = False) -> go.Figure:
    fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=50, b=10), barmode="overlay",
                      xaxis_title=x_title, yaxis_title="share of requests", yaxis_tickformat=".0%",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def overlay(df: pl.DataFrame, baseline: str, candidate: str, title: str, x_title: str,
            log_x: bool = False) -> go.Figure:
    """Two distributions (columns v, x, n) as lines of shares."""
    fig = go.Figure()
    for v, color, role in ((baseline, COLORS[0], "baseline"), (candidate, COLORS[1], "candidate")):
        d = _shares(df, v)
        fig.add_trace(go.Scatter(x=d["x"].to_list(), y=d["share"].to_list(), mode="lines", name=label(f"{v} ({role})"),
                                 line=dict(color=color, shape="hvh")))
    return _layout(fig, title, x_title, log_x)


def predictions(a: VersionStats, b: VersionStats) -> go.Figure | None:
    """Class shares of the two versions side by side."""
    if not a.classes and not b.classes:
        return None
    classes = sorted(set(a.classes or {}) | set(b.classes or {}))
    fig = go.Figure()
    for s, color, role in ((a, COLORS[0], "baseline"), (b, COLORS[1], "candidate")):
        total = sum((s.classes or {}).values()) or 1
        fig.add_trace(go.Bar(x=labels(classes), y=[(s.classes or {}).get(c, 0) / total for c in classes],
                             name=label(f"{s.version} ({role})"), marker_color=color))
    fig = _layout(fig, "Predictions by class", "predicted class")
    fig.update_layout(barmode="group")
    return fig

"""Figures for the Queues page (Plotly; no Streamlit here)."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from ..fmt import label as escape


def trend_figure(trend: pl.DataFrame) -> go.Figure:
    """Accuracy per queue over time with 95% Wilson intervals, one line per group
    (`all` and each model version), from results.trend().

    Names come from the logs and the database: Plotly reads a subset of HTML in legend and
    hover text, so they are escaped.
    """
    fig = go.Figure()
    for group in sorted(set(trend["group"].to_list()), key=lambda g: (g != "all", g)):
        g = trend.filter(pl.col("group") == group).sort("at")
        acc = g["accuracy"].to_list()
        fig.add_trace(go.Scatter(
            x=g["at"].to_list(), y=acc, mode="lines+markers", name=escape(group),
            line={"width": 3 if group == "all" else 1.5, "dash": None if group == "all" else "dot"},
            error_y={"type": "data", "symmetric": False,
                     "array": [h - a for h, a in zip(g["ci_high"].to_list(), acc, strict=True)],
                     "arrayminus": [a - lo for lo, a in zip(g["ci_low"].to_list(), acc, strict=True)]},
            customdata=list(zip([escape(n) for n in g["name"].to_list()], g["n"].to_list(),
                                strict=True)),
            hovertemplate="%{customdata[0]}<br>accuracy %{y:.1%} (n=%{customdata[1]})<extra>"
                          + escape(group) + "</extra>",
        ))
    fig.update_layout(yaxis={"title": "accuracy", "tickformat": ".0%", "range": [0, 1.02]},
                      xaxis={"title": "end of the queue's window (UTC)"},
                      legend={"orientation": "h", "y": -0.2}, margin={"t": 20, "b": 10},
                      height=360)
    return fig

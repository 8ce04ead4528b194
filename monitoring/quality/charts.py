"""Plotly figures of the quality report. Pure: the report's dicts in, figures out.

Class names and segment values come from the logs: they are escaped before they reach a
label (Plotly renders a subset of HTML in text), so they show as typed.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ..fmt import label

REALIZED = "#1f77b4"
ESTIMATED = "#ff7f0e"
BAD = "#c62828"


_t = label   # the one escape for Plotly text (monitoring.fmt)


def _layout(fig: go.Figure, title: str, y: str, height: int = 360) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10), yaxis_title=y,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0), hovermode="x unified")
    return fig


def _x(c: dict) -> Any:
    return c["start"] if c["start"] is not None else c["key"]


def over_time(chunks: list[dict], metric: str, floor: float | None = None) -> go.Figure:
    """Realized metric per chunk with its 95% interval; the estimate and its band beside it.
    Chunks with too few labels get no realized point (a gap, never a guess)."""
    fig = go.Figure()
    xs, ys, lo, hi = [], [], [], []
    for c in chunks:
        e = c["metrics"].get(metric) or {}
        xs.append(_x(c))
        ok = e.get("value") is not None
        ys.append(e["value"] if ok else None)
        lo.append(e["value"] - e["ci"][0] if ok and e.get("ci") else None)
        hi.append(e["ci"][1] - e["value"] if ok and e.get("ci") else None)
    fig.add_trace(go.Scatter(x=xs, y=ys, name=f"{metric} (labels, 95% interval)", mode="lines+markers",
                             line=dict(color=REALIZED), connectgaps=False,
                             error_y=dict(type="data", array=hi, arrayminus=lo, visible=True)))
    est = [(c, c["estimated"].get(metric)) for c in chunks if c["estimated"].get(metric, {}).get("value") is not None]
    if est:
        ex = [_x(c) for c, _ in est]
        band = [e.get("band") or [e["value"], e["value"]] for _, e in est]
        fig.add_trace(go.Scatter(x=ex + ex[::-1], y=[b[1] for b in band] + [b[0] for b in band][::-1],
                                 fill="toself", fillcolor="rgba(255,127,14,0.15)", line=dict(width=0),
                                 name="estimate band", hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=ex, y=[e["value"] for _, e in est], name=f"{metric} (estimated)",
                                 mode="lines", line=dict(color=ESTIMATED, dash="dash")))
    if floor is not None:
        fig.add_hline(y=floor, line=dict(color=BAD, dash="dot"), annotation_text="floor")
    fig.update_xaxes(title="chunk start (UTC)" if chunks and chunks[0]["start"] is not None else "chunk")
    return _layout(fig, f"{metric} over time", metric)


def segments(segs: list[dict], metric: str) -> go.Figure:
    """Segments ranked worst first, each with its interval."""
    rows = [s for s in segs if s["metrics"].get(metric, {}).get("value") is not None]
    fig = go.Figure(go.Scatter(
        y=[_t(s["value"]) for s in rows], x=[s["metrics"][metric]["value"] for s in rows], mode="markers",
        error_x=dict(type="data", visible=True,
                     array=[s["metrics"][metric]["ci"][1] - s["metrics"][metric]["value"] for s in rows],
                     arrayminus=[s["metrics"][metric]["value"] - s["metrics"][metric]["ci"][0] for s in rows]),
        marker=dict(color=REALIZED)))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_layout(hovermode="closest")
    return _layout(fig, f"{metric} by {_t(segs[0]['column']) if segs else 'segment'} (worst first, 95% interval)",
                   "segment", height=max(240, 40 + 28 * len(rows)))


def confusion(conf: dict) -> go.Figure:
    labels = [_t(c) for c in conf["labels"]]
    fig = go.Figure(go.Heatmap(z=conf["matrix"], x=labels, y=labels, colorscale="Blues", texttemplate="%{z}",
                               hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_xaxes(title="predicted", type="category")
    fig.update_yaxes(title="true", type="category", autorange="reversed")
    fig.update_layout(title="Confusion matrix (labelled rows)", height=320, margin=dict(l=10, r=10, t=50, b=10))
    return fig


def reliability(curve: list[dict]) -> go.Figure:
    pts = [b for b in curve if b["n"]]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#999", dash="dot"), name="perfect"))
    fig.add_trace(go.Scatter(
        x=[b["confidence"] for b in pts], y=[b["accuracy"] for b in pts], mode="lines+markers", name="observed",
        text=[f"{b['n']:,} labelled" for b in pts],
        error_y=dict(type="data", visible=True, array=[b["accuracy_ci"][1] - b["accuracy"] for b in pts],
                     arrayminus=[b["accuracy"] - b["accuracy_ci"][0] for b in pts])))
    fig.update_xaxes(title="confidence of the predicted class", range=[0, 1])
    fig.update_layout(hovermode="closest")
    return _layout(fig, "Reliability (calibration)", "share correct", height=320)


def fairness_over_time(chunks: list[dict]) -> go.Figure:
    fig = go.Figure()
    for key, name in (("dp_difference", "positive-rate difference"), ("tpr_gap", "TPR gap"), ("fpr_gap", "FPR gap")):
        xs = [c["start"] if c.get("start") is not None else c["chunk"] for c in chunks]
        ys = [c[key]["value"] for c in chunks]
        fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines+markers", connectgaps=False))
    return _layout(fig, "Fairness gaps over time (highest - lowest group)", "gap")


def label_delay(by_day: list[dict]) -> go.Figure:
    """Labels by the number of whole days they arrived after the prediction was served."""
    fig = go.Figure(go.Bar(x=[d["day"] for d in by_day], y=[d["n"] for d in by_day], marker_color=REALIZED))
    fig.update_xaxes(title="days after serving")
    fig.update_layout(hovermode="closest")
    return _layout(fig, "Label delay", "labels", height=280)

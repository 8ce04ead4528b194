"""Plotly figures of drift. Pure: frames and results in, figures out; no Streamlit.

Category values and feature names from the logs go through `fmt.label` wherever they reach a
figure (axis categories, hover text, customdata): Plotly reads a subset of HTML in all of them.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from ..fmt import label, labels
from .engine import FeatureDrift, OverTime

REF_COLOR = "#7f8c9a"
CUR_COLOR = "#1f77b4"
BAD_COLOR = "#c62828"
# score / threshold: green below 0.5, amber towards 1, red from 1 (the threshold) up
RATIO_SCALE = [[0.0, "#e8f5e9"], [0.25, "#a5d6a7"], [0.45, "#fff59d"], [0.5, "#ff8a65"], [1.0, "#b71c1c"]]
RATIO_CAP = 2.0


def _ratio(df: pl.DataFrame) -> pl.DataFrame:
    # p-value tests drift when p < threshold: threshold / p plays the part of score / threshold.
    by_p = pl.col("method") == "chisquare"
    ratio = pl.when(by_p).then(pl.col("threshold") / pl.col("p_value").clip(1e-300, None)) \
        .otherwise(pl.col("score") / pl.col("threshold"))
    return df.with_columns(ratio.clip(0, RATIO_CAP).alias("ratio"))


def heatmap(ot: OverTime, names: list[str]) -> go.Figure:
    """Columns (rows of the map, in the order given) x chunks, coloured by score / threshold."""
    df = _ratio(ot.scores.filter(pl.col("name").is_in(names)))
    chunks = ot.chunks.sort("k")
    x = [f"{t:%Y-%m-%d %H:%M}" for t in chunks["start"].to_list()]
    index = {k: i for i, k in enumerate(chunks["k"].to_list())}
    z = [[None] * len(x) for _ in names]
    text = [[""] * len(x) for _ in names]
    row_of = {n: i for i, n in enumerate(names)}
    for r in df.iter_rows(named=True):
        i, j = row_of[r["name"]], index.get(r["k"])
        if j is None:
            continue
        z[i][j] = r["ratio"]
        score = "–" if r["score"] is None else f"{r['score']:.4f}"
        text[i][j] = label(f"{r['method']} {score} (threshold {r['threshold']:g})"
                      f"{' · DRIFT' if r['drifted'] else ''} · n={r['n']:,}")
    fig = go.Figure(go.Heatmap(
        z=z, x=x, y=labels(names), text=text, zmin=0, zmax=RATIO_CAP, colorscale=RATIO_SCALE,
        hovertemplate="%{y} · %{x}<br>%{text}<extra></extra>",
        colorbar=dict(title="score / threshold", tickvals=[0, 0.5, 1, 1.5, 2],
                      ticktext=["0", "0.5", "1 (drift)", "1.5", "≥2"])))
    fig.update_layout(title="Drift over time: score relative to its threshold",
                      height=max(260, 60 + 22 * len(names)), margin=dict(l=10, r=10, t=50, b=10),
                      xaxis_title=f"{ot.chunk} (UTC)")
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return fig


def score_line(ot: OverTime, name: str, role: str = "feature") -> go.Figure:
    """One column's score per chunk, with its threshold."""
    df = ot.scores.filter((pl.col("name") == name) & (pl.col("role") == role)).join(
        ot.chunks.select("k", "start"), on="k").sort("start")
    fig = go.Figure()
    if df.height:
        use_p = df["method"][0] == "chisquare"
        y = df["p_value"] if use_p else df["score"]
        colors = [BAD_COLOR if d else CUR_COLOR for d in df["drifted"].fill_null(False).to_list()]
        fig.add_trace(go.Scatter(x=df["start"].to_list(), y=y.to_list(), mode="lines+markers",
                                 name=df["method"][0], marker=dict(color=colors, size=8),
                                 line=dict(color=CUR_COLOR),
                                 customdata=df["n"].to_list(),
                                 hovertemplate="%{x}<br>%{y:.4f} · n=%{customdata:,}<extra></extra>"))
        fig.add_hline(y=float(df["threshold"][0]), line=dict(color=BAD_COLOR, dash="dash"),
                      annotation_text=f"threshold {df['threshold'][0]:g}", annotation_position="top left")
        title = f"{df['method'][0]} {'p-value' if use_p else 'score'} per {ot.chunk}"
    else:
        title = "No chunk could be scored"
    fig.update_layout(title=title, height=300, margin=dict(l=10, r=10, t=50, b=10),
                      xaxis_title=f"{ot.chunk} start (UTC)", showlegend=False)
    return fig


def distributions(dist: pl.DataFrame, f: FeatureDrift) -> go.Figure:
    """Reference and current shares, overlaid: histogram bars for numbers, bars for categories."""
    fig = go.Figure()
    numeric = f.kind == "numeric"
    x = dist["x"].to_list() if numeric else labels(dist["bin"].to_list())
    for side, color in (("reference", REF_COLOR), ("current", CUR_COLOR)):
        fig.add_trace(go.Bar(x=x, y=dist[side].to_list(), name=side, marker_color=color,
                             opacity=0.6 if numeric else 0.9, customdata=labels(dist["bin"].to_list()),
                             hovertemplate="%{customdata}: %{y:.2%}<extra>" + side + "</extra>"))
    fig.update_layout(barmode="overlay" if numeric else "group", bargap=0.02 if numeric else 0.2,
                      title="Distribution: reference vs current (share of non-null values)",
                      height=340, margin=dict(l=10, r=10, t=50, b=10), yaxis_tickformat=".0%",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    if not numeric:
        fig.update_xaxes(type="category")
    return fig

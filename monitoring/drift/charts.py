"""Plotly figures of drift. Pure: frames and results in, figures out; no Streamlit.

Category values and feature names from the logs go through `fmt.label` wherever they reach a
figure (axis categories, hover text, customdata): Plotly reads a subset of HTML in all of them.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from ..fmt import label, labels
from .engine import FeatureDrift
from .overtime import OverTime, ratio

REF_COLOR = "#7f8c9a"
CUR_COLOR = "#1f77b4"
BAD_COLOR = "#c62828"
# score / threshold: green below 0.5, amber towards 1, red from 1 (the threshold) up
RATIO_SCALE = [[0.0, "#e8f5e9"], [0.25, "#a5d6a7"], [0.45, "#fff59d"], [0.5, "#ff8a65"], [1.0, "#b71c1c"]]
RATIO_CAP = 2.0


def _ratio(df: pl.DataFrame) -> pl.DataFrame:
    # score / max(threshold, band): 1 is the decision line whichever of the two decides;
    # p-value tests drift when p < threshold, so threshold / p plays that part.
    return ratio(df).with_columns(pl.col("ratio").clip(0, RATIO_CAP))


def chunk_labels(ot: OverTime) -> list[str]:
    """One label per chunk, in order: its start, or its rows when the logs have no time."""
    out = []
    for r in ot.chunks.sort("k").iter_rows(named=True):
        if ot.chunk.startswith("rows") or r["start"] is None:
            out.append(f"rows {r['first_row']:,}–{r['last_row']:,}")
        else:
            out.append(f"{r['start']:%Y-%m-%d %H:%M}" if ot.chunk == "hour" else f"{r['start']:%Y-%m-%d}")
    return out


def heatmap(ot: OverTime, names: list[str]) -> go.Figure:
    """Columns (rows of the map, in the order given) x chunks, coloured by score / threshold."""
    df = _ratio(ot.scores.filter(pl.col("name").is_in(names)))
    chunks = ot.chunks.sort("k")
    x = chunk_labels(ot)
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
        band = "" if r["band"] is None else f", chance band {r['band']:.4f}"
        text[i][j] = label(f"{r['method']} {score} (threshold {r['threshold']:g}{band})"
                      f"{' · DRIFT' if r['drifted'] else ''} · n={r['n']:,}")
    fig = go.Figure(go.Heatmap(
        z=z, x=x, y=labels(names), text=text, zmin=0, zmax=RATIO_CAP, colorscale=RATIO_SCALE,
        hovertemplate="%{y} · %{x}<br>%{text}<extra></extra>",
        colorbar=dict(title="score / max(threshold, band)", tickvals=[0, 0.5, 1, 1.5, 2],
                      ticktext=["0", "0.5", "1 (drift)", "1.5", "≥2"])))
    # Plotly heatmaps emit no selection events: an all-but-invisible square marker per cell
    # carries (chunk, column) so that a click on a cell selects it (st.plotly_chart on_select)
    cells = [(j, i) for i in range(len(names)) for j in range(len(x))]
    shown = labels(names)
    ks = chunks["k"].to_list()
    fig.add_trace(go.Scatter(
        x=[x[j] for j, _ in cells], y=[shown[i] for _, i in cells], mode="markers",
        marker=dict(symbol="square", size=max(4, min(24, 900 // max(len(x), 1))), opacity=0.01, color="#000"),
        # (chunk, row index): the page maps the row back to its column, so no name from the
        # logs sits in the figure unescaped.
        customdata=[[ks[j], i] for j, i in cells], hoverinfo="skip", showlegend=False))
    fig.update_layout(title="Drift over time: score relative to its threshold or chance band",
                      height=max(260, 90 + 20 * len(names)), margin=dict(l=10, r=10, t=50, b=10),
                      xaxis_title=f"{ot.chunk} chunks" + ("" if ot.chunk.startswith("rows") else " (UTC)"),
                      yaxis_title="column", clickmode="event+select")
    # every row labelled, however many chunks or columns (Plotly would skip some)
    fig.update_yaxes(autorange="reversed", type="category", tickmode="array", tickvals=shown,
                     ticktext=shown)
    fig.update_xaxes(type="category")
    return fig


def score_line(ot: OverTime, name: str, role: str = "feature") -> go.Figure:
    """One column's score per chunk, with its threshold and its chance band per chunk
    (the band moves with each chunk's size: a chunk drifts above both)."""
    df = ot.scores.filter((pl.col("name") == name) & (pl.col("role") == role)).join(
        ot.chunks.select("k", "start"), on="k").sort("k")
    by_k = dict(zip(ot.chunks.sort("k")["k"].to_list(), chunk_labels(ot), strict=True))
    fig = go.Figure()
    if df.height:
        use_p = df["method"][0] == "chisquare"
        x = [by_k[k] for k in df["k"].to_list()]
        y = df["p_value"] if use_p else df["score"]
        if not use_p and df["band"].is_not_null().any():
            fig.add_trace(go.Scatter(x=x, y=df["band"].to_list(), mode="lines", name="chance band",
                                     line=dict(color=REF_COLOR, width=0), fill="tozeroy",
                                     fillcolor="rgba(127,140,154,0.25)",
                                     hovertemplate="chance band %{y:.4f}<extra></extra>"))
        colors = [BAD_COLOR if d else CUR_COLOR for d in df["drifted"].fill_null(False).to_list()]
        fig.add_trace(go.Scatter(x=x, y=y.to_list(), mode="lines+markers",
                                 name=df["method"][0], marker=dict(color=colors, size=8),
                                 line=dict(color=CUR_COLOR),
                                 customdata=df["n"].to_list(),
                                 hovertemplate="%{x}<br>%{y:.4f} · n=%{customdata:,}<extra></extra>"))
        fig.add_hline(y=float(df["threshold"][0]), line=dict(color=BAD_COLOR, dash="dash"),
                      annotation_text=f"threshold {df['threshold'][0]:g}", annotation_position="top left")
        title = f"{df['method'][0]} {'p-value' if use_p else 'score'} per chunk ({ot.chunk})"
    else:
        title = "No chunk could be scored"
    fig.update_layout(title=title, height=300, margin=dict(l=10, r=10, t=50, b=10),
                      xaxis_title="chunk", yaxis_title="p-value" if df.height and use_p else "score",
                      showlegend=False)
    fig.update_xaxes(type="category")
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
                      yaxis_title="share of non-null values",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    if not numeric:
        fig.update_xaxes(type="category")
    return fig

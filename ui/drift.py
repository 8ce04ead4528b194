"""Cached calls into monitoring.drift for the Drift page, and its reference picker.

Cache keys: the source fingerprint, the reference (and the reference file's own
fingerprint), the filters and the drift settings, so changed logs or settings never serve
stale results. The workspace is passed as `_ws` (not hashed).
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import polars as pl
import streamlit as st

from monitoring import drift
from monitoring.config import load_config
from monitoring.drift import DriftResult, DriftSettings, FeatureDrift, OverTime, Reference
from monitoring.fmt import md, pct  # md: the one Markdown escape (also ud.md on the page)
from monitoring.logs.source import LogSource
from monitoring.logs.workspace import Workspace
from monitoring.query.filters import Filters

from . import auth
from .data import TTL
from .sidebar import View

# Status in words (emoji render as boxes where no emoji font is installed); colour where the
# element has one: the headline metrics' deltas and the page's status metric.
STATUS_TEXT = {"drift": "drift", "warn": "watch", "ok": "ok", "no data": "no data", "skipped": "skipped"}
STATUS_COLOUR = {"drift": "red", "warn": "orange", "ok": "green", "no data": "gray", "skipped": "gray"}


def settings() -> DriftSettings:
    """[drift] of monitoring.toml, read afresh so a saved reference window shows at once."""
    return drift.load_settings(load_config().section("drift"))


@st.cache_resource(show_spinner="Opening the reference…", ttl=TTL)
def _reference_source(_ws: Workspace, fingerprint: str, path: str, ref_key: str) -> LogSource:
    return drift.open_reference(path, _ws.config, _ws.con)


def reference_source(ws: Workspace, ref: Reference) -> LogSource | None:
    """The opened reference file (None for a window); raises LogSourceError."""
    if ref.kind != "file":
        return None
    return _reference_source(ws, ws.source.fingerprint, ref.path, _ref_key(ref))


def _ref_key(ref: Reference) -> str:
    """Keys the caches on the reference file's size and mtime too."""
    if ref.kind != "file" or not ref.path or not os.path.exists(ref.path):
        return ""
    st_ = os.stat(ref.path)
    return f"{st_.st_size}:{st_.st_mtime_ns}"


@st.cache_data(ttl=TTL, show_spinner="Comparing distributions…")
def _compare(_ws: Workspace, fingerprint: str, ref_key: str, ref: Reference, f: Filters,
             s: DriftSettings) -> DriftResult:
    return drift.analyze(_ws, ref, f, s, ref_source=reference_source(_ws, ref))


def compare(ws: Workspace, ref: Reference, f: Filters, s: DriftSettings) -> DriftResult:
    return _compare(ws, ws.fingerprint, _ref_key(ref), ref, f, s)


# -- choices kept in the URL (st.query_params) and across page switches (session state) ----------

_KEPT = "drift_choices"


def kept(name: str, default: str | None = None) -> str | None:
    """A choice from the URL, else from before a page switch, else `default`."""
    if name in st.query_params:
        return st.query_params[name]
    return st.session_state.get(_KEPT, {}).get(name, default)


def keep(**values: str | None) -> None:
    """Write choices to the URL and the session (None removes one)."""
    store = st.session_state.setdefault(_KEPT, {})
    for name, value in values.items():
        if value is None:
            store.pop(name, None)
            if name in st.query_params:
                del st.query_params[name]
        else:
            store[name] = str(value)
            st.query_params[name] = str(value)


CHUNKS = ["auto", "hour", "day", "week", "month", "rows"]


def default_chunk(s: DriftSettings) -> str:
    """The chunk `pick_chunk` returns untouched: [drift] chunk, rows with their count."""
    spec = drift.parse_chunk(s.chunk, s.chunk_rows)
    return f"rows:{int(spec.rows or s.chunk_rows)}" if spec.unit == "rows" else spec.unit


def pick_chunk(s: DriftSettings) -> str:
    """The chunk control: auto, a calendar unit, or rows with its count."""
    default = s.chunk
    want = kept("chunk", default) or default
    try:
        spec = drift.parse_chunk(want, s.chunk_rows)
    except ValueError:
        spec = drift.parse_chunk(default, s.chunk_rows)
    left, right = st.columns([3, 1])
    unit = left.segmented_control("Chunk", CHUNKS, default=spec.unit, key="drift_chunk",
                                  help="auto: the finest unit, or row count, with enough rows in every chunk "
                                       "for a stable decision (see docs/drift.md)") or spec.unit
    chunk = unit
    if unit == "rows":
        n = right.number_input("Rows per chunk", min_value=1, value=int(spec.rows or s.chunk_rows), step=1000,
                               key="drift_chunk_rows")
        chunk = f"rows:{int(n)}"
    keep(chunk=chunk)
    return chunk


def chunk_label(ot: OverTime, k: int) -> str:
    from monitoring.drift.charts import chunk_labels

    return dict(zip(ot.chunks.sort("k")["k"].to_list(), chunk_labels(ot), strict=True)).get(k, "")


def pick_chunk_k(ot: OverTime, event, names: list[str] | None = None) -> int | None:
    """The chunk to look into: a clicked heatmap cell, else the chunk picker (URL-backed);
    None: the whole window."""
    ks = ot.chunks.sort("k")["k"].to_list()
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    clicked = next((p.get("customdata") for p in points if p.get("customdata")), None)
    if clicked:
        row = int(clicked[1])
        column = names[row] if names and 0 <= row < len(names) else None
        keep(k=int(clicked[0]), **({"column": column} if column is not None else {}))
        st.session_state["drift_pick_k"] = int(clicked[0])
    want = kept("k")
    default = int(want) if want not in (None, "") and want.lstrip("-").isdigit() and int(want) in ks else None
    options = [None] + ks
    k = st.selectbox("Look into", options, index=options.index(default), key="drift_pick_k",
                     format_func=lambda k: "the whole window" if k is None else f"chunk {chunk_label(ot, k)}",
                     help="Or click a cell of the heatmap.")
    keep(k=k)
    return k


@st.cache_data(ttl=TTL, show_spinner="Comparing the chunk…")
def _compare_chunk(_ws: Workspace, fingerprint: str, ref_key: str, ref: Reference, f: Filters,
                   s: DriftSettings, chunk: str, k: int) -> DriftResult:
    ot = over_time(_ws, ref, f, s, chunk)
    row = ot.chunks.filter(pl.col("k") == k).row(0, named=True)
    if ot.chunk.startswith("rows"):
        return drift.analyze(_ws, ref, f, s, ref_source=reference_source(_ws, ref),
                             rows=(row["first_row"], row["last_row"]))
    start = max(row["start"], f.start) if f.start else row["start"]
    end = min(row["end"], f.end) if f.end else row["end"]
    return drift.analyze(_ws, ref, replace(f, start=start, end=end), s, ref_source=reference_source(_ws, ref))


def compare_chunk(ws: Workspace, ref: Reference, f: Filters, s: DriftSettings, chunk: str, k: int) -> DriftResult:
    return _compare_chunk(ws, ws.fingerprint, _ref_key(ref), ref, f, s, chunk, k)


def pick_column(result: DriftResult, label: str = "Column") -> FeatureDrift:
    """The column in detail: the URL's, else the most drifted (score over the larger of
    threshold and band), model outputs included."""
    cols = list(result.all) + ([result.multivariate] if result.multivariate else [])
    ranked = sorted(cols, key=lambda f: (-_ratio(f), f.role == "feature", f.name))
    choices = [(f.name, f.role) for f in ranked]
    want = kept("column")
    default = next((c for c in choices if c[0] == want), choices[0])
    picked = st.selectbox(label, choices, index=choices.index(default), key="drift_feature",
                          format_func=lambda c: role_text(*c))
    keep(column=picked[0])
    return result.multivariate if picked[1] == "multivariate" else result.get(*picked)


_ROLE_TEXT = {"label": "label (ground truth)", "multivariate": "all numeric inputs together (multivariate)",
              "max_probability": "max probability (the model's confidence)"}


def role_text(name: str, role: str) -> str:
    """How a column is named on the page: features by name, outputs by what they are."""
    if role == "feature":
        return name
    if role == "class_score":
        return f"{name} (class probability)"
    return _ROLE_TEXT.get(role, f"{name} (model output)")


def _ratio(f: FeatureDrift) -> float:
    if f.score is None:
        return -1.0
    if drift.REGISTRY[f.method].decide_on == "p_value":
        return f.ratio
    return f.score / max(f.threshold, f.band or 0.0)


@st.cache_data(ttl=TTL, show_spinner="Scoring each chunk…")
def _over_time(_ws: Workspace, fingerprint: str, ref_key: str, ref: Reference, f: Filters,
               s: DriftSettings, chunk: str) -> OverTime:
    result = compare(_ws, ref, f, s)
    return drift.analyze_over_time(_ws, ref, f, result, s, chunk, ref_source=reference_source(_ws, ref),
                                   joint=True)


def over_time(ws: Workspace, ref: Reference, f: Filters, s: DriftSettings, chunk: str) -> OverTime:
    return _over_time(ws, ws.fingerprint, _ref_key(ref), ref, f, s, chunk)


@st.cache_data(ttl=TTL, show_spinner=False)
def _distribution(_ws: Workspace, fingerprint: str, ref_key: str, ref: Reference, f: Filters,
                  s: DriftSettings, name: str, role: str, chunk: str | None, k: int | None) -> pl.DataFrame:
    src = reference_source(_ws, ref)
    if k is None:
        return drift.distribution_of(_ws, ref, f, compare(_ws, ref, f, s), name, role, ref_source=src)
    result = compare_chunk(_ws, ref, f, s, chunk, k)
    ot = over_time(_ws, ref, f, s, chunk)
    row = ot.chunks.filter(pl.col("k") == k).row(0, named=True)
    if chunk.startswith("rows") or ot.chunk.startswith("rows"):
        return drift.distribution_of(_ws, ref, f, result, name, role, ref_source=src,
                                     rows=(row["first_row"], row["last_row"]))
    window = replace(f, start=max(row["start"], f.start) if f.start else row["start"],
                     end=min(row["end"], f.end) if f.end else row["end"])
    return drift.distribution_of(_ws, ref, window, result, name, role, ref_source=src)


def distribution(ws: Workspace, ref: Reference, f: Filters, s: DriftSettings, feature: FeatureDrift,
                 chunk: str | None = None, k: int | None = None) -> pl.DataFrame:
    """Reference and current shares per bin, of the window or of chunk k."""
    return _distribution(ws, ws.fingerprint, _ref_key(ref), ref, f, s, feature.name, feature.role,
                         chunk, k)


def pick_reference(view: View, s: DriftSettings) -> Reference | None:
    """Reference widgets: the configured file, or a window of the logs (remembered on demand)."""
    cfg = load_config()
    options = (["Reference file", "Window of the logs"] if cfg.reference else ["Window of the logs"])
    kind = st.radio("Reference", options, horizontal=True, key="drift_ref_kind",
                    help="A training sample (MONITORING_REFERENCE) or a past window of these logs.")
    if kind == "Reference file":
        return Reference("file", path=cfg.reference, origin="config")
    if view.extent.first is None:
        st.info("These logs have no timestamp, so no window of them can be the reference. Set a "
                "reference file (MONITORING_REFERENCE, or `reference = \"...\"` in monitoring.toml), "
                "e.g. a sample of the training data.")
        return None
    first, last = view.extent.first.date(), view.extent.last.date()
    picked = st.date_input("Reference window (UTC, inclusive days)", value=_default_days(view, s),
                           min_value=first, max_value=last, key="drift_ref_window",
                           help="Default: the first days of the logs, or the window saved in monitoring.toml.")
    if not isinstance(picked, tuple | list) or len(picked) != 2:
        st.info("Pick the last day of the reference window.")
        return None
    ref = _window(picked, s)
    start, end = ref.start, ref.end
    if ref.origin != "config" and auth.can("drift.reference") and st.button(
            "Remember this window in monitoring.toml", key="drift_save"):
        path = cfg.source_path or "monitoring.toml"
        try:
            drift.save_reference_window(path, start, end, actor=auth.acting())
            st.toast(f"Saved the reference window in {md(path)}")
        except (ValueError, OSError) as exc:   # ConfigError, PermissionDenied, a read-only file
            st.error(f"Could not save the reference window: {md(exc)}")
    return ref


def default_reference(view: View, s: DriftSettings) -> Reference | None:
    """What `pick_reference` returns untouched (ui.prefetch); None: no timestamp and no file."""
    cfg = load_config()
    if cfg.reference:
        return Reference("file", path=cfg.reference, origin="config")
    if view.extent.first is None:
        return None
    return _window(_default_days(view, s), s)


def _default_days(view: View, s: DriftSettings) -> tuple[date, date]:
    """The picker's untouched days: the window saved in monitoring.toml, else the logs' first days."""
    saved = (s.reference_start, s.reference_end) if s.reference_start else None
    default = saved or drift.default_window(view.extent, s.default_reference_days)
    first, last = view.extent.first.date(), view.extent.last.date()
    return _clamp(default[0].date(), first, last), _clamp(_last_day(default[1]), first, last)


def _window(days, s: DriftSettings) -> Reference:
    start = datetime.combine(days[0], time(), UTC)
    end = datetime.combine(days[1], time(), UTC) + timedelta(days=1)
    saved = (s.reference_start, s.reference_end) if s.reference_start else None
    return Reference("window", start=start, end=end, origin="config" if saved and (start, end) == saved else "page")


def _last_day(end: datetime) -> date:
    # The window's end is exclusive; the widget shows the last day it includes.
    d = end.date()
    return d if end.time() != time() else d - timedelta(days=1)


def _clamp(d: date, lo: date, hi: date) -> date:
    return min(max(d, lo), hi)


def table(result: DriftResult, ot: OverTime | None = None) -> pl.DataFrame:
    """One row per column (model outputs first), features by score relative to the larger
    of threshold and band; with `ot`, each column's worst chunk and how many drifted."""
    worst = {}
    drifted = {}
    if ot is not None:
        for r in ot.worst().iter_rows(named=True):
            worst[(r["name"], r["role"])] = chunk_label(ot, r["k"]) + f" ({r['score']:.3g})"
        counts = ot.scores.group_by("name", "role").agg(pl.col("drifted").fill_null(False).sum().alias("d"), pl.len())
        drifted = {(r["name"], r["role"]): f"{r['d']} of {r['len']}" for r in counts.iter_rows(named=True)}
    outputs = list(result.outputs)
    rows = [{"feature": role_text(f.name, f.role),
             "status": STATUS_TEXT[f.status], "method": f.method, "score": f.score,
             "error": f.error, "threshold": f.threshold, "band": f.band,
             "worst chunk": worst.get((f.name, f.role), ""), "chunks drifted": drifted.get((f.name, f.role), ""),
             "n_reference": f.n_reference, "n_current": f.n_current,
             "null_share": f.null_share_current,
             "quality": "; ".join(f.quality.problems) if f.quality else "",
             } for f in outputs + result.ranked() + ([result.multivariate] if result.multivariate else [])]
    return pl.DataFrame(rows, schema={"feature": pl.String, "status": pl.String, "method": pl.String,
                                      "score": pl.Float64, "error": pl.Float64, "threshold": pl.Float64,
                                      "band": pl.Float64, "worst chunk": pl.String, "chunks drifted": pl.String,
                                      "n_reference": pl.Int64, "n_current": pl.Int64,
                                      "null_share": pl.Float64, "quality": pl.String})


def column_config() -> dict:
    return {"score": st.column_config.NumberColumn("score", format="%.4f"),
            "error": st.column_config.NumberColumn(
                "± bound", format="%.2g", help="Approximate scores (fine bins, above drift.exact_max_rows "
                                               "values per side) are within this of the exact score; empty: exact."),
            "threshold": st.column_config.NumberColumn("threshold", format="%.3g"),
            "band": st.column_config.NumberColumn(
                "chance band", format="%.3g", help="What chance alone scores at this many values (99.7% of "
                                                   "samples of the reference): drift needs a score above it too."),
            "n_reference": st.column_config.NumberColumn("n reference", format="%d"),
            "n_current": st.column_config.NumberColumn("n current", format="%d"),
            "null_share": st.column_config.NumberColumn("nulls (current)", format="percent")}


def headline(col, f: FeatureDrift | None, label: str) -> None:
    """A metric for the prediction or the score: the configured test's score and status."""
    if f is None:
        col.metric(label, "not in logs")
        return
    value = "–" if f.score is None else f"{f.score:.3f}"
    col.metric(f"{label} drift ({f.method})", value, delta=STATUS_TEXT[f.status],
               delta_color=STATUS_COLOUR[f.status], delta_arrow="off",
               help=f"threshold {f.threshold:g}; {f.accuracy}; n = {f.n_reference:,} reference, "
                    f"{f.n_current:,} current")


def scores_table(f: FeatureDrift) -> pl.DataFrame:
    """Every test that applies to the column, the deciding one first."""
    names = sorted(f.scores, key=lambda n: (n != f.method, n))
    return pl.DataFrame({
        "test": [drift.REGISTRY[n].title for n in names],
        "score": [f.scores[n].value for n in names],
        "p_value": [f.scores[n].p_value for n in names],
        "± bound": [f.scores[n].error for n in names],  # approximate scores only
        "default threshold": [drift.REGISTRY[n].threshold for n in names],
        "decides": ["yes" if n == f.method else "" for n in names],
    }, schema={"test": pl.String, "score": pl.Float64, "p_value": pl.Float64, "± bound": pl.Float64,
               "default threshold": pl.Float64, "decides": pl.String})


def null_share_per_chunk(ot: OverTime, f: FeatureDrift) -> pl.DataFrame:
    """Share of null values of one column per chunk (data quality over time)."""
    df = ot.scores.filter((pl.col("name") == f.name) & (pl.col("role") == f.role)).sort("k")
    return pl.DataFrame({"chunk": [chunk_label(ot, k) for k in df["k"].to_list()],
                         "nulls": df["null_share"].to_list(), "drifted": df["drifted"].to_list()},
                        schema={"chunk": pl.String, "nulls": pl.Float64, "drifted": pl.Boolean})


def quality_frame(f: FeatureDrift) -> pl.DataFrame:
    q = f.quality
    rows = [("nulls in reference", _pct(q.null_share_reference)), ("nulls in current", _pct(q.null_share_current))]
    if f.kind == "numeric":
        rows.append(("current values outside the reference range", _pct(q.out_of_range_share)))
    else:
        rows.append(("categories unseen in the reference", f"{q.new_count:,} ({_pct(q.new_share or 0)} of values)"))
        rows += [(f"  new: {c}", f"{n:,}") for c, n in q.new_categories]
        rows += [("reference category absent now", c) for c in q.vanished_categories]
    if q.types:
        rows.append(("types across files", "; ".join(q.types)))
    return pl.DataFrame({"check": [r[0] for r in rows], "value": [r[1] for r in rows]})


def _pct(v: float | None) -> str:
    return pct(v, 2)


"""Cached calls into monitoring.drift for the Drift page, and its reference picker.

Cache keys: the source fingerprint, the reference (and the reference file's own
fingerprint), the filters and the drift settings, so changed logs or settings never serve
stale results. The workspace is passed as `_ws` (not hashed).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, time, timedelta

import polars as pl
import streamlit as st

from monitoring import drift
from monitoring.config import ConfigError, load_config
from monitoring.drift import DriftResult, DriftSettings, FeatureDrift, OverTime, Reference
from monitoring.fmt import pct
from monitoring.queries import Filters
from monitoring.source import LogSource
from monitoring.workspace import Workspace

from .data import TTL
from .sidebar import View

STATUS_ICON = {"drift": "🔴 drift", "warn": "🟠 watch", "ok": "🟢 ok", "no data": "⚪ no data",
               "skipped": "⚪ skipped"}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def md(text: str) -> str:
    """Text from the logs made inert for st.markdown (no formatting, links or HTML)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


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
    return _compare(ws, ws.source.fingerprint, _ref_key(ref), ref, f, s)


@st.cache_data(ttl=TTL, show_spinner="Scoring each chunk…")
def _over_time(_ws: Workspace, fingerprint: str, ref_key: str, ref: Reference, f: Filters,
               s: DriftSettings, chunk: str) -> OverTime:
    result = compare(_ws, ref, f, s)
    return drift.analyze_over_time(_ws, ref, f, result, s, chunk, ref_source=reference_source(_ws, ref))


def over_time(ws: Workspace, ref: Reference, f: Filters, s: DriftSettings, chunk: str) -> OverTime:
    return _over_time(ws, ws.source.fingerprint, _ref_key(ref), ref, f, s, chunk)


@st.cache_data(ttl=TTL, show_spinner=False)
def _distribution(_ws: Workspace, fingerprint: str, ref_key: str, ref: Reference, f: Filters,
                  s: DriftSettings, name: str, role: str) -> pl.DataFrame:
    result = compare(_ws, ref, f, s)
    p = drift.plan(_ws, ref, f, ref_source=reference_source(_ws, ref))
    return drift.distribution(_ws.con, p.reference, p.current, result.get(name, role))


def distribution(ws: Workspace, ref: Reference, f: Filters, s: DriftSettings, feature: FeatureDrift) -> pl.DataFrame:
    return _distribution(ws, ws.source.fingerprint, _ref_key(ref), ref, f, s, feature.name, feature.role)


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
    saved = (s.reference_start, s.reference_end) if s.reference_start else None
    default = saved or drift.default_window(view.extent, s.default_reference_days)
    first, last = view.extent.first.date(), view.extent.last.date()
    picked = st.date_input("Reference window (UTC, inclusive days)",
                           value=(_clamp(default[0].date(), first, last),
                                  _clamp(_last_day(default[1]), first, last)),
                           min_value=first, max_value=last, key="drift_ref_window",
                           help="Default: the first days of the logs, or the window saved in monitoring.toml.")
    if not isinstance(picked, tuple | list) or len(picked) != 2:
        st.info("Pick the last day of the reference window.")
        return None
    start = datetime.combine(picked[0], time(), UTC)
    end = datetime.combine(picked[1], time(), UTC) + timedelta(days=1)
    origin = "config" if saved and (start, end) == saved else "page"
    if origin != "config" and st.button("Remember this window in monitoring.toml", key="drift_save"):
        path = cfg.source_path or "monitoring.toml"
        try:
            drift.save_reference_window(path, start, end)
            st.toast(f"Saved the reference window in {path}")
        except (ConfigError, OSError) as exc:
            st.error(f"Could not save the reference window: {exc}")
    return Reference("window", start=start, end=end, origin=origin)


def _last_day(end: datetime) -> date:
    # The window's end is exclusive; the widget shows the last day it includes.
    d = end.date()
    return d if end.time() != time() else d - timedelta(days=1)


def _clamp(d: date, lo: date, hi: date) -> date:
    return min(max(d, lo), hi)


def table(result: DriftResult) -> pl.DataFrame:
    """One row per feature, sorted by score relative to its threshold."""
    rows = [{"feature": f.name, "status": STATUS_ICON[f.status], "method": f.method, "score": f.score,
             "error": f.error, "threshold": f.threshold, "n_reference": f.n_reference, "n_current": f.n_current,
             "null_share": f.null_share_current,
             "quality": "; ".join(f.quality.problems) if f.quality else "",
             } for f in result.ranked()]
    return pl.DataFrame(rows, schema={"feature": pl.String, "status": pl.String, "method": pl.String,
                                      "score": pl.Float64, "error": pl.Float64, "threshold": pl.Float64,
                                      "n_reference": pl.Int64, "n_current": pl.Int64,
                                      "null_share": pl.Float64, "quality": pl.String})


def column_config() -> dict:
    return {"score": st.column_config.NumberColumn("score", format="%.4f"),
            "error": st.column_config.NumberColumn(
                "± bound", format="%.2g", help="Approximate scores (fine bins, above drift.exact_max_rows "
                                               "values per side) are within this of the exact score; empty: exact."),
            "threshold": st.column_config.NumberColumn("threshold", format="%.3g"),
            "n_reference": st.column_config.NumberColumn("n reference", format="%d"),
            "n_current": st.column_config.NumberColumn("n current", format="%d"),
            "null_share": st.column_config.NumberColumn("nulls (current)", format="percent")}


def headline(col, f: FeatureDrift | None, label: str) -> None:
    """A metric for the prediction or the score: the configured test's score and status."""
    if f is None:
        col.metric(label, "not in logs")
        return
    value = "–" if f.score is None else f"{f.score:.3f}"
    col.metric(f"{label} drift ({f.method})", value, delta=STATUS_ICON[f.status], delta_color="off",
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


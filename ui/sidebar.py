"""The shared sidebar: time range, model, version, endpoint and bucket.

Each page calls `current()` once, first: it draws the sidebar and returns the `View`.
Streamlit forgets a widget's state when a page that does not draw it runs, so the keys
are re-assigned to themselves before drawing: choices survive page switches.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from monitoring.config import ConfigError
from monitoring.fmt import md
from monitoring.logs.source import LogSourceError
from monitoring.logs.workspace import Workspace
from monitoring.query.filters import (
    BUCKET_LABELS,
    BUCKETS,
    Extent,
    Filters,
    auto_bucket,
    whole_range,
)

from . import data, timerange

AUTO = "auto"
KEYS = ("range_preset", *timerange.CUSTOM_KEYS, "model", "versions", "endpoints", "bucket")


@dataclass(frozen=True)
class View:
    ws: Workspace
    extent: Extent
    filters: Filters
    bucket: str

    @property
    def fingerprint(self) -> str:
        return self.ws.fingerprint      # marked while the duplicate check runs (logs.dupcheck)


def render() -> View | None:
    """Draw the sidebar; returns None (after explaining why) when there is nothing to show."""
    try:
        ws = data.workspace()
    except ConfigError as exc:
        st.sidebar.error("Configuration invalid")
        st.error(f"The configuration cannot be used: {md(str(exc), limit=600)}")
        st.info("Correct monitoring.toml (or the MONITORING_ variables); the page reloads it on the next run.")
        return None
    except LogSourceError as exc:
        st.sidebar.error("Logs unavailable")
        st.error(f"The logs cannot be opened: {md(str(exc), limit=600)}")
        st.info("Set MONITORING_LOGS to a Parquet file, directory or glob; new files are noticed "
                f"within {data.config().refresh_seconds} s.")
        return None
    ext = ws.extent
    sb = st.sidebar
    sb.caption(f"Logs: {md(ws.config.logs)} · {ext.rows:,} valid rows · times in UTC")
    sb.caption(f"Read at {data.read_at():%H:%M:%S} UTC · new, changed or removed files are picked up "
               f"within {ws.config.refresh_seconds} s")
    _bad_files_notice(ws)
    from .rollup import sidebar_status
    sidebar_status(ws)              # the background rollup build's progress, when [rollups] asks
    from .dupcheck import notice
    notice(ws)                      # the background duplicate check, while it runs
    if ext.rows == 0:
        st.warning("The logs hold no valid rows. The data-health panel says why.")
        return View(ws, ext, Filters(), "hour")
    if not ws.source.has_time:
        sb.caption("No timestamps in these logs: the whole log is one window, rows in file order.")
        return View(ws, ext, Filters(), "hour")
    first, last = whole_range(ext)

    # Defaults go through session state (not the widgets' value/index), so the state kept
    # across pages and the widgets never disagree. A link's choices come first.
    timerange.from_url({"model": ext.model_names, "versions": ext.model_versions,
                        "endpoints": ext.endpoints}, (AUTO, *BUCKETS))
    st.session_state.setdefault("bucket", AUTO)
    preset, start, end = timerange.pick(sb, first, last)

    model = None
    if len(ext.model_names) > 1:
        model = sb.selectbox("Model", ["All models", *ext.model_names], key="model")
        model = None if model == "All models" else model
    versions = sb.multiselect("Model version", ext.model_versions, key="versions",
                              placeholder="All versions")
    endpoints = sb.multiselect("Endpoint", ext.endpoints, key="endpoints", placeholder="All endpoints") \
        if ext.endpoints else []
    choice = sb.selectbox("Bucket", [AUTO, *BUCKETS], key="bucket",
                          format_func=lambda b: "auto" if b == AUTO else BUCKET_LABELS[b])
    bucket = auto_bucket(start, end) if choice == AUTO else choice
    sb.caption(f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC · bucket {BUCKET_LABELS[bucket]}")
    timerange.to_url(preset, start, end, model, tuple(versions), tuple(endpoints), choice)
    f = Filters(start=start, end=end, model_name=model, model_versions=tuple(versions),
                endpoints=tuple(endpoints))
    return View(ws, ext, f, bucket)


def _bad_files_notice(ws: Workspace) -> None:
    """Files that cannot be read are named on every page, not only in the health panel."""
    bad = ws.source.bad_files
    if bad:
        names = ", ".join(md(b.path) for b in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        st.warning(f"{len(bad)} log file(s) cannot be read and are left out of every figure: {names} "
                   f"({md(bad[0].reason)}). The data-health panel in the sidebar lists them all.",
                   icon=":material/description:")


def _leave_legacy_pages_mode() -> None:
    """A deep link (e.g. /latency) opened first on a fresh server runs the page file directly,
    in Streamlit's legacy pages/ mode, so app.py's navigation is never set up. Switch that
    mode off and rerun: app.py then runs and shows the requested page in the real navigation."""
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager

    # AppTest resets the mode before every run and runs switched-to pages this way on
    # purpose; a rerun there would drop the click being tested.
    if PagesManager.uses_pages_directory and not config.get_option("global.appTest"):
        PagesManager.uses_pages_directory = False
        st.rerun()


def require(*needs: str) -> View:
    """The page's View with the sidebar drawn; stops the page (after saying why in one
    sentence) when there are no logs, no valid rows, or the logs lack a serving column the
    page needs (`needs`: canonical names such as "timestamp", "latency_ms", "status")."""
    view = current()
    if view is None or not view.extent.rows:
        st.stop()
    gap = view.ws.source.missing(*needs)
    if gap:
        st.info(gap)
        st.stop()
    return view


def current() -> View | None:
    """Draw the shared sidebar (with the data-health panel); the page's View or None."""
    _leave_legacy_pages_mode()
    from .auth import require_page

    require_page("view")   # a page script run on its own (before app.py's gate) shows nothing
    for key in KEYS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
    view = render()
    if view is not None and view.extent.rows:
        from .panels import health_panel

        health_panel(view)
    return view

"""Panels several pages share: data health, empty-window notices, number formatting."""

from __future__ import annotations

import streamlit as st

from monitoring.fmt import md
from monitoring.fmt import ms as fmt_ms  # noqa: F401 (pages use panels.fmt_*)
from monitoring.fmt import pct as fmt_pct  # noqa: F401
from monitoring.logs.health import REASON_TEXT

from . import data
from .sidebar import View


def health_panel(view: View) -> None:
    """Sidebar expander: unreadable files, invalid rows by reason, duplicates, warnings."""
    h = view.ws.health
    config_warnings = view.ws.config.warnings
    problems = len(h.bad_files) + len(h.invalid_rows) + len(h.warnings) + len(config_warnings)
    label = "Data health: all rows valid" if problems == 0 else f"Data health: {problems} issue(s)"
    with st.sidebar.expander(label, expanded=False):
        st.write(f"{h.total_rows:,} rows read from {len(view.ws.source.files)} file(s); "
                 f"{h.valid_rows:,} valid and counted.")
        # File names, reasons and warnings carry names from the logs: escaped, shown as typed.
        for path, reason in h.bad_files:
            st.error(f"Unreadable file {md(path)}: {md(reason)}. The other files are loaded.",
                     icon=":material/description:")
        for reason, n in h.invalid_rows.items():
            st.warning(f"{n:,} row(s): {md(REASON_TEXT.get(reason, reason))}.", icon=":material/warning:")
        for w in [*h.warnings, *config_warnings]:
            st.info(md(w, limit=600))
        st.button("Reload logs", key="reload_logs", help="Re-read the files (new or changed logs).",
                  on_click=data.reload)


LEVEL = {"latency": ":orange[**Latency**]", "errors": ":red[**Errors**]", "downtime": ":red[**Downtime**]",
         "spike": ":orange[**Traffic spike**]", "drift": ":violet[**Drift**]"}


def incident_list(view: View, s, gaps, spikes) -> None:
    """Every detector's incidents in the window; drift (the alert rule's episodes, shared
    with the Alerts page's cached evaluation) comes last, in a fragment, so the rest shows first."""
    from monitoring.fmt import md
    from monitoring.metrics.incidents import incidents

    slo = view.ws.config.slo
    found = incidents(s, gaps, spikes, slo)
    for i in found:
        st.write(f"{LEVEL[i.kind]} {md(i.sentence) if i.from_logs else i.sentence} See *{i.page}*.")

    # Polls every 2 s only while the background evaluation runs; once it is done, one app
    # rerun redraws the page with a fragment that no longer polls.
    polling = not data.alert_episodes_ready(view.ws, view.fingerprint)

    @st.fragment(run_every=2 if polling else None)
    def drift_part() -> None:
        if not data.alert_episodes_ready(view.ws, view.fingerprint):
            st.caption("Checking drift over the history… (the rest of this page is complete)")
            return
        if polling:
            st.rerun()
        try:
            episodes = data.alert_episodes(view.ws, view.fingerprint)
        except Exception as exc:   # the alert history's database may be down: say so, keep the page
            st.caption(f"Drift incidents unavailable: {md(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}")
            return
        drifts = [i for i in incidents(s, [], [], slo, episodes) if i.kind == "drift"]
        for i in drifts:
            st.write(f"{LEVEL[i.kind]} {md(i.sentence) if i.from_logs else i.sentence} See *{i.page}*.")
        if not (found or drifts):
            st.write("No incident in this window: latency, errors, traffic and drift all within bounds.")

    drift_part()


def utc_column(label: str):
    """A table column of UTC times shown as "2026-11-05 14:00", never with a raw "+00:00"."""
    return st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm")


def markers(view: View, limit: int = 20) -> list[tuple]:
    """Deployments (a version's first request, after the logs' first) and alerts (from the
    stored alert history; none until the Alerts page or `alerts check` has evaluated) that
    fall inside the window, as (time, text, kind) for `charts.add_markers`."""
    f, ext = view.filters, view.extent
    if f.start is None or f.end is None:
        return []
    events = [(first, f"deploy {v}", "deploy") for v, first, _ in ext.version_spans
              if f.start <= first < f.end and ext.first is not None and first > ext.first]
    try:
        from monitoring.alerts.store import history

        h = history(data.alerts_db(view.ws.config.database_url), view.ws.config.logs, f.start, f.end)
        for r in h.sort("started_at").head(limit).iter_rows(named=True):
            if f.start <= r["started_at"] < f.end:
                events.append((r["started_at"], r["title"], r["area"]))
    except Exception:   # an unreachable alert database costs the markers, never the chart
        pass
    return events


def time_chart(view: View, fig, key: str) -> None:
    """A time chart with the window's deployment and alert markers; dragging across it
    zooms the global window (see ui/timerange.py)."""
    from monitoring.charts import add_markers

    from .timerange import zoomable

    zoomable(add_markers(fig, markers(view)), key)


def require_rows(view: View, rows: int) -> bool:
    """Explain an empty window instead of drawing empty charts; True when there is data."""
    if rows == 0:
        st.info("No valid requests in this window for these filters. Widen the time range or "
                "clear the version and endpoint filters in the sidebar.")
        return False
    return True


def delta_count(cur: int, prev: int | None) -> str | None:
    if not prev:
        return None
    return f"{(cur - prev) / prev:+.1%} vs previous"


def delta_num(cur: float, prev: float | None, unit: str = "") -> str | None:
    if prev is None:
        return None
    return f"{cur - prev:+,.1f}{unit} vs previous"


def delta_ms(cur: float | None, prev: float | None) -> str | None:
    if cur is None or prev is None:
        return None
    return f"{cur - prev:+,.0f} ms vs previous"


def delta_pct_points(cur: float | None, prev: float | None) -> str | None:
    if cur is None or prev is None:
        return None
    return f"{(cur - prev) * 100:+.2f} pts vs previous"

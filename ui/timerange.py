"""The time range and filters as Grafana users expect them: presets down to minutes, a
custom range with times, drag-to-zoom on time charts, and all of it in the URL.

    start, end = pick(st.sidebar, first, last)     # draws the range widgets
    zoomable(fig, key="lat_lines")                 # a time chart whose box selection zooms
    to_url(view)                                   # the link now carries range and filters

The URL holds `range` (a preset, or `custom` with `from` and `to` in ISO 8601 UTC), `model`,
`version` and `endpoint` (repeatable) and `bucket`. It is read once per browser session, so
a shared or reloaded link opens on the same view; values it names that the logs do not hold
are ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

PRESETS: dict[str, timedelta | None] = {
    "Last 15 minutes": timedelta(minutes=15),
    "Last hour": timedelta(hours=1),
    "Last 6 hours": timedelta(hours=6),
    "Last 24 hours": timedelta(hours=24),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "All data": None,
    "Custom": None,
}
DEFAULT_PRESET = "Last 7 days"
CUSTOM_KEYS = ("custom_from_d", "custom_from_t", "custom_to_d", "custom_to_t")
_SLUG = {name: name.lower().replace(" ", "-") for name in PRESETS}
_FROM_SLUG = {v: k for k, v in _SLUG.items()}


def _set_custom(start: datetime, end: datetime) -> None:
    s = st.session_state
    s["range_preset"] = "Custom"
    s["custom_from_d"], s["custom_from_t"] = start.date(), start.time().replace(second=0, microsecond=0)
    s["custom_to_d"], s["custom_to_t"] = end.date(), end.time().replace(second=0, microsecond=0)


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def from_url(options: dict[str, tuple[str, ...]], buckets: tuple[str, ...]) -> None:
    """Seed the session's choices from the URL, once per browser session."""
    s = st.session_state
    if s.get("_url_read"):
        return
    s["_url_read"] = True
    q = st.query_params
    preset = _FROM_SLUG.get(q.get("range", ""))
    if preset == "Custom":
        a, b = _parse(q.get("from")), _parse(q.get("to"))
        if a and b and b > a:
            _set_custom(a, b)
    elif preset:
        s["range_preset"] = preset
    if q.get("model") in options.get("model", ()):
        s["model"] = q["model"]
    for key, name in (("versions", "version"), ("endpoints", "endpoint")):
        wanted = [v for v in q.get_all(name) if v in options.get(key, ())]
        if wanted:
            s[key] = wanted
    if q.get("bucket") in buckets:
        s["bucket"] = q["bucket"]


def to_url(preset: str, start: datetime, end: datetime, model: str | None,
           versions: tuple[str, ...], endpoints: tuple[str, ...], bucket: str) -> None:
    """Write the current choices into the URL (no rerun; only when they changed)."""
    want: dict[str, str | list[str]] = {"range": _SLUG[preset]}
    if preset == "Custom":
        want |= {"from": f"{start:%Y-%m-%dT%H:%MZ}", "to": f"{end:%Y-%m-%dT%H:%MZ}"}
    if model:
        want["model"] = model
    if versions:
        want["version"] = list(versions)
    if endpoints:
        want["endpoint"] = list(endpoints)
    if bucket != "auto":
        want["bucket"] = bucket
    q = st.query_params
    ours = ("range", "from", "to", "model", "version", "endpoint", "bucket")
    now = {k: (q.get_all(k) if k in ("version", "endpoint") else q.get(k)) for k in ours if k in q}
    if now != want:
        for k in ours:
            if k in q and k not in want:
                del q[k]
        for k, v in want.items():
            q[k] = v


def pick(sb, first: datetime, last: datetime) -> tuple[str, datetime, datetime]:
    """Draw the range widgets; returns (preset, start, end) with end exclusive, in UTC."""
    s = st.session_state
    s.setdefault("range_preset", DEFAULT_PRESET)
    preset = sb.selectbox("Time range", list(PRESETS), key="range_preset",
                          help="Presets end at the latest request in the logs. Drag across a time "
                               "chart to zoom into that span.")
    if preset == "Custom":
        d_from = max(first, last - timedelta(days=7))
        s.setdefault("custom_from_d", d_from.date())
        s.setdefault("custom_from_t", time(d_from.hour, d_from.minute))
        s.setdefault("custom_to_d", last.date())
        s.setdefault("custom_to_t", time(last.hour, last.minute))
        c = sb.columns(2)
        c[0].date_input("From (UTC)", min_value=first.date(), max_value=last.date(), key="custom_from_d")
        c[1].time_input("at", key="custom_from_t", step=60)
        c = sb.columns(2)
        c[0].date_input("To (UTC)", min_value=first.date(), max_value=last.date(), key="custom_to_d")
        c[1].time_input("at ", key="custom_to_t", step=60)
        start = datetime.combine(s["custom_from_d"], s["custom_from_t"], UTC)
        end = datetime.combine(s["custom_to_d"], s["custom_to_t"], UTC)
    elif PRESETS[preset] is None:
        start, end = first, last
    else:
        start, end = max(first, last - PRESETS[preset]), last
    if end <= start:
        end = start + timedelta(minutes=1)
    return preset, start, end


def zoom_range(event) -> tuple[datetime, datetime] | None:
    """The [start, end) a box selection spans on a time axis (Plotly gives UTC wall times
    as text), or None when it is no usable range (a click, under a minute, no box)."""
    try:
        xs = [_parse(str(x)) for x in event["selection"]["box"][0]["x"]]
    except (KeyError, IndexError, TypeError):
        return None
    if None in xs:
        return None
    a, b = sorted(xs)
    return (a, b) if b - a >= timedelta(minutes=1) else None


def _zoom(key: str) -> None:
    span = zoom_range(st.session_state.get(key))
    if span:
        _set_custom(*span)


def zoomable(fig, key: str) -> None:
    """Show a time chart whose drag (box selection) sets the global window."""
    fig.update_layout(dragmode="select", selectdirection="h")
    st.plotly_chart(fig, key=key, on_select=lambda: _zoom(key), selection_mode="box")

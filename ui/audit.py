"""Streamlit glue for the Audit page: filters, the table, and a CSV export whose text cells
cannot run as spreadsheet formulas. The queries live in monitoring.auth.audit."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import polars as pl
import streamlit as st
from sqlalchemy.engine import Engine

from monitoring.auth import audit

from . import auth

ALL = "(all)"


def filters(eng: Engine) -> dict:
    """The filter widgets; returns keyword arguments for audit.query."""
    c = st.columns([2, 1, 1, 1])
    today = datetime.now(UTC).date()
    picked = c[0].date_input("From – to (UTC, inclusive)", value=(today - timedelta(days=30), today),
                             key="audit_range")
    start, end = _range(picked, today)
    actor = c[1].selectbox("Who", [ALL, *audit.distinct(eng, "actor")], key="audit_actor")
    actions = sorted({a.split(".")[0] for a in audit.distinct(eng, "action")} |
                     set(audit.distinct(eng, "action")))
    action = c[2].selectbox("What", [ALL, *actions], key="audit_action",
                            help="A group (queue, label, auth, users) or one action.")
    outcome = c[3].selectbox("Outcome", [ALL, *audit.distinct(eng, "outcome")], key="audit_outcome")
    return {"start": start, "end": end, "actor": None if actor == ALL else actor,
            "action": None if action == ALL else action, "outcome": None if outcome == ALL else outcome}


def _range(picked, today: date) -> tuple[datetime, datetime]:
    if isinstance(picked, tuple | list) and len(picked) == 2:
        lo, hi = picked
    elif isinstance(picked, tuple | list) and len(picked) == 1:
        lo = hi = picked[0]
    elif isinstance(picked, date):
        lo = hi = picked
    else:
        lo = hi = today
    return datetime.combine(lo, time(), UTC), datetime.combine(hi, time(), UTC) + timedelta(days=1)


def table(frame: pl.DataFrame) -> None:
    if frame.height == 0:
        st.info("Nothing on record for these filters.")
        return
    st.dataframe(frame, hide_index=True, width="stretch", key="audit_table",
                 column_config={"at": st.column_config.DatetimeColumn("at (UTC)", format="YYYY-MM-DD HH:mm:ss"),
                                "detail": st.column_config.TextColumn("detail", width="large")})


def _export(eng: Engine, kwargs: dict) -> bytes:
    frame = audit.query(eng, **kwargs)
    me = auth.actor()
    # Reading the trail out of the product is itself on the trail.
    audit.record_alone(eng, me, "audit.export", "audit", {"rows": frame.height, **{
        k: v for k, v in kwargs.items() if v is not None}})
    return audit.csv_bytes(frame)


def export_button(eng: Engine, kwargs: dict) -> None:
    if not auth.can("audit.export"):
        return
    st.download_button("Audit trail · csv", data=lambda: _export(eng, kwargs), file_name="audit.csv",
                       mime="text/csv", on_click="ignore", key="audit_csv", icon=":material/download:",
                       help="Cells that a spreadsheet would run as formulas (=, +, -, @) start with '.")

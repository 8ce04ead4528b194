"""Streamlit glue shared by the Review and Queues pages: the cached database engine, the queue
picker and the queue snapshot. The widgets live in ui/review.py (the reviewer's) and
ui/queues.py (the lead's); the logic in monitoring.labelling.

Everything that came from the logs or from a reviewer (features, predictions, names,
comments) is shown through st.dataframe or escaped before it reaches Markdown: it is text,
never HTML or formatting.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st
from sqlalchemy.engine import Engine

from monitoring.config import load_config
from monitoring.fmt import md, pct
from monitoring.labelling import queues, results
from monitoring.labelling.db import DatabaseError, open_db, safe_url

__all__ = ["engine", "fmt_pct", "md", "pick_queue", "snapshot"]


@st.cache_resource(show_spinner="Opening the labelling database…")
def _engine(url: str) -> Engine:
    return open_db(url)


def engine() -> Engine | None:
    """The process-wide engine for the configured database; explains and returns None on error."""
    try:
        url = load_config().database_url
    except ValueError as exc:
        st.error(f"The configuration cannot be read: {md(exc)}")
        return None
    try:
        return _engine(url)
    except DatabaseError as exc:
        st.error(f"The labelling database is unavailable: {md(exc, limit=600)}")
        st.info(f"Database URL: {md(safe_url(url))}. Set MONITORING_DB_URL to a reachable "
                "sqlite:/// or postgresql:// URL and reload.")
        return None


def fmt_pct(v: float | None, digits: int = 1) -> str:
    return pct(v, digits)


def pick_queue(eng: Engine, key: str, *, open_only: bool = False,
               listed: list[dict[str, Any]] | None = None, url_param: str | None = None) -> dict[str, Any] | None:
    """A queue selector (newest first); None when there is no queue to show. With
    `url_param`, the choice is read from and written to the URL (kept on reload)."""
    listed = queues.list_queues(eng) if listed is None else listed
    qs = [q for q in listed if q["status"] == "open" or not open_only]
    if not qs:
        return None
    by_id = {q["id"]: q for q in qs}
    s = st.session_state
    if url_param and key not in s and st.query_params.get(url_param, "").isdigit():
        wanted = int(st.query_params[url_param])
        if wanted in by_id:
            s[key] = wanted
    chosen = st.selectbox("Queue", list(by_id), key=key,
                          format_func=lambda i: f"#{i} · {by_id[i]['name']} · {by_id[i]['done']}/"
                                                f"{by_id[i]['size']} done")
    if url_param and chosen is not None and st.query_params.get(url_param) != str(chosen):
        st.query_params[url_param] = str(chosen)
    return by_id.get(chosen)


@st.cache_data(show_spinner=False, max_entries=64)
def _snapshot(_eng: Engine, url: str, queue_id: int, stamp: tuple) -> dict[str, Any]:
    report = results.queue_report(_eng, queue_id)
    flagged = results.resolved_frame(_eng, queue_id).filter(pl.col("flagged"))
    return report | {"flagged_items": flagged}


def snapshot(eng: Engine, queue_id: int) -> dict[str, Any]:
    """The queue's report (progress, accuracy, agreement, flagged items) as ONE value, cached
    on the queue's last-change stamp: every figure drawn from it is from the same moment,
    and a new answer anywhere invalidates all of them together."""
    return _snapshot(eng, str(eng.url), queue_id, queues.last_change(eng, queue_id))

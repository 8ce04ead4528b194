"""Cached calls into monitoring/: one workspace per process, small results per filter set.

Cache keys are the source fingerprint (files, sizes, mtimes, column mapping) plus the
filters, so reloading changed logs never serves stale numbers. The files are looked at again
at most every `refresh_seconds` (monitoring.logs.freshness): new, changed or removed files open a
new workspace on the next run of any page, with no button to press.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from datetime import UTC, datetime

import polars as pl
import streamlit as st

from monitoring.config import Config, load_config
from monitoring.logs.freshness import Watcher
from monitoring.logs.workspace import Workspace, open_workspace
from monitoring.metrics import anomalies
from monitoring.metrics import service as metrics
from monitoring.query import filters as queries

from .shutdown import Jobs, exiting

TTL = 600
_EVALUATOR = Jobs("modelwatch-alerts")
ENV_KEYS = ("MONITORING_LOGS", "MONITORING_CONFIG", "MONITORING_REFERENCE", "MONITORING_DB_URL",
            "MONITORING_LABELS", "MONITORING_DATA_DIR")


@st.cache_resource(show_spinner=False)
def _watcher() -> Watcher:
    # In Streamlit's resource cache so that clearing the caches also forgets what was seen.
    return Watcher()


@st.cache_resource(show_spinner="Opening the logs…", max_entries=4)
def _workspace(logs: str, config_path: str | None, env_key: str, files: str) -> tuple[Workspace, datetime]:
    # env_key and files only key the cache: the environment the config reads, and the
    # fingerprint of the files now (a change opens a new workspace).
    # background: new logs of many rows open at once, the duplicate check finishes in a thread.
    return open_workspace(load_config(config_path, {"logs": logs}), background=True), datetime.now(UTC)


def config() -> Config:
    return load_config()


def _opened() -> tuple[Workspace, datetime]:
    cfg = config()
    env_key = "|".join(os.environ.get(k, "") for k in ENV_KEYS)
    seen = _watcher().check(cfg.logs, cfg.refresh_seconds, extra=(cfg.source_path, cfg.reference, cfg.labels))
    return _workspace(cfg.logs, cfg.source_path, env_key, seen.fingerprint)


def workspace() -> Workspace:
    return _opened()[0]


def read_at() -> datetime:
    """When the logs on screen were read (UTC)."""
    return _opened()[1]


def recheck() -> bool:
    """Look at the files now (a query just failed on them); True when they changed."""
    cfg = config()
    extra = (cfg.source_path, cfg.reference, cfg.labels)
    before = _watcher().check(cfg.logs, cfg.refresh_seconds, extra=extra).fingerprint
    _watcher().forget(cfg.logs)
    return _watcher().check(cfg.logs, cfg.refresh_seconds, extra=extra).fingerprint != before


def reload() -> None:
    st.cache_resource.clear()
    st.cache_data.clear()


@st.cache_data(ttl=TTL, show_spinner="Computing…")
def summary(_ws: Workspace, fingerprint: str, f: queries.Filters, bucket: str,
            with_previous: bool) -> metrics.Summary:
    return metrics.summarize(_ws.source, _ws.con, f, bucket, with_previous=with_previous,
                             exact_max_rows=_ws.config.exact_quantile_max_rows)


def window(view, with_previous: bool = False) -> metrics.Summary:
    """The sidebar window's summary; stops the page with a notice when it is empty."""
    from .panels import require_rows

    s = summary(view.ws, view.fingerprint, view.filters, view.bucket, with_previous)
    if not require_rows(view, s.window.requests):
        st.stop()
    return s


@st.cache_data(ttl=TTL, show_spinner=False)
def by_dimension(_ws: Workspace, fingerprint: str, f: queries.Filters, dim: str) -> pl.DataFrame:
    return metrics.by_dimension(_ws.source, _ws.con, f, dim,
                                exact_max_rows=_ws.config.exact_quantile_max_rows)


@st.cache_data(ttl=TTL, show_spinner=False)
def error_types(_ws: Workspace, fingerprint: str, f: queries.Filters, bucket: str) -> pl.DataFrame:
    return metrics.error_types(_ws.source, _ws.con, f, bucket)


@st.cache_data(ttl=TTL, show_spinner=False)
def traffic_anomalies(_ws: Workspace, fingerprint: str, f: queries.Filters, bucket: str):
    counts = anomalies.minute_counts(_ws.source, _ws.con, f)
    gaps = anomalies.find_gaps(counts, f, _ws.config.slo)
    frame, spikes = anomalies.find_spikes(counts, f, bucket, _ws.config.slo)
    return frame, spikes, gaps


@st.cache_resource(show_spinner=False, ttl=TTL)
def _episodes_future(_ws: Workspace, fingerprint: str) -> Future:
    # One evaluation per set of logs, started in the background by the first page that asks:
    # a page that only shows episodes when ready (Overview) never waits for it.
    # Episodes are stored (alert history): evaluated on exact logs, after the duplicate check.
    return _EVALUATOR.submit(_evaluate, _ws)


def _evaluate(ws: Workspace) -> list:
    # After the first page is drawn and the warm-up has imported what this needs (ui/warm.py):
    # the app's first open does not import scipy for it, nor share the interpreter with it.
    from . import warm

    warm.settled()
    ws.wait()
    if exiting():   # queued before the exit: nobody is left to read it (ui.shutdown)
        raise RuntimeError("the app is exiting: alert rules not evaluated")
    from monitoring.alerts import evaluate

    return evaluate(ws)


def alert_episodes_ready(ws: Workspace, fingerprint: str) -> bool:
    """Start the evaluation if needed; True once its episodes are there."""
    return _episodes_future(ws, fingerprint).done()


def alert_episodes(_ws: Workspace, fingerprint: str) -> list:
    """Every episode over the history, from the logs alone (no database needed); waits for
    the background evaluation. Its errors are raised here, as if it had run inline."""
    fut = _episodes_future(_ws, fingerprint)
    if not fut.done():
        # The evaluation waits for the warm-up, which app.py starts after a page is drawn: a
        # first run that waits here (a link to Alerts or Weekly health) starts it now, while
        # this thread imports nothing (ui/warm.py).
        from . import warm

        warm.start()
        with warm.waiting(), st.spinner("Evaluating alert rules over the history…"):
            return fut.result()
    return fut.result()


@st.cache_resource(show_spinner=False)
def alerts_db(url: str):
    from monitoring.alerts.store import open_alerts_db

    return open_alerts_db(url)


@st.cache_data(ttl=TTL, show_spinner=False)
def _stored(_ws: Workspace, fingerprint: str, url: str) -> bool:
    # Stored once per evaluation, not on every rerun; a failure raises, so it is not cached.
    from monitoring.alerts.store import sync

    sync(alerts_db(url), _ws.config.logs, alert_episodes(_ws, fingerprint))
    return True


def alert_history(ws: Workspace, fingerprint: str) -> tuple[pl.DataFrame, str | None]:
    """The alert history with acknowledgements, and None; or, when the database cannot be
    used, the episodes evaluated from the logs and one sentence saying what failed. Firing
    alerts are shown either way."""
    from monitoring.alerts.store import episodes_frame, history
    from monitoring.database import FAILURES, describe

    url = ws.config.database_url
    try:
        engine = alerts_db(url)
    except FAILURES as exc:
        return episodes_frame(alert_episodes(ws, fingerprint)), describe(exc, url)
    problem = None
    try:
        _stored(ws, fingerprint, url)
    except FAILURES as exc:
        problem = describe(exc, url)
    try:
        return history(engine, ws.config.logs), problem
    except FAILURES as exc:
        return episodes_frame(alert_episodes(ws, fingerprint)), problem or describe(exc, url)


@st.cache_data(ttl=TTL, show_spinner="Writing this week's summary…")
def weekly(_ws: Workspace, fingerprint: str, week: str) -> dict:
    from dataclasses import replace

    from monitoring.reports.summary import alerts_in_week, standard_providers, weekly_summary

    # The alert history is the Alerts page's cached evaluation: computed once for both pages.
    providers = replace(standard_providers(_ws.config.database_url),
                        alerts=alerts_in_week(lambda ws: alert_episodes(ws, fingerprint)))
    return weekly_summary(_ws, week, providers)

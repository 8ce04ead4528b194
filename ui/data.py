"""Cached calls into monitoring/: one workspace per process, small results per filter set.

Cache keys are the source fingerprint (files, sizes, mtimes, column mapping) plus the
filters, so reloading changed logs never serves stale numbers.
"""

from __future__ import annotations

import os

import polars as pl
import streamlit as st

from monitoring import anomalies, metrics, queries
from monitoring.config import Config, load_config
from monitoring.workspace import Workspace, open_workspace

TTL = 600


@st.cache_resource(show_spinner="Opening the logs…")
def _workspace(logs: str, config_path: str | None, env_key: str) -> Workspace:
    # env_key only keys the cache: the environment variables the config reads.
    return open_workspace(load_config(config_path, {"logs": logs}))


def config() -> Config:
    return load_config()


def workspace() -> Workspace:
    cfg = config()
    env_key = "|".join(os.environ.get(k, "") for k in ("MONITORING_LOGS", "MONITORING_CONFIG",
                                                        "MONITORING_REFERENCE", "MONITORING_DB_URL"))
    return _workspace(cfg.logs, cfg.source_path, env_key)


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


@st.cache_data(ttl=TTL, show_spinner="Evaluating alert rules over the history…")
def alert_episodes(_ws: Workspace, fingerprint: str) -> list:
    """Every episode over the history, stored in the alert history once per evaluation (not
    on every rerun of a page)."""
    from monitoring.alerts import evaluate
    from monitoring.alerts.store import sync

    episodes = evaluate(_ws)
    sync(alerts_db(_ws.config.database_url), _ws.config.logs, episodes)
    return episodes


@st.cache_resource(show_spinner=False)
def alerts_db(url: str):
    from monitoring.alerts.store import open_alerts_db

    return open_alerts_db(url)


@st.cache_data(ttl=TTL, show_spinner="Writing this week's summary…")
def weekly(_ws: Workspace, fingerprint: str, week: str) -> dict:
    from dataclasses import replace

    from monitoring.summary import alerts_in_week, standard_providers, weekly_summary

    # The alert history is the Alerts page's cached evaluation: computed once for both pages.
    providers = replace(standard_providers(_ws.config.database_url),
                        alerts=alerts_in_week(lambda ws: alert_episodes(ws, fingerprint)))
    return weekly_summary(_ws, week, providers)

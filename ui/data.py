"""Cached calls into monitoring/: one workspace per process, small results per filter set.

Cache keys are the source fingerprint (files, sizes, mtimes, column mapping) plus the
filters, so reloading changed logs never serves stale numbers; what reads labels is keyed by
`labels_mark` as well (the labels file and the reviewers' answers move without the logs). The files are looked at again
at most every `refresh_seconds` (monitoring.logs.freshness): new, changed or removed files open a
new workspace on the next run of any page, with no button to press.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count

import polars as pl
import streamlit as st

from monitoring import priority
from monitoring.config import Config, load_config
from monitoring.logs.freshness import Watcher
from monitoring.logs.workspace import Workspace, open_workspace
from monitoring.metrics import anomalies
from monitoring.metrics import service as metrics
from monitoring.query import filters as queries

from .shutdown import Jobs, exiting

TTL = 600
_EVALUATOR = Jobs("modelwatch-alerts")
_SERIALS = count(1)
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
def _labels_db(url: str):
    # Kept like the results the mark keys: a database that cannot be opened (a 0-byte file
    # is looked at for a second) is tried again after TTL or "Reload logs", not on every run.
    from monitoring.labelling.db import DatabaseError, open_db

    try:
        return open_db(url)
    except DatabaseError:
        return None


def labels_mark(ws: Workspace) -> str:
    """Where the labels stand now (monitoring.quality.marks): with the fingerprint, the key of
    every cached result that reads labels. About a millisecond; "…db-unavailable" when the
    database cannot be used (the pages that need it say why)."""
    from monitoring.quality.marks import labels_mark_from

    return labels_mark_from(ws.config, _labels_db(ws.config.database_url))


@dataclass
class _Run:
    """One alert evaluation: its future (the episodes) and the labels mark it read when it
    started (None until then: a queued run reads labels at least as new as anyone's now)."""
    mark: str | None = None
    future: Future | None = None
    serial: int = field(default_factory=lambda: next(_SERIALS))


class _Evaluations:
    """The alert evaluations of one set of logs: a new one when the labels move past the
    newest's mark; the newest finished one is shown meanwhile."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: list[_Run] = []    # the newest finished one (if any) and the newer ones

    def shown(self) -> _Run | None:
        return next((r for r in reversed(self.runs) if r.future.done() and not r.future.cancelled()), None)

    def newest(self) -> _Run | None:
        live = [r for r in self.runs if not r.future.cancelled()]   # cancelled: a test's teardown
        return live[-1] if live else None

    def start(self, ws: Workspace) -> _Run:
        run = _Run()
        run.future = _EVALUATOR.submit(_evaluate, ws, run)
        shown = self.shown()
        if shown is not None:   # older finished ones are never shown again
            self.runs = self.runs[self.runs.index(shown):]
        self.runs.append(run)
        return run


@st.cache_resource(show_spinner=False, ttl=TTL)
def _evaluations(_ws: Workspace, fingerprint: str) -> _Evaluations:
    # One evaluation per set of logs and labels, started in the background by the first page
    # that asks: a page that only shows episodes when ready (Overview) never waits for it.
    # Episodes are stored (alert history): evaluated on exact logs, after the duplicate check.
    return _Evaluations()


def _evaluation(ws: Workspace, fingerprint: str, mark: str | None = None) -> tuple[_Run | None, _Run]:
    """(the newest finished evaluation or None, the newest), starting one when the labels
    moved past the newest's mark. `mark` None: the labels now, looked at only once an
    evaluation has finished (which opened the database in the background)."""
    ev = _evaluations(ws, fingerprint)
    with ev.lock:
        newest, shown = ev.newest(), ev.shown()
        if newest is None:
            return None, ev.start(ws)
    if mark is None and shown is not None:
        mark = labels_mark(ws)
    with ev.lock:
        newest = ev.newest()
        # A newest with no mark yet reads the labels when it starts (newer than `mark`), unless
        # it ended before it could (the app exiting): then it is no answer for these labels.
        # So verdicts recorded while one evaluation runs queue at most one more, however many.
        unread = newest.mark is None and newest.future.done()
        if mark is not None and (unread or (newest.mark is not None and newest.mark != mark)):
            newest = ev.start(ws)
        return ev.shown(), newest


def _evaluate(ws: Workspace, run: _Run | None = None) -> list:
    # After the first page is drawn and the warm-up has imported what this needs (ui/warm.py):
    # the app's first open does not import scipy for it, nor share the interpreter with it.
    from . import warm

    warm.settled()
    ws.wait()
    if exiting():   # queued before the exit: nobody is left to read it (ui.shutdown)
        raise RuntimeError("the app is exiting: alert rules not evaluated")
    from monitoring.alerts import evaluate_kept
    from monitoring.quality.marks import labels_mark as mark_now

    # Read once, before the rules read the labels: the run's mark is the one in the key of the
    # evaluation kept on disk (data_dir/cache/alerts), so a restarted server reads it at once.
    mark = mark_now(ws.config)   # not the cached engine: no cached call off a script run
    if run is not None:
        run.mark = mark
    with priority.background(warm.JOB_WAIT):   # the pages opened meanwhile go first
        return evaluate_kept(ws, mark=mark)


def alert_episodes_ready(ws: Workspace, fingerprint: str) -> bool:
    """Start the evaluation if needed (again when the labels changed); True once episodes
    are there to show (an older evaluation's while a newer one runs)."""
    return _evaluation(ws, fingerprint)[0] is not None


def alert_episodes(_ws: Workspace, fingerprint: str, mark: str | None = None) -> list:
    """Every episode over the history, from the logs alone (no database needed). Without
    `mark`: the newest finished evaluation's, waiting only when there is none yet; with a
    mark (from labels_mark): an evaluation that read those labels or newer ones, waited for.
    Its errors are raised here, as if it had run inline."""
    shown, newest = _evaluation(_ws, fingerprint, mark)
    return _episodes(newest if mark is not None or shown is None else shown)


def alert_episodes_done(ws: Workspace, fingerprint: str, mark: str) -> list | None:
    """The episodes of a finished evaluation that read these labels (`mark`) or newer ones;
    None while it runs (started if needed). Its errors are raised here."""
    _, newest = _evaluation(ws, fingerprint, mark)
    return newest.future.result() if newest.future.done() else None


def _episodes(run: _Run) -> list:
    fut = run.future
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
def _stored(_ws: Workspace, fingerprint: str, url: str, serial: int, _eps: list) -> bool:
    # Stored once per evaluation (its serial), not on every rerun; a failure raises, so it is
    # not cached. Given the episodes, never waiting for them: a run waiting here would hold
    # the cached call's lock, and a second run blocked on that lock is still counted in, so
    # the evaluation would wait for it (ui/warm.pages_first).
    from monitoring.alerts.store import sync

    sync(alerts_db(url), _ws.config.logs, _eps)
    return True


def alert_history(ws: Workspace, fingerprint: str) -> tuple[pl.DataFrame, str | None]:
    """The alert history with acknowledgements, and None; or, when the database cannot be
    used, the episodes evaluated from the logs and one sentence saying what failed. Firing
    alerts are shown either way. The newest finished evaluation (a newer one may be running
    for new labels), or the first, waited for."""
    from monitoring.alerts.store import episodes_frame, history
    from monitoring.database import FAILURES, describe

    shown, newest = _evaluation(ws, fingerprint)
    run = shown or newest
    episodes = _episodes(run)     # waited for here, counted out (`_episodes`), not in `_stored`
    url = ws.config.database_url
    try:
        engine = alerts_db(url)
    except FAILURES as exc:
        return episodes_frame(episodes), describe(exc, url)
    problem = None
    try:
        _stored(ws, fingerprint, url, run.serial, episodes)
    except FAILURES as exc:
        problem = describe(exc, url)
    try:
        return history(engine, ws.config.logs), problem
    except FAILURES as exc:
        return episodes_frame(episodes), problem or describe(exc, url)


def weekly(ws: Workspace, fingerprint: str, week: str) -> dict:
    """The weekly summary of `week` for the logs and the labels as they are now. Its alerts
    are the background evaluation's (shared with the Alerts page) once it has read these
    labels; until then `alerts_pending` is True, `alerts` empty and the rest complete: at
    100M rows the evaluation takes 15 s, which the rest of the page need not wait for."""
    from monitoring.reports.providers import episodes_in_week

    mark = labels_mark(ws)
    s = _weekly(ws, fingerprint, mark, week)
    try:
        episodes = alert_episodes_done(ws, fingerprint, mark)
    except Exception as exc:   # the rest of the summary stands; the page and the exports say why
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return s | {"alerts": [], "alerts_pending": False, "alerts_error": reason}
    if episodes is None:
        return s | {"alerts": [], "alerts_pending": True}
    return s | {"alerts": episodes_in_week(episodes, s["start"], s["end"]), "alerts_pending": False}


@st.cache_data(ttl=TTL, show_spinner="Writing this week's summary…")
def _weekly(_ws: Workspace, fingerprint: str, mark: str, week: str) -> dict:
    from dataclasses import replace

    from monitoring.reports.providers import standard_providers
    from monitoring.reports.summary import weekly_summary

    # Without the alerts (ui.data.weekly adds them). Percentiles as on the Latency page:
    # exact up to the configured limit, the histogram above.
    providers = replace(standard_providers(_ws.config.database_url), alerts=None)
    return weekly_summary(_ws, week, providers, exact=False)

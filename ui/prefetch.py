"""The two slowest first visits, computed in the background once the logs are open.

Measured on the sample logs (90k rows): the Drift page's first visit spent 3.2 s comparing
the window with the reference and scoring every chunk, Weekly health 2.5-4 s on the week's
drift, version comparison and alerts; every other page under 0.6 s. When the first page has
drawn its sidebar for a set of logs, a background thread waits for the alert evaluation
(ui.data's worker, which the Overview starts) and then computes, for the filters on screen,
what those two pages show untouched:
drift of the window against the default reference by the default chunks, and the summary of
the week the page opens on. It goes through the very cached calls the pages make, so a page
visited later reads the finished result, and one visited meanwhile joins the computation
(Streamlit's per-key lock in st.cache_data) instead of running it twice. Nothing else depends
on it: a failure is logged and the page then computes, and explains, as before.

Its own thread, not the evaluation's worker: a page holding a cached call's lock may wait for
the evaluation, and the evaluation waits for nothing, so no wait can go round in a circle.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future

import streamlit as st

from monitoring.logs.workspace import Workspace
from monitoring.query.filters import Filters

from . import data
from .shutdown import Jobs, exiting

_log = logging.getLogger(__name__)
WORKER_NAME = "modelwatch-prefetch"
_WORKER = Jobs(WORKER_NAME)
_latest = [0]   # the newest job: one for older logs (or from before a cache clear) is skipped


class _NotOurThread(logging.Filter):
    # Cached calls made off a script run log "missing ScriptRunContext" (their spinners have
    # nowhere to go): expected in the worker, still shown for any other thread.
    def filter(self, record: logging.LogRecord) -> bool:
        return not threading.current_thread().name.startswith(WORKER_NAME + "_")


logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_NotOurThread())


def shown_week(weeks: list[str], default: str) -> str:
    """The week Weekly health opens on: the default week when the logs hold it, else the latest."""
    return default if default in weeks else weeks[-1]


def start(view) -> None:
    """Queue the prefetch for these logs (once per set of logs, with the first filters seen)."""
    if view.ws.source.has_time:
        _prefetched(view.ws, view.fingerprint, view)


# Once per set of logs, no TTL: on big logs a recompute every ten minutes for pages nobody
# opens would cost more than it saves; after the results' own TTL a page computes as before.
@st.cache_resource(show_spinner=False, max_entries=4)
def _prefetched(_ws: Workspace, fingerprint: str, _view) -> Future:
    data.alert_episodes_ready(_ws, fingerprint)     # starts the evaluation if no page has yet
    _latest[0] += 1
    return _WORKER.submit(_run, _ws, fingerprint, _view.filters, _view, _latest[0])


def _run(ws: Workspace, fingerprint: str, f: Filters, view, job: int) -> None:
    from . import warm

    warm.settled()   # after the first page and the warm-up (ui/warm.py)
    if job != _latest[0] or exiting():
        return
    if not ws.wait() or ws.fingerprint != fingerprint:
        return   # figures not exact yet: the page run after the duplicate check queues a new job
    try:
        data.alert_episodes(ws, fingerprint)   # after the evaluation: not three heavy jobs at once
    except Exception:   # pages that show alerts say why; the drift below does not need them
        pass
    for what, part in (("drift", lambda: _drift(ws, f, view)), ("weekly summary", lambda: _weekly(ws, fingerprint))):
        # Between its parts, not inside them: a page may be waiting for a part (the cached
        # call's lock), so a part never waits for the pages (monitoring.priority).
        warm.pages_first(warm.PAGE_WAIT)
        if job != _latest[0] or exiting():
            return
        try:
            part()
        except Exception as exc:   # the page computes it again and says what is wrong in its own words
            if not exiting():
                _log.warning("prefetch of the %s for %s stopped: %s", what, ws.config.logs, exc)


def _drift(ws: Workspace, f: Filters, view) -> None:
    from . import drift as ud

    s = ud.settings()
    ref = ud.default_reference(view, s)
    if ref is not None:
        ud.over_time(ws, ref, f, s, ud.default_chunk(s))    # the whole window first, then every chunk


def _weekly(ws: Workspace, fingerprint: str) -> None:
    from monitoring.reports.summary import default_week, weeks_with_data

    weeks = weeks_with_data(ws)
    if weeks:
        data.weekly(ws, fingerprint, shown_week(weeks, default_week(ws)))

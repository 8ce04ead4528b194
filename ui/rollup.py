"""The background rollup build in the app: start it, show its progress, attach the store.

    rollup.sidebar_status(ws)     # from the sidebar, every run

When the [rollups] settings ask for a store (monitoring.rollup.settings) and none covers the
logs as they are, a background thread builds or updates it (monitoring.rollup.background);
no page waits. Every run re-attaches the store when its manifest changed (one stat when it
did not): as the build lands its steps, pages read the files rolled so far from the store
and the rest from the raw logs (monitoring.rollup.partial), complete all along. The sidebar
shows a progress bar (files and rows done of total) that refreshes itself every two
seconds; when the build is done the whole store answers.
"""

from __future__ import annotations

import streamlit as st

from monitoring.fmt import md
from monitoring.logs.workspace import Workspace
from monitoring.rollup import background

REFRESH_S = 2.0


def _attach(ws: Workspace) -> bool:
    """Attach the store as it answers for the files now (re-read only when its manifest
    changed); True when it covers every file."""
    current = ws.source.rollups
    fresh = background.refresh(ws.config, ws.source, current)
    if fresh is not current:
        ws.source.rollups = fresh
    return fresh is not None and fresh.complete


def ensure(ws: Workspace) -> background.Progress | None:
    """Start the build when wanted and needed; the job's progress, or None when not wanted."""
    complete = _attach(ws)
    if not background.wanted(ws.config, ws.extent.rows):
        return None
    job = background.job_for(ws.config)
    p = job.progress()
    if complete or job.running():
        return p
    if p.state == background.FAILED and p.fingerprint == ws.source.fingerprint:
        return p            # failed on these very files: say so, do not retry every run
    return job.start(ws.source.fingerprint).progress()


@st.fragment(run_every=REFRESH_S)
def _bar(ws: Workspace) -> None:
    p = background.job_for(ws.config).progress()
    if p.state == background.DONE and _attach(ws):
        st.caption(md(p.text))
    elif p.state == background.RUNNING:
        _attach(ws)          # a step landed: the next page run reads it
        st.progress(p.fraction, text=md(p.text))
    elif p.state == background.FAILED:
        st.caption(f"{md(p.text)} Figures come from the raw logs.")


def sidebar_status(ws: Workspace) -> None:
    p = ensure(ws)
    done = ws.source.rollups is not None and ws.source.rollups.complete
    if p is None or (p.state == background.DONE and done and not _just_done(p)):
        return
    with st.sidebar:
        _bar(ws)


def _just_done(p: background.Progress) -> bool:
    import time

    return time.time() - p.finished < 60     # "up to date" is shown for a minute after a build

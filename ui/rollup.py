"""The background rollup build in the app: start it, show its progress, attach the store.

    rollup.sidebar_status(ws)     # from the sidebar, every run

When the [rollups] settings ask for a store (monitoring.rollup.settings) and none covers the
logs as they are, a background thread builds or updates it (monitoring.rollup.background);
no page waits: figures come from the raw logs, complete, until it is done. The sidebar shows
a progress bar (files and rows done of total) that refreshes itself every two seconds; when
the build is done the store is attached to the open workspace and every page reads it.
"""

from __future__ import annotations

import streamlit as st

from monitoring.fmt import md
from monitoring.logs.workspace import Workspace
from monitoring.rollup import background

REFRESH_S = 2.0


def _attach(ws: Workspace) -> bool:
    """Attach the store when it covers the files as they are now; True when attached."""
    if ws.source.rollups is None:
        ws.source.rollups = background.covering_store(ws.config, ws.source)
    return ws.source.rollups is not None


def ensure(ws: Workspace) -> background.Progress | None:
    """Start the build when wanted and needed; the job's progress, or None when not wanted."""
    if not background.wanted(ws.config, ws.extent.rows):
        return None
    job = background.job_for(ws.config)
    p = job.progress()
    if ws.source.rollups is not None or job.running():
        return p
    if _attach(ws):
        return job.progress()
    if p.state == background.FAILED and p.fingerprint == ws.source.fingerprint:
        return p            # failed on these very files: say so, do not retry every run
    return job.start(ws.source.fingerprint).progress()


@st.fragment(run_every=REFRESH_S)
def _bar(ws: Workspace) -> None:
    p = background.job_for(ws.config).progress()
    if p.state == background.DONE and _attach(ws):
        st.caption(md(p.text))
    elif p.state == background.RUNNING:
        st.progress(p.fraction, text=md(p.text))
    elif p.state == background.FAILED:
        st.caption(f"{md(p.text)} Figures come from the raw logs.")


def sidebar_status(ws: Workspace) -> None:
    p = ensure(ws)
    if p is None or (p.state == background.DONE and ws.source.rollups is not None and not _just_done(p)):
        return
    with st.sidebar:
        _bar(ws)


def _just_done(p: background.Progress) -> bool:
    import time

    return time.time() - p.finished < 60     # "up to date" is shown for a minute after a build

"""The background duplicate check on the pages: a notice while it runs, a rerun when done.

    dupcheck.notice(ws)     # from the sidebar, every run

An app that opens new logs of many rows shows them before the exact duplicate check is done
(monitoring.logs.dupcheck). Until then every page says, above its figures, that a duplicated
request may be counted more than once; the notice refreshes itself every two seconds and,
once the check is done, reruns the page: cache keys carry `ws.fingerprint`, so every figure
is then computed again, exact.
"""

from __future__ import annotations

import streamlit as st

from monitoring.fmt import md
from monitoring.logs.workspace import Workspace

REFRESH_S = 2.0


@st.fragment(run_every=REFRESH_S)
def _running(ws: Workspace) -> None:
    if ws.checking is not None and ws.checking.done():
        st.rerun()                  # the whole page again, now with exact figures
    st.info(md(ws.checking.text), icon=":material/hourglass_top:")


def notice(ws: Workspace) -> None:
    check = ws.checking
    if check is None or check.exact:
        return
    if check.done():                # failed: say so on every page, figures stay marked
        st.warning(md(check.text), icon=":material/warning:")
        return
    _running(ws)

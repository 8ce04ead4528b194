"""What any page shows when something outside it fails: one sentence, never a traceback.

app.py runs every page inside `page()`. The page's own checks explain the expected cases
(no logs, empty window, database unavailable); this catches what can still happen between
two checks: a log file truncated or replaced while a query reads it, the database going away
or being emptied while the app runs, a setting edited into something invalid.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import duckdb
import streamlit as st

from monitoring.config import ConfigError
from monitoring.database import FAILURES, describe, first_line
from monitoring.fmt import md
from monitoring.logs.source import LogSourceError

_RETRIED = "_guard_reread_logs"


@contextlib.contextmanager
def page() -> Iterator[None]:
    retried = st.session_state.pop(_RETRIED, False)    # set only for the run right after a retry
    try:
        yield
    except duckdb.Error as exc:
        from . import data

        try:
            changed = data.recheck()
        except (ConfigError, LogSourceError, OSError):
            changed = True     # the next run says what is wrong with the settings or the logs
        # The files changed under the query: show them as they are now. Once: a file that is
        # still being written keeps changing, and the page then says so instead of looping.
        if changed and not retried:
            st.session_state[_RETRIED] = True
            st.rerun()
        st.error(f"The logs could not be read: {md(first_line(exc))}. Nothing from this read is shown.")
        st.info("If a log file is being written or replaced, this page shows it once it is complete.")
    except FAILURES as exc:
        st.error(f"The product's database cannot be used: {md(describe(exc))}.")
        st.info("Set MONITORING_DB_URL to a reachable sqlite:/// or postgresql:// URL. Pages that "
                "only read the logs keep working.")
    except (ConfigError, LogSourceError) as exc:
        st.error(f"{'The configuration is invalid' if isinstance(exc, ConfigError) else 'The logs cannot be opened'}: "
                 f"{md(str(exc), limit=600)}")


def guarded(fn: Callable[[], None]) -> Callable[[], None]:
    """`fn` run inside `page()`: for fragments, which rerun without the rest of the page."""
    def run() -> None:
        with page():
            fn()
    return run

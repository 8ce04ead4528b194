"""The exact duplicate check, run in a thread while the app already shows the logs.

    ws = open_workspace(config, background=True)
    ws.checking.text     # "Checking 100,000,000 rows for duplicate request ids…"
    ws.wait()            # True once the figures are exact

The check (monitoring.logs.facts) is the one pass of an open that groups every request id;
on new logs of many rows it costs several scans. The grouped facts (health counts, extent)
are already there, so the app opens at once and says, until the check is done, that a
duplicated request may be counted more than once. When done, the workspace's duplicates,
extent and health are replaced by the exact ones (the `logs` view drops the copies) and
`ws.fingerprint` loses its mark, so cached figures are computed again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import duckdb

from .. import exits

if TYPE_CHECKING:
    from .workspace import Workspace


class DuplicateCheck:
    def __init__(self, ws: Workspace, work: Callable[[], tuple]):
        self.rows = ws.health.total_rows
        self.error: str | None = None
        self._ok = False                    # set only once the exact figures are in place
        self._done = threading.Event()
        # stopped at exit, its query interrupted (monitoring.exits); `work` runs on the
        # workspace's connection, noted for it
        self._con = ws.con
        self._thread = exits.thread(self._run, ws, work, name="modelwatch-duplicates")

    def _run(self, ws: Workspace, work: Callable[[], tuple]) -> None:
        exits.uses(self._con)
        try:
            n, ext, health = work()
            ws.duplicates, ws.extent, ws.health = n, ext, health
            self._ok = True
        except (duckdb.Error, OSError, ValueError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            self.error = f"The duplicate check failed ({first}); reload the logs to try again."
        except Exception as exc:   # a thread's end: anything else is said, not lost
            self.error = (f"The duplicate check stopped unexpectedly ({type(exc).__name__}); "
                          "reload the logs to try again.")
        finally:
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    @property
    def exact(self) -> bool:
        return self._done.is_set() and self._ok

    def join(self, timeout: float | None = None) -> None:
        self._done.wait(timeout)

    @property
    def text(self) -> str:
        """One sentence for the pages: what runs, or why the figures are still not exact."""
        if self.error:
            return f"{self.error} Until then a duplicated request may be counted more than once."
        if self.done():
            return f"Checked {self.rows:,} rows for duplicate request ids: figures are exact."
        return (f"Checking {self.rows:,} rows for duplicate request ids… until it is done, a "
                "duplicated request may be counted more than once.")

"""Background threads that run DuckDB work end before the interpreter finalises.

    t = exits.thread(self._run, name="modelwatch-rollups")   # a daemon thread, started
    cur = sql.cursor(con)          # in such a thread: interrupted at exit (exits.uses)

A daemon thread still inside a DuckDB query when Python finalises is stopped as it takes the
GIL back, and that unwinding through DuckDB's C++ frames aborts the whole process ("FATAL:
exception not rethrown", exit status 134): a server stopped while a rollup build or a
duplicate check ran, or a script that opened big logs and ended. At exit (an `atexit` hook:
after the main thread has finished, before finalisation) every such thread still alive has
the DuckDB connections it uses interrupted, so its query raises at once, and is joined for at
most JOIN_S seconds in all. The work is lost, never half-written: the stores write whole files
under temporary names (rollup.store, logs.workspace's caches).
"""

from __future__ import annotations

import atexit
import collections
import threading
import time
from collections.abc import Callable
from typing import Any

JOIN_S = 10.0          # at most this long, in all, at exit
_KEEP = 8              # the connections a thread used last (its running query is on one)
_lock = threading.Lock()
_live: dict[int, tuple[threading.Thread, collections.deque]] = {}


def thread(target: Callable[..., Any], *args: Any, name: str) -> threading.Thread:
    """Start a daemon thread running `target(*args)`, stopped at exit as above."""
    t = threading.Thread(target=_run, args=(target, args), name=name, daemon=True)
    t.start()
    return t


def _run(target: Callable[..., Any], args: tuple) -> None:
    me = threading.current_thread()
    with _lock:
        _live[me.ident] = (me, collections.deque(maxlen=_KEEP))
    try:
        target(*args)
    finally:
        with _lock:
            _live.pop(me.ident, None)


def uses(con: Any) -> Any:
    """Note a DuckDB connection (or cursor) the calling thread runs queries on; a no-op off
    the threads started here. Returns `con`."""
    with _lock:
        entry = _live.get(threading.get_ident())
        if entry is not None:
            entry[1].append(con)
    return con


def alive() -> list[str]:
    """The names of the threads started here that still run."""
    with _lock:
        return [t.name for t, _ in _live.values() if t.is_alive()]


def stop(timeout: float = JOIN_S) -> list[str]:
    """Interrupt the connections of every thread started here, join them (at most `timeout`
    seconds in all); returns the names of those still running."""
    deadline = time.monotonic() + timeout
    while True:   # again and again: an interrupted thread may start another query on its way out
        with _lock:
            live = [(t, list(cons)) for t, cons in _live.values() if t.is_alive()]
        for _, cons in live:
            for con in cons:
                try:
                    con.interrupt()
                except Exception:   # closed, or not a DuckDB connection: nothing runs on it
                    pass
        for t, _ in live:
            t.join(min(0.05, max(0.0, deadline - time.monotonic())))
        still = [t.name for t, _ in live if t.is_alive()]
        if not still or time.monotonic() >= deadline:
            return still


atexit.register(stop)

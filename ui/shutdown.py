"""Background jobs stand down once the interpreter exits, or when told to (`stand_down`).

At exit Python joins every ThreadPoolExecutor's worker, and the jobs still queued there run
then: a prefetch or an alert evaluation queued by a page computed after the server (or a
test run) had ended, logged through streams already closed ("No runtime found", "Logging
error") and failed on thread pools that take no more work ("cannot schedule new futures
after interpreter shutdown"). `threading` marks the exit before it runs those joins
(`threading._SHUTTING_DOWN`, read only, the flag its own exit hooks go by; Python 3.11 to
3.13), so a job that asks `exiting()` first, and between its parts, ends at once, and says
nothing of a failure the exit caused; a cached call already running then logs nothing either
(Streamlit's caches say "No runtime found" off a script run).

`stand_down()` does the same on request, for a process that goes on (the test suite, at the
end of each test module): `exiting()` is True while it waits for the jobs queued or running
(each `Jobs` pool, the warm-up, rollup builds and duplicate checks: every thread named
`modelwatch-…`), then False again. So the work one module's page tests queued neither runs
into the next module's tests nor competes with them for the cores.

    left = shutdown.stand_down(timeout=120)   # [] once nothing runs; else what still does
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

PREFIX = "modelwatch-"   # every background thread the app starts is named so
_standing_down = threading.Event()
_pools: list[Jobs] = []


def exiting() -> bool:
    """True once the interpreter has begun to exit (its main thread has finished), and while
    `stand_down` waits for the jobs."""
    return (_standing_down.is_set() or bool(getattr(threading, "_SHUTTING_DOWN", False))
            or not threading.main_thread().is_alive())


class Jobs:
    """One worker thread running background jobs in order, known to `stand_down`.

        EVALUATOR = Jobs("modelwatch-alerts")
        fut = EVALUATOR.submit(fn, *args)     # a concurrent.futures.Future
    """

    def __init__(self, name: str):
        if not name.startswith(PREFIX):
            raise ValueError(f"background job threads are named {PREFIX}…")
        self.name = name
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._pending = 0            # submitted and not finished
        self._queued: set[Future] = set()   # submitted and not finished (drop_queued)
        _pools.append(self)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            self._pending += 1
        try:
            fut = self._pool.submit(fn, *args, **kwargs)
        except BaseException:
            self._finished(None)
            raise
        with self._lock:
            if not fut.done():
                self._queued.add(fut)
        fut.add_done_callback(self._finished)
        return fut

    def _finished(self, fut: Future | None) -> None:
        with self._lock:
            self._pending -= 1
            self._queued.discard(fut)

    def drop_queued(self) -> int:
        """Cancel the jobs not started yet (their futures say so; a running one goes on);
        returns how many were cancelled."""
        with self._lock:
            queued = list(self._queued)
        return sum(f.cancel() for f in queued)

    def busy(self) -> bool:
        """True while a job is queued or running."""
        with self._lock:
            return self._pending > 0

    def owns(self, thread: threading.Thread) -> bool:
        return thread.name.startswith(self.name + "_")

    def drain(self, timeout: float) -> bool:
        """Wait until every job submitted so far has ended; True when they have."""
        try:   # one worker, first in first out: the no-op ends after every job queued before it
            self.submit(_nothing).result(max(0.0, timeout))
        except (FutureTimeout, RuntimeError):   # RuntimeError: the pool was shut down
            return False
        return not self.busy()


def _threads() -> list[threading.Thread]:
    # The pools' own workers stay alive between jobs: they are drained, not joined.
    return [t for t in threading.enumerate() if t.name.startswith(PREFIX) and t is not threading.current_thread()
            and not any(p.owns(t) for p in _pools)]


def running() -> list[str]:
    """The app's background work queued or running now: each `Jobs` pool with a job queued
    or under way (by its name), then every other live thread named `modelwatch-…`."""
    return [p.name for p in _pools if p.busy()] + [t.name for t in _threads()]


def stand_down(timeout: float = 120.0) -> list[str]:
    """Tell the background jobs to stop, wait (at most `timeout` seconds in all) for those
    queued or running to end, then let new jobs run again. Returns what still ran at the
    deadline (as `running()`), [] when everything ended."""
    deadline = time.monotonic() + timeout
    _standing_down.set()
    try:
        for pool in _pools:
            pool.drain(deadline - time.monotonic())
        for t in _threads():
            t.join(max(0.0, deadline - time.monotonic()))
        return running()
    finally:
        _standing_down.clear()


def drop_queued() -> int:
    """Cancel every pool's jobs that have not started, without waiting for the running ones:
    for a process whose caches were just cleared (the test suite, after each page test), so
    that nobody's next wait for an evaluation queues behind work no cache holds any more."""
    return sum(pool.drop_queued() for pool in _pools)


def _nothing() -> None:
    return None


class _QuietAtExit(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not exiting()


for _name in ("streamlit.runtime.caching.cache_data_api", "streamlit.runtime.caching.cache_resource_api"):
    logging.getLogger(_name).addFilter(_QuietAtExit())

"""Background work that lets the pages go first.

The app's alert evaluation runs in a thread of the server process, beside the page runs, for
seconds of both cores at 100M rows. Once started it used to compete with every page opened
meanwhile: the first visits of Drift and Compare at 100M spent 8-9 s of server CPU, most of
it the evaluation's. Now a background job marks its thread, and before each of its queries
(`logs.sql.cursor`) and chance-band simulation it calls `checkpoint()`, which waits while
the UI says a page run is in progress (the gate the UI installs: `ui.warm.pages_first`).

    with priority.background(budget=30.0):   # around a job; at most 30 s of waiting in all
        ...
    priority.checkpoint()                    # between steps: wait while pages run
    pool.map(priority.carried(fn), items)    # the job's worker threads wait the same way
    with priority.holding():                 # a lock a page may wait for is held: never wait
        ...

The budget bounds how long pages can hold a job back, so a job always ends; one thread of a
job waits at a time, so the job's overlapping waits are charged once. Inside `holding()` no
thread of the job waits (one already waiting stops within `SLICE`): a page blocked on that
lock would otherwise wait for the job that waits for the page. A thread outside a job (a page, a test, the CLI) never
waits. This module knows nothing of Streamlit; with no gate installed nothing waits.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

_clock = time.monotonic
_here = threading.local()            # .budget: the _Budget of the job this thread works for
_gate: Callable[[float], bool] | None = None   # waits while a page runs, at most the seconds given
SLICE = 0.1          # seconds of one wait at the gate


class _Budget:
    """What one job may still wait in all, shared by its threads, and its held locks. One
    thread of a job at a time waits at the gate (`turn`): the others queue behind it, find
    the gate open when their turn comes, so overlapping waits are charged once."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds
        self.held = 0
        self.ended = False    # the job is over: a function it carried waits no more
        self.lock = threading.Lock()
        self.turn = threading.Lock()


def install(gate: Callable[[float], bool] | None) -> None:
    """The UI's gate: `gate(seconds)` returns True once no page run is in progress, False
    after `seconds` of waiting for one. None: nothing waits."""
    global _gate
    _gate = gate


@contextlib.contextmanager
def background(budget: float) -> Iterator[None]:
    """Run the body as a background job that waits for pages at most `budget` seconds."""
    prev = getattr(_here, "budget", None)
    _here.budget = mine = _Budget(budget)
    try:
        yield
    finally:
        mine.ended = True
        _here.budget = prev


def carried(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn` for another thread, run as part of the calling thread's job (if any)."""
    budget = getattr(_here, "budget", None)
    if budget is None:
        return fn

    def run(*args, **kwargs):
        prev = getattr(_here, "budget", None)
        _here.budget = budget
        try:
            return fn(*args, **kwargs)
        finally:
            _here.budget = prev

    return run


@contextlib.contextmanager
def holding() -> Iterator[None]:
    """Inside: this job holds a lock a page may wait for, so none of its threads waits."""
    budget = getattr(_here, "budget", None)
    if budget is None:
        yield
        return
    with budget.lock:
        budget.held += 1
    try:
        yield
    finally:
        with budget.lock:
            budget.held -= 1


def checkpoint() -> float:
    """In a background job, wait while a page run is in progress (within the job's budget);
    elsewhere return at once. Returns the seconds waited."""
    budget = getattr(_here, "budget", None)
    gate = _gate
    if budget is None or gate is None:
        return 0.0
    if budget.held:
        return 0.0
    t0 = _clock()
    with budget.turn:
        # in slices: a lock taken meanwhile by another thread of the job (`holding`) ends the wait
        while not (budget.held or budget.ended) and budget.left > 0:
            t1, ask = _clock(), min(SLICE, budget.left)
            opened = gate(ask)
            with budget.lock:   # closed: the whole slice is spent, whatever the clock's grain
                budget.left -= _clock() - t1 if opened else max(_clock() - t1, ask)
            if opened:
                break
    return _clock() - t0


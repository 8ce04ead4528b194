"""Once per server process: the imports every page needs, then a cheap garbage collector.

Measured in the server (sample logs): Streamlit runs a full `gc.collect()` after every script
run (`runner.postScriptGC`); with scipy, plotly, pandas, SQLAlchemy and Polars loaded that is
about 170k objects and 0.17-0.2 s of every page switch, held under the GIL while the answer
waits to be sent, and up to 0.6 s on a first visit. The objects are almost all modules'
functions, classes and tables, alive until the process ends. So, after the first run has
drawn its page: a background thread imports what the other pages draw with (pandas and
pyarrow for tables, plotly for charts, every page's own modules), collects once and
`gc.freeze()`s what is alive: later collections only look at objects made after that, and
still free them. No run goes on while the thread imports (`running()`), so no page imports a
module while the thread does (concurrent first imports raced: PERF_NOTES.md).

The background jobs (the alert evaluation in ui.data, the prefetch in ui.prefetch) start
their work with `settled()`: after the first page is drawn and the warm-up is done, and once
no page run is in progress or queued behind the warm-up (the page opened next). So the
first run imports only what the Overview draws with (the evaluation's scipy, SQLAlchemy and
argon2 were 1.5-2 s of the app's first open), the jobs never import beside the warm-up or a
page (their function-level imports are in BACKGROUND, imported here first), and their CPU
does not compete with the first page's run, nor the next one's, for the interpreter lock
and the cores.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import gc
import importlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from monitoring import priority

from .shutdown import exiting

PAGES = Path(__file__).resolve().parent.parent / "pages"
# Imported by Streamlit itself on a page's first table or chart, not by our modules.
DRAWING = ("pandas", "pyarrow", "plotly.graph_objects", "plotly.io", "streamlit.elements.arrow",
           "streamlit.elements.plotly_chart")
# What the background jobs import inside their functions (alerts.engine, reports.summary).
BACKGROUND = ("monitoring.alerts", "monitoring.alerts.quality_rules", "monitoring.quality",
              "monitoring.quality.ground_truth", "monitoring.quality.marks", "monitoring.quality.summary",
              "monitoring.drift",
              "monitoring.compare.report", "monitoring.reports.summary", "monitoring.labelling.db",
              "monitoring.labelling.results", "monitoring.database", "ui.drift", "ui.prefetch")
# A background job asked for before any page has been drawn (no app.py run in this process,
# e.g. a test calling ui.data directly) waits this long for the warm-up to start, then runs.
START_WAIT = 30.0
# A background job, once the warm-up is done, lets the page runs in progress or waiting for it
# go first (the page a reader opened right after the first) for at most this long.
PAGE_WAIT = 10.0
# Once started, the alert evaluation waits before each query and simulation while a page runs
# (`pages_first`, monitoring.priority): at most this long in all, so it always ends.
JOB_WAIT = 30.0

_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()
_started = threading.Event()
# Script runs and the warm-up's imports never overlap. Streamlit can start a page's run in a
# new script thread while the previous run is still finishing (a click during the app's first
# run): that run had already passed its check, and the warm-up, started by the older run's
# end, imported beside it ("cannot import name ... from partially initialized module").
# So: a run counts itself in (`running`) and waits while the warm-up is due or going; the
# warm-up waits for the runs already in to finish, then new runs wait for it.
_gate = threading.Condition()
_active = 0
_queued = 0      # runs waiting in `running` for the warm-up to end
_due = False     # start() has been called and the imports are not finished
_here = threading.local()   # .runs: how many `running()` this thread is inside
_log = logging.getLogger(__name__)


def page_modules(pages: Path = PAGES) -> list[str]:
    """The modules the page scripts import (`import x` / `from x import y`), in file order."""
    return list(_page_modules(pages))


@functools.cache   # parsed once per process (ui.serve before the server listens, or the warm-up)
def _page_modules(pages: Path) -> tuple[str, ...]:
    out: list[str] = []
    for path in sorted(pages.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                # `from ui import data`: ui.data is a module; `from monitoring.fmt import md` is not
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                names = []
            out += [n for n in names if n not in out]
    return tuple(out)


def _warm(modules: tuple[str, ...]) -> None:
    global _due
    try:
        with _gate:   # in slices: told to stand down (ui.shutdown), it stops waiting for the runs
            while not _gate.wait_for(lambda: _active == 0, 0.1) and not exiting():
                pass
        import_all(modules, "warm-up", stop=exiting)   # the process ending: nothing left to warm
        if exiting():
            return
        gc.collect()
        gc.freeze()
    finally:
        with _gate:
            _due = False
            _gate.notify_all()
        _done.set()


def import_all(names: Iterable[str], what: str, stop: Callable[[], bool] = lambda: False) -> list[str]:
    """Import each of `names`; returns those imported. A name that is not a module (`from
    monitoring.fmt import md` gives monitoring.fmt.md) is skipped; one that fails to import is
    warned of (its page says what is wrong in its own run) and skipped. Stops when `stop()`."""
    done = []
    for name in names:
        if stop():
            break
        try:
            importlib.import_module(name)
            done.append(name)
        except ModuleNotFoundError as exc:
            parent = sys.modules.get(name.rpartition(".")[0])
            if exc.name == name or (parent is not None and not hasattr(parent, "__path__")):
                continue   # no such module: a name defined in a module
            _log.warning("%s: %s not imported: %s", what, name, exc)
        except Exception as exc:
            _log.warning("%s: %s not imported: %s", what, name, exc)
    return done


def start(modules: tuple[str, ...] | None = None) -> None:
    """Start the warm-up once per process (after the first run has drawn its page)."""
    global _thread, _due
    with _lock:
        if _thread is not None:
            return
        with _gate:
            _due = True
        _thread = threading.Thread(target=_warm_all, args=(modules,), name="modelwatch-warm", daemon=True)
        _thread.start()
        _started.set()


def _warm_all(modules: tuple[str, ...] | None) -> None:
    # The page scripts are parsed here, not in the first run (they are 13 files).
    try:
        wanted = modules if modules is not None else (*DRAWING, *page_modules(), *BACKGROUND)
    except Exception as exc:   # an unreadable page script says so in its own run
        _log.warning("warm-up: page scripts not read: %s", exc)
        wanted = (*DRAWING, *BACKGROUND)
    _warm(tuple(m for m in wanted if m not in sys.modules))


@contextlib.contextmanager
def running(timeout: float = 120.0) -> Iterator[None]:
    """Around a script run (app.py): waits while the warm-up is due or importing, and keeps
    it from starting its imports until the run is over."""
    global _active, _queued
    with _gate:
        _queued += 1
        try:
            _gate.wait_for(lambda: not _due, timeout)
        finally:
            _queued -= 1
        _active += 1
    _here.runs = getattr(_here, "runs", 0) + 1
    try:
        yield
    finally:
        _here.runs -= 1
        with _gate:
            _active -= 1
            _gate.notify_all()


@contextlib.contextmanager
def waiting() -> Iterator[None]:
    """Inside a run that blocks on a background job (which may wait for the warm-up): the run
    imports nothing meanwhile, so it does not hold the warm-up back; counted in again after."""
    global _active
    if not getattr(_here, "runs", 0):   # a background thread, or no run at all: nothing to do
        yield
        return
    with _gate:
        _active -= 1
        _gate.notify_all()
    try:
        yield
    finally:
        with _gate:
            _gate.wait_for(lambda: not _due, 120.0)
            _active += 1


def settled(timeout: float = 120.0) -> bool:
    """For background jobs: wait until a first page has been drawn and the warm-up is done
    (at most START_WAIT for it to start, when no page run starts it), then until no page run
    is in progress or waiting for the warm-up (at most PAGE_WAIT: the job's CPU does not slow
    the page opened right after the first); True when the warm-up is done."""
    if not _wait(_started, START_WAIT) or not _wait(_done, timeout):
        return False
    pages_first(PAGE_WAIT)   # a run blocked on this job counts itself out (`waiting`), so this ends
    return True


def pages_first(timeout: float) -> bool:
    """True once no page run is in progress or waiting for the warm-up; False after `timeout`
    seconds (or at exit) with one still going. The gate of `monitoring.priority`, which the
    alert evaluation passes before each of its queries and simulations (a run blocked on it
    counts itself out: `waiting`)."""
    deadline = time.monotonic() + timeout
    with _gate:
        while not _gate.wait_for(lambda: _active == 0 and _queued == 0, min(0.1, max(0.0, deadline - time.monotonic()))):
            if exiting() or time.monotonic() >= deadline:
                return False
    return True


priority.install(pages_first)


def _wait(event: threading.Event, timeout: float) -> bool:
    # In slices, so a job told to stand down (ui.shutdown) stops waiting at once.
    deadline = time.monotonic() + timeout
    while not event.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
        if exiting() or time.monotonic() >= deadline:
            return event.is_set()
    return True

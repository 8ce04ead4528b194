"""Background jobs let the pages go first (monitoring/priority.py, ui.warm.pages_first).

Orderings are checked with events and joins, not with timings: a job's query has not run
while the gate is closed, and runs once it opens.
"""

from __future__ import annotations

import threading

import duckdb
import pytest

from monitoring import priority
from monitoring.logs import sql


class Gate:
    """A gate that records each call's seconds and threads, and stays closed until `open()`."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.threads: set[str] = set()
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, seconds: float) -> bool:
        self.calls.append(seconds)
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        return self.opened.wait(seconds)

    def open(self) -> None:
        self.opened.set()


@pytest.fixture
def gate(monkeypatch):
    g = Gate()
    monkeypatch.setattr(priority, "_gate", g)
    yield g
    g.open()


def _in_thread(fn) -> tuple[threading.Thread, list]:
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    return t, out


def test_outside_a_job_nothing_waits(gate):
    assert priority.checkpoint() == 0.0
    con = duckdb.connect()
    assert sql.run(con, "SELECT 42 AS x")["x"].to_list() == [42]     # a page's query: no gate
    assert gate.calls == []


def test_a_jobs_query_waits_at_the_gate_until_the_pages_are_done(gate):
    con = duckdb.connect()

    def job():
        with priority.background(30.0):
            return sql.run(con, "SELECT 7 AS x")["x"].to_list()

    t, out = _in_thread(job)
    assert gate.entered.wait(60)
    t.join(0.3)
    assert t.is_alive() and out == []          # held at the gate before its query
    gate.open()
    t.join(60)
    assert out == [[7]]
    assert gate.calls and all(0 < c <= priority.SLICE for c in gate.calls)   # in slices


class FakeGate:
    """On a fake clock: each call lasts its seconds; pages end after `closed_for` seconds."""

    def __init__(self, monkeypatch, closed_for: float) -> None:
        self.now, self.closed_for, self.calls = 0.0, closed_for, 0
        monkeypatch.setattr(priority, "_clock", lambda: self.now)
        monkeypatch.setattr(priority, "_gate", self)

    def __call__(self, seconds: float) -> bool:
        self.calls += 1
        step = min(seconds, max(self.closed_for - self.now, 0.0))
        self.now += step
        return step < seconds


def test_the_budget_bounds_the_waits_of_a_job(monkeypatch):
    """A job waits while the pages run, at most its budget in all; then never again."""
    g = FakeGate(monkeypatch, closed_for=3.0)
    with priority.background(10.0):
        first = priority.checkpoint()          # pages run for 3 s: waited 3 s, then on
        g.closed_for = 1e9                     # pages that never end
        rest = [priority.checkpoint() for _ in range(3)]
    assert first == pytest.approx(3.0)
    assert rest == [pytest.approx(7.0), 0.0, 0.0]      # the 7 s left of the budget, then nothing


def test_a_jobs_worker_threads_wait_and_share_its_budget(monkeypatch):
    """A worker's wait is charged to the job: the thread that started it has what is left."""
    g = FakeGate(monkeypatch, closed_for=4.0)
    with priority.background(10.0):
        t = threading.Thread(target=priority.carried(priority.checkpoint))
        t.start()
        t.join(60)
        assert g.now == pytest.approx(4.0)
        g.closed_for = 1e9
        assert priority.checkpoint() == pytest.approx(6.0)
        late = priority.carried(priority.checkpoint)
    # carried after the job ended: waits no more; carried outside a job: the function itself
    assert late() == 0.0
    assert priority.carried(priority.checkpoint) is priority.checkpoint


def test_the_drift_engines_worker_threads_carry_the_job(gate):
    """drift.sql._parallel's threads (the per-column queries) wait as the job does."""
    from monitoring.drift.sql import _parallel

    gate.open()
    with priority.background(30.0):
        _parallel(lambda _: priority.checkpoint(), [1, 2, 3])
    assert gate.threads and all(n.startswith("ThreadPoolExecutor") for n in gate.threads)


def test_a_job_holding_a_lock_pages_wait_for_never_waits(gate):
    """While a job holds what a page may wait for (a shared Bands' calibration), none of its
    threads waits at the gate: the page would wait for the job that waits for the page."""
    from monitoring.drift.bands import Bands

    bands = Bands(models={})
    done = []
    with priority.background(30.0):
        worker = priority.carried(lambda: done.append(priority.checkpoint()))
        with bands.calibration():
            assert priority.checkpoint() == 0.0
            t = threading.Thread(target=worker)
            t.start()
            t.join(60)
        assert done == [0.0] and gate.calls == []
        t, out = _in_thread(priority.carried(priority.checkpoint))   # released: waits again
        assert gate.entered.wait(60)
        gate.open()
        t.join(60)
    assert gate.calls


def test_a_lock_taken_while_a_worker_waits_ends_its_wait(gate):
    """One thread of the job at the gate, another takes the calibration lock: the first
    stops waiting (within a slice) instead of holding the job back."""
    from monitoring.drift.bands import Bands

    with priority.background(30.0):
        t, out = _in_thread(priority.carried(priority.checkpoint))
        assert gate.entered.wait(60)
        with Bands(models={}).calibration():
            t.join(60)
            assert not t.is_alive() and out and out[0] < 30.0


def test_the_app_gate_opens_when_no_page_run_is_in_progress(fresh_warm):
    """ui.warm.pages_first returns at once with no run, waits while one is in progress, and
    returns when it ends (or when a run blocked on the job counts itself out)."""
    warm = fresh_warm
    warm.pages_first(60)                       # no run: returns
    order = []
    with warm.running():
        t = threading.Thread(target=lambda: (warm.pages_first(60), order.append("job")))
        t.start()
        t.join(0.3)
        assert order == []                     # held while the run is in progress
        with warm.waiting():                   # the run blocks on the job: it goes on
            t.join(60)
        assert order == ["job"]
    with warm.running():
        t = threading.Thread(target=lambda: (warm.pages_first(60), order.append("job 2")))
        t.start()
        t.join(0.3)
        order.append("run ended")
    t.join(60)
    assert order == ["job", "run ended", "job 2"]


def test_the_app_gate_is_installed():
    from ui import warm

    assert priority._gate is warm.pages_first

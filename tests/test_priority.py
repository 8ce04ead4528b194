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
    """A gate that records each call's budget and stays closed until `open()`."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.entered.set()
        self.opened.wait(60)

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
    assert gate.calls == [30.0]


def test_the_budget_bounds_the_waits_of_a_job(monkeypatch):
    """The gate is given what is left of the budget; once spent, the job waits no more."""
    calls = []
    clock = [0.0]
    monkeypatch.setattr(priority.time, "monotonic", lambda: clock[0])

    def gate(seconds):
        calls.append(seconds)
        clock[0] += min(seconds, 4.0)          # each wait lasts 4 s of the fake clock

    monkeypatch.setattr(priority, "_gate", gate)
    with priority.background(10.0):
        waited = [priority.checkpoint() for _ in range(5)]
    assert calls == [10.0, 6.0, 2.0]
    assert waited == [4.0, 4.0, 2.0, 0.0, 0.0]


def test_a_jobs_worker_threads_wait_and_share_its_budget(gate):
    seen = []

    def work():
        seen.append(priority.checkpoint())

    with priority.background(12.0):
        fn = priority.carried(work)
    t = threading.Thread(target=fn)
    t.start()
    assert gate.entered.wait(60)
    gate.open()
    t.join(60)
    assert gate.calls == [12.0] and len(seen) == 1
    # carried outside a job is the function itself
    assert priority.carried(work) is work


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
    assert len(gate.calls) == 1


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

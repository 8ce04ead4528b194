"""Background jobs stand down at interpreter exit (ui/shutdown.py): a prefetch, an alert
evaluation or a warm-up still queued when the process ends is not run (Python joins the
pools' workers at exit and would run them, logging to closed streams), and nothing is said
on stderr. The same jobs waited for before the exit do run: the check tells the two apart."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

MARK = "-- imported --"
SCRIPT = f"MARK = {MARK!r}\n" + textwrap.dedent("""
    import json, logging, sys, threading, time
    from pathlib import Path
    import monitoring.alerts
    from ui import data, prefetch, shutdown, warm
    warm.START_WAIT = 0.5                        # no page runs here: the jobs need not wait 30 s for one
    print(MARK, file=sys.stderr, flush=True)     # Streamlit's import-time notices come before it

    out, wait_first = Path(sys.argv[1]), sys.argv[2] == "wait"
    ran = {"main_exiting": shutdown.exiting()}
    def note(key, value=True):
        ran[key] = value
        out.write_text(json.dumps(ran))
    note("main_exiting", shutdown.exiting())

    class Ws:                                    # what the jobs ask of a workspace
        fingerprint = "fp"
        def wait(self):
            note("prefetch_waited")              # the prefetch's first step on the logs
            return False

    import monitoring.quality.marks
    monitoring.alerts.evaluate_kept = lambda ws, mark=None: note("evaluated") or []
    monitoring.quality.marks.labels_mark = lambda config: "mark"   # no database here
    cached_log = logging.getLogger("streamlit.runtime.caching.cache_data_api")
    gate = threading.Event()                     # holds both workers until the main thread ends
    for pool in (prefetch._WORKER, data._EVALUATOR):
        pool.submit(gate.wait)
    jobs = [prefetch._WORKER.submit(prefetch._run, Ws(), "fp", None, None, prefetch._latest[0]),
            data._EVALUATOR.submit(data._evaluate, type("W", (), {"wait": lambda self: True,
                                                                   "config": None})()),
            prefetch._WORKER.submit(lambda: note("pool_job_exiting", shutdown.exiting())),
            prefetch._WORKER.submit(cached_log.warning, "No runtime found")]   # a cached call running
    threading.Thread(target=lambda: (time.sleep(0.5), gate.set())).start()
    if wait_first:
        for j in jobs:
            try:
                j.result(timeout=60)
            except RuntimeError:
                pass
        warm._warm(("json",))
        note("warmed", warm._done.is_set())
""")


@pytest.mark.parametrize("mode, want, said", [
    # queued, still waiting when the main thread ends: none runs, each sees the exit, no word
    ("exit", {"main_exiting": False, "pool_job_exiting": True}, 0),
    # the same jobs waited for by the main thread: all run, none sees an exit, the log line shows
    ("wait", {"main_exiting": False, "prefetch_waited": True, "evaluated": True,
              "pool_job_exiting": False, "warmed": True}, 1),
])
def test_queued_background_jobs_stand_down_at_exit(tmp_path, mode, want, said):
    out = tmp_path / "ran.json"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out), mode], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text()) == want
    assert MARK in proc.stderr, proc.stderr
    after = proc.stderr.split(MARK, 1)[1].strip().splitlines()
    assert len(after) == said and all("No runtime found" in line for line in after), proc.stderr


# -- stand_down: the same, on request, for a process that goes on (tests/conftest.py) -----------

def test_a_page_run_leaves_no_background_work_after_stand_down(app_env, sample_logs):
    from ui import data, shutdown

    at = app_env(logs=sample_logs)
    at.run()
    assert not at.exception
    assert shutdown.stand_down(timeout=300) == []
    assert shutdown.running() == []
    # only the pools' idle workers are left of the app's threads
    assert all(any(p.owns(t) for p in shutdown._pools) for t in threading.enumerate()
               if t.name.startswith(shutdown.PREFIX))
    assert not shutdown.exiting()
    assert data._EVALUATOR.submit(shutdown.exiting).result(timeout=30) is False   # new jobs run as before


def test_jobs_queued_when_told_to_stand_down_see_it_and_are_waited_for():
    from ui import data, prefetch, shutdown

    gate, ended = threading.Event(), threading.Event()
    for pool in (data._EVALUATOR, prefetch._WORKER):    # both busy until the stand-down has begun
        pool.submit(gate.wait, 30)
    queued = [data._EVALUATOR.submit(shutdown.exiting), prefetch._WORKER.submit(shutdown.exiting)]
    thread = threading.Thread(target=lambda: (gate.wait(30), time.sleep(0.2), ended.set()), name="modelwatch-test")
    thread.start()
    assert {"modelwatch-alerts", "modelwatch-prefetch", "modelwatch-test"} <= set(shutdown.running())
    threading.Timer(0.3, gate.set).start()
    assert shutdown.stand_down(timeout=60) == []
    assert [f.result(timeout=0) for f in queued] == [True, True]    # each saw the stand-down
    assert ended.is_set() and not thread.is_alive()                 # the thread was joined
    assert not shutdown.exiting()


def test_stand_down_says_what_still_runs_at_its_deadline():
    from ui import shutdown

    release = threading.Event()
    thread = threading.Thread(target=release.wait, args=(30,), name="modelwatch-stuck")
    thread.start()
    try:
        assert shutdown.stand_down(timeout=0.2) == ["modelwatch-stuck"]
        assert not shutdown.exiting()
    finally:
        release.set()
        thread.join()
    assert shutdown.running() == []


def test_drop_queued_cancels_what_has_not_started_and_leaves_the_running_job():
    from ui import data, shutdown

    gate, started = threading.Event(), threading.Event()
    running = data._EVALUATOR.submit(lambda: (started.set(), gate.wait(30))[1])
    assert started.wait(30)                                      # the worker has begun it
    queued = [data._EVALUATOR.submit(lambda i=i: i) for i in range(3)]
    try:
        assert shutdown.drop_queued() == 3
        assert all(f.cancelled() for f in queued) and not running.cancelled()
        assert shutdown.drop_queued() == 0                       # nothing left to drop
    finally:
        gate.set()
    assert running.result(timeout=30) is True                   # the running job ended as it would
    assert data._EVALUATOR.submit(lambda: 7).result(timeout=30) == 7   # the pool takes work again
    assert not data._EVALUATOR.busy()

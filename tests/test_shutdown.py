"""Background jobs stand down at interpreter exit (ui/shutdown.py): a prefetch, an alert
evaluation or a warm-up still queued when the process ends is not run (Python joins the
pools' workers at exit and would run them, logging to closed streams), and nothing is said
on stderr. The same jobs waited for before the exit do run: the check tells the two apart."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

MARK = "-- imported --"
SCRIPT = f"MARK = {MARK!r}\n" + textwrap.dedent("""
    import json, logging, sys, threading, time
    from pathlib import Path
    import monitoring.alerts
    from ui import data, prefetch, shutdown, warm
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

    monitoring.alerts.evaluate = lambda ws: note("evaluated") or []
    cached_log = logging.getLogger("streamlit.runtime.caching.cache_data_api")
    gate = threading.Event()                     # holds both workers until the main thread ends
    for pool in (prefetch._WORKER, data._EVALUATOR):
        pool.submit(gate.wait)
    jobs = [prefetch._WORKER.submit(prefetch._run, Ws(), "fp", None, None, prefetch._latest[0]),
            data._EVALUATOR.submit(data._evaluate, type("W", (), {"wait": lambda self: True})()),
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

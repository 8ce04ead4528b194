"""Background threads inside DuckDB do not abort the process at exit (monitoring/exits.py).

Before: a script (or a server) that ended while a rollup build or a duplicate check ran died
with "FATAL: exception not rethrown" (exit status 134) half the time, the bench's AppTest
page switch among them. Each case runs in its own interpreter and exits while the query runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from monitoring import exits

ROOT = Path(__file__).resolve().parent.parent

LONG_QUERY = textwrap.dedent("""
    import json, sys, threading, time
    from pathlib import Path
    from monitoring import exits
    from monitoring.logs.sql import connect, cursor

    out = Path(sys.argv[1])
    started = threading.Event()
    def work():
        cur = cursor(connect())
        started.set()
        try:
            cur.execute("select sum(a.range * b.range) from range(100000) a, range(1000000) b").fetchall()
            out.write_text(json.dumps({"ended": "finished"}))
        except Exception as exc:
            out.write_text(json.dumps({"ended": type(exc).__name__, "exiting": not threading.main_thread().is_alive()}))
    exits.thread(work, name="modelwatch-test")
    started.wait(30)
    time.sleep(0.3)   # inside the query when the main thread ends
""")

BUILD = textwrap.dedent("""
    import sys, time
    from monitoring.config import load_config
    from monitoring.rollup import background
    cfg = load_config(overrides={"logs": sys.argv[1], "data_dir": sys.argv[2]})
    job = background.start(cfg)
    while job.progress().rows_total == 0 and job.running():   # the files are listed: rolling starts
        time.sleep(0.01)
    print("running" if job.running() else job.progress().state, flush=True)
""")


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_a_query_running_in_a_background_thread_is_interrupted_at_exit(tmp_path):
    out = tmp_path / "ended.json"
    proc = _run(LONG_QUERY, str(out))
    assert proc.returncode == 0, proc.stderr
    assert "FATAL" not in proc.stderr
    # 10^11 products would take minutes: it ended because the exit interrupted it
    assert json.loads(out.read_text()) == {"ended": "InterruptException", "exiting": True}


def test_a_rollup_build_running_at_exit_ends_cleanly_and_leaves_a_readable_store(generated_logs, tmp_path):
    from monitoring.config import load_config
    from monitoring.rollup import store as st

    data = tmp_path / "data"
    proc = _run(BUILD, str(generated_logs), str(data))
    assert proc.returncode == 0, proc.stderr
    assert "FATAL" not in proc.stderr and proc.stdout.strip() in ("running", "done")
    cfg = load_config(overrides={"logs": str(generated_logs), "data_dir": str(data)})
    root = st.store_root(cfg, str(generated_logs))
    if (root / "manifest.json").exists():   # a step landed before the exit: it reads whole
        manifest = st.read_manifest(root)
        assert manifest is not None
        for seg in manifest.segments:   # every segment it names is in place
            assert (root / seg.name).is_dir()
    # nothing half-written left in place: no manifest or segment under a temporary name
    assert not list(data.rglob("*.tmp")) and not list(data.rglob(".compact-*"))


def test_uses_off_a_background_thread_notes_nothing_and_stop_has_nothing_to_wait_for():
    class Con:
        def interrupt(self):
            raise AssertionError("not ours: never interrupted")

    con = Con()
    assert exits.uses(con) is con
    assert exits.stop(timeout=1) == [] and exits.alive() == []


def test_a_thread_started_here_is_known_until_it_ends():
    gate = threading.Event()
    t = exits.thread(gate.wait, name="modelwatch-test-gate")
    assert "modelwatch-test-gate" in exits.alive()
    gate.set()
    t.join(10)
    assert "modelwatch-test-gate" not in exits.alive()

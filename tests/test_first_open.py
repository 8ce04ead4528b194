"""The app's first open imports only what the first page draws with (ui/warm.py, ui/auth.py):
in a fresh interpreter, app.py's first run on the sample logs has drawn the Overview without
importing scipy.stats (the alert evaluation's), argon2 (password sign-in's) or the alert rules;
the background evaluation starts only once the warm-up is done, and imports them there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Runs app.py once in AppTest with the warm-up replaced by a recorder of what is imported when
# app.py starts it (the page drawn; the evaluation, queued by the Overview, waits for it),
# then waits for the evaluation.
PROBE = textwrap.dedent("""
    import json, sys, time
    from streamlit.testing.v1 import AppTest
    from ui import data, warm
    seen = {}
    def start(modules=None):   # once per process, like the real one
        if "modules" not in seen:
            seen["modules"] = sorted(sys.modules)
        warm._started.set(); warm._done.set()
    warm.start = start
    at = AppTest.from_file("app.py", default_timeout=120)
    at.run()
    seen["title"] = at.title[0].value if at.title else None
    seen["exceptions"] = [e.value for e in at.exception]
    episodes = data._evaluation(data.workspace(), data.workspace().fingerprint)[1].future.result(timeout=300)
    seen["episodes"] = isinstance(episodes, list)
    seen["scipy_after_evaluation"] = "scipy.stats" in sys.modules
    print("PROBE" + json.dumps(seen))
""")


def _run_probe(script: str, logs: Path, tmp: Path) -> dict:
    """Run `script` in a fresh interpreter on `logs` (its own data folder and database under
    `tmp`); returns what it printed after PROBE."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITORING_")}
    env |= {"MONITORING_LOGS": str(logs), "MONITORING_DATA_DIR": str(tmp / "data"),
            "MONITORING_DB_URL": f"sqlite:///{tmp / 'app.sqlite'}"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    line = next((x for x in out.stdout.splitlines() if x.startswith("PROBE")), None)
    assert line, out.stderr[-3000:]
    return json.loads(line.removeprefix("PROBE"))


@pytest.fixture(scope="module")
def probe(sample_logs, tmp_path_factory) -> dict:
    return _run_probe(PROBE, sample_logs, tmp_path_factory.mktemp("first-open"))


def test_the_first_page_is_drawn(probe):
    assert probe["title"] == "Overview" and probe["exceptions"] == []


@pytest.mark.parametrize("module, imported", [
    ("scipy.stats", False),         # the quality and comparison statistics the alert rules use
    ("scipy.optimize", False),
    ("argon2", False),              # password hashing: only the modes that sign people in
    ("monitoring.alerts", False),   # the rules themselves
    ("monitoring.auth.sessions", False),
    ("polars", True),               # what the Overview does draw with
    ("duckdb", True),
])
def test_what_the_first_run_imports(probe, module, imported):
    assert (module in probe["modules"]) is imported


def test_the_evaluation_runs_once_the_warm_up_is_done(probe):
    assert probe["episodes"] is True and probe["scipy_after_evaluation"] is True


# A first run that waits for the evaluation (a link straight to Alerts or Weekly health): the
# warm-up has not been started by app.py yet, and the evaluation waits for it; the waiting
# call starts it. With START_WAIT made endless, the call returns only if it did.
BLOCKED = textwrap.dedent("""
    import json
    from ui import data, warm
    warm.START_WAIT = 10 ** 9
    ws = data.workspace()
    started_before = warm._started.is_set()
    episodes = data.alert_episodes(ws, ws.fingerprint)
    print("PROBE" + json.dumps({"started_before": started_before, "started_after": warm._started.is_set(),
                                "done": warm._done.is_set(), "episodes": isinstance(episodes, list)}))
""")


def test_a_first_run_waiting_for_the_evaluation_starts_the_warm_up(sample_logs, tmp_path):
    assert _run_probe(BLOCKED, sample_logs, tmp_path) == {"started_before": False, "started_after": True,
                                                      "done": True, "episodes": True}


@pytest.mark.parametrize("blocked_run", [False, True])
def test_the_warm_up_never_imports_beside_a_run(fresh_warm, blocked_run):
    """A run in progress when the warm-up starts (Streamlit's next run can begin before the
    previous one has ended) holds its imports back until the run is over; a run that blocks on
    a background job (warm.waiting) lets them go meanwhile."""
    warm = fresh_warm
    with warm.running():
        warm.start(("colorsys",))
        if blocked_run:
            with warm.waiting():
                assert warm._done.wait(60)      # the imports went ahead while the run waited
            assert "colorsys" in sys.modules
        else:
            assert not warm._done.wait(0.5)     # still held back by this run
            assert "colorsys" not in sys.modules
    assert warm._done.wait(60) and "colorsys" in sys.modules


def _run_after_warm_up(warm, order: list, what) -> threading.Thread:
    """Inside a run, start the warm-up, then a second run (a thread) that appends what() to
    `order`: it waits in `warm.running` while the warm-up is due."""
    warm.start(("colorsys",))

    def run() -> None:
        with warm.running():
            order.append(what())

    later = threading.Thread(target=run)
    later.start()
    return later


def test_a_run_starting_while_the_warm_up_is_due_waits_for_it(fresh_warm):
    warm = fresh_warm
    order = []
    with warm.running():
        later = _run_after_warm_up(warm, order, lambda: "colorsys" in sys.modules)
        later.join(0.5)
        assert order == []                      # waits: the warm-up is due
    later.join(60)
    assert order == [True]                      # ran after the imports


@pytest.mark.parametrize("blocked_run", [False, True])
def test_a_background_job_lets_the_page_opened_after_the_first_go_first(fresh_warm, blocked_run):
    """Once the warm-up is done, a job (the alert evaluation, the prefetch) starts only when
    no page run is in progress or waiting for the warm-up; a run that blocks on the job
    (warm.waiting) lets it start."""
    import threading

    warm = fresh_warm
    order = []
    warm.start(("colorsys",))
    assert warm._done.wait(60)
    job = threading.Thread(target=lambda: order.append(("job", warm.settled(60))))
    with warm.running():
        job.start()
        if blocked_run:
            with warm.waiting():
                job.join(60)
                order.append("run waited")
        else:
            for _ in range(20):                 # 1 s: the job never starts beside this run
                job.join(0.05)
                assert order == []
            order.append("run ended")
    job.join(60)
    assert order == ([("job", True), "run waited"] if blocked_run else ["run ended", ("job", True)])


def test_a_job_waits_for_a_run_queued_behind_the_warm_up(fresh_warm):
    warm = fresh_warm
    order = []
    with warm.running():
        queued = _run_after_warm_up(warm, order, lambda: "run")

        def job() -> None:
            warm.settled(60)
            order.append("job")
        while not warm._queued:                 # the second run is waiting for the warm-up
            queued.join(0.01)
        later = threading.Thread(target=job)
        later.start()
    queued.join(60)
    later.join(60)
    assert order == ["run", "job"]

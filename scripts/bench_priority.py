"""A page computed while the alert evaluation runs: alone, beside it, and beside it with the
pages going first (monitoring/priority.py).

    python scripts/bench_priority.py [--rounds 2] [--out docs/benchmarks.md]

The app starts the alert evaluation in the background once the first page is drawn; a page
opened meanwhile used to share the two cores with it. Each figure is one fresh process on a
fresh data folder (the bench's 100M rollup store and workspace facts linked in when it is
built, as in bench_browser.py; chance bands and kept evaluations not): the evaluation is
started (`ui.data._evaluate`), HEAD seconds later the Drift page's computation runs inside a
page run (`ui.warm.running`, as app.py runs a page) and is timed, then the evaluation is
waited for. Modes: `alone` (no evaluation), `beside` (the gate removed:
`priority.install(None)`, as before), `first` (the app as it is). Server-side time only: the
browser's rendering is in bench_browser.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(os.environ.get("MODELWATCH_BENCH_DIR", Path.home() / ".cache" / "modelwatch" / "bench"))
SECTION = "## The pages go first (scripts/bench_priority.py)"
MODES = ("alone", "beside", "first")
HEAD_S = 1.0      # the evaluation's head start before the page

CHILD = r"""
import json, os, sys, threading, time
from datetime import timedelta
mode = sys.argv[1]
import logging; logging.disable(logging.WARNING)
from monitoring import priority
from monitoring.query.filters import Filters, whole_range
from ui import data, warm
import ui.drift as ud
warm._started.set(); warm._done.set()     # as after the first page and the warm-up
if mode == "beside":
    priority.install(None)
ws = data.workspace(); ws.wait()
first, last = whole_range(ws.extent)
f = Filters(start=max(first, last - timedelta(days=7)), end=last)   # the sidebar's default window
class View: pass
view = View(); view.extent = ws.extent; view.filters = f
ev = None
if mode != "alone":
    ev = threading.Thread(target=lambda: data._evaluate(ws)); ev.start()
    time.sleep(float(sys.argv[2]))
t0 = time.perf_counter()
with warm.running():
    s = ud.settings()
    ud.over_time(ws, ud.default_reference(view, s), f, s, ud.default_chunk(s))   # the Drift page
page = time.perf_counter() - t0
if ev is not None:
    ev.join()
print("RESULT" + json.dumps({"page_s": page, "evaluation_done_s": time.perf_counter() - t0}))
os._exit(0)
"""


def _folder(tmp: Path, built: Path | None) -> Path:
    (tmp / "cache").mkdir()
    if built is not None:
        os.symlink(built / "rollups", tmp / "rollups", target_is_directory=True)
        for e in (built / "cache").iterdir():
            if e.name not in ("bands", "alerts"):     # what a server keeps of its own results
                os.symlink(e, tmp / "cache" / e.name)
    return tmp


def one(logs: Path, built: Path | None, mode: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-priority-") as t:
        tmp = _folder(Path(t), built)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITORING_")}
        env |= {"MONITORING_LOGS": str(logs), "MONITORING_DATA_DIR": str(tmp),
                "MONITORING_DB_URL": f"sqlite:///{tmp}/bench.sqlite", "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", CHILD, mode, str(HEAD_S)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=900)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT")), None)
        if line is None:
            raise SystemExit(f"{mode} on {logs.name} failed:\n{out.stderr[-2000:]}")
        return json.loads(line.removeprefix("RESULT"))


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from benchlib import load_average, machine, replace_section

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args()
    sets = [("sample_logs (90k rows, raw logs)", ROOT / "sample_logs", None)]
    big, built = BENCH / "logs-100M", BENCH / "rollup-data-logs-100M"
    if (built / "rollups").is_dir() and big.is_dir():
        sets.append(("logs-100M (rollups built)", big, built))
    load_before = load_average()
    rows = []
    for label, logs, store in sets:
        got = {m: [one(logs, store, m) for _ in range(args.rounds)] for m in MODES}
        page = {m: statistics.median(r["page_s"] for r in got[m]) for m in MODES}
        done = {m: statistics.median(r["evaluation_done_s"] for r in got[m]) for m in MODES if m != "alone"}
        rows.append(f"| {label} | {page['alone']:.2f} | {page['beside']:.2f} | {page['first']:.2f} | "
                    f"{done['beside']:.2f} | {done['first']:.2f} |")
        print(rows[-1], flush=True)
    text = (f"{SECTION}\n\nMeasured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on: "
            f"{machine('streamlit', 'duckdb', 'polars')}; load average {load_before} before, "
            f"{load_average()} after.\n\n"
            "The Drift page's computation (the default window against the default reference, by the default "
            f"chunks) in a page run, {HEAD_S:.0f} s after the alert evaluation started in the background; "
            f"median of {args.rounds} fresh processes each, chance bands and kept evaluations cold. "
            "*Alone*: no evaluation. *Beside*: the evaluation running, the gate removed (as before "
            "monitoring/priority.py). *Pages first*: the app as it is, the evaluation waiting before each "
            "query and simulation while a page runs. Server-side seconds; what the browser adds is in "
            "bench_browser.py's sections.\n\n"
            "| logs | page alone (s) | page beside the evaluation (s) | page, pages first (s) | "
            "evaluation done, beside (s) | evaluation done, pages first (s) |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: |\n" + "\n".join(rows) + "\n")
    print(text)
    replace_section(Path(args.out), text, SECTION)


if __name__ == "__main__":
    main()

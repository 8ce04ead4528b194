"""What users feel: every page's first visit and a page switch, and a reviewer's key presses,
timed in headless Chromium.

    python scripts/bench_browser.py [--logs sample_logs] [--rounds 2] [--scenario pages|review|all]
    python scripts/bench_browser.py --scenario pages --logs LOGS --data-dir DIR   # big logs, built rollups

Starts the server as `make run` does (`python -m ui.serve`: `streamlit run app.py`, its
imports done before it listens) on 127.0.0.1 with a fresh data folder (cold caches), opens
the app in Debian's Chromium (Playwright, no browser download), and clicks through every
page in the navigation twice: the first round is each page's first visit (its queries run),
the second a page switch (cached). A visit ends when the page's heading shows and the
script run is over (the app root's `data-test-script-state`).
Writes its section of docs/benchmarks.md (machine, date, load average) and prints it.

With `--data-dir DIR` (pages only) the server reads DIR's rollup store and workspace facts
cache, built beforehand (`MONITORING_DATA_DIR=DIR python -m monitoring rollup build --logs
LOGS`): the pages' first visits are timed on logs too big to scan on every visit, with the
server's caches, the database and anything else of the data folder cold. The store must
cover every file as it is now (else the script says so and stops); a missing facts cache is
written first, untimed, as the app's first open would. DIR is linked, never changed, except
for that facts cache. What a server keeps of its own results (chance bands in `cache/bands/`,
alert evaluations in `cache/alerts/`: docs/drift.md, docs/alerts.md) is not linked in: every
run's first visits compute them, as on a folder no server has used. Its own section of docs/benchmarks.md.

The review scenario labels 20 items of a fresh queue by key presses only (Y, a label value's
number, the predicted value's number, U, in turn) and times, in the page itself, each key
press (keydown) to the moment the next item's card is in the document; it prints p50 and max.
tests/test_review_browser.py drives the same session (`review_session`) and checks every
label stored, in order.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))   # benchlib, beside this script
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
# Streamlit marks its root with the script run's state: settled once no run is going on.
SETTLED = ("() => { const a = document.querySelector('[data-testid=stApp]');"
           " const s = a && a.getAttribute('data-test-script-state');"
           " return s && !['running', 'rerunRequested', 'initial'].includes(s); }")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(logs: str, data_dir: str) -> tuple[subprocess.Popen, str]:
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITORING_")}
    env |= {"MONITORING_LOGS": logs, "MONITORING_DATA_DIR": data_dir,
            "MONITORING_DB_URL": f"sqlite:///{data_dir}/bench.sqlite"}
    proc = subprocess.Popen([sys.executable, "-m", "ui.serve",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--server.headless", "true", "--browser.gatherUsageStats", "false",
                             "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("streamlit did not start")


# Every change of the run's state from the click on, recorded by the page itself. A visit is
# over when the page's heading shows and the run is over: when a run was seen starting, as
# soon as it settles; when none was (a short run can start and end within one redraw), once
# the state has stayed settled for QUIET_MS after the heading showed. (A fixed 100 ms pause
# after the click used to stand in for this, and added its own length to every visit.)
WATCH_RUNS = ("() => { window.__runs = []; window.__headingAt = null;"
              " if (window.__runWatch) window.__runWatch.disconnect();"
              " window.__runWatch = new MutationObserver(ms => { for (const m of ms)"
              " window.__runs.push(m.target.getAttribute('data-test-script-state')); });"
              " window.__runWatch.observe(document.body, {subtree: true, attributes: true,"
              " attributeFilter: ['data-test-script-state']}); }")
QUIET_MS = 50
VISIT_TIMEOUT = 180_000
RAN_AND_SETTLED = ("() => ((window.__runs || []).some(s => ['running', 'rerunRequested'].includes(s))"
                   f" || performance.now() - window.__headingAt >= {QUIET_MS}) && (" + SETTLED + ")()")


def visit(page, nav, title: str) -> float:
    page.evaluate(WATCH_RUNS)
    t0 = time.perf_counter()
    nav.get_by_role("link", name=re.compile(re.escape(title) + "$")).click()
    page.get_by_role("heading", name=re.compile(re.escape(title.split(" ")[0]), re.I)).first.wait_for(timeout=180_000)
    page.evaluate("() => { window.__headingAt = performance.now(); }")
    page.wait_for_function(RAN_AND_SETTLED, timeout=VISIT_TIMEOUT, polling=20)
    return time.perf_counter() - t0


def prepare(logs: str, built: str) -> str:
    """Check that `built` holds a rollup store covering `logs` as they are, write the workspace
    facts cache there when missing; returns a sentence on what was found."""
    from monitoring.config import load_config
    from monitoring.logs.workspace import open_workspace
    from monitoring.rollup.build import status

    cfg = load_config(overrides={"logs": logs, "data_dir": built})
    s = status(cfg)
    if not s.up_to_date:
        what = "no rollup store" if not s.exists else (
            f"a store out of date ({len(s.stale)} stale, {len(s.new)} new, {len(s.removed)} removed file(s)"
            f"{', columns changed' if s.schema_changed else ''})")
        raise SystemExit(f"{built} holds {what} for {logs}: run `MONITORING_DATA_DIR={built} python -m "
                         f"monitoring rollup build --logs {logs}` first.")
    t0 = time.perf_counter()
    had_cache = (Path(built) / "cache").is_dir() and any((Path(built) / "cache").iterdir())
    ws = open_workspace(cfg)      # reads the facts cache, or scans once and writes it
    seconds = time.perf_counter() - t0
    rows = ws.extent.rows
    ws.con.close()
    cache = ("its workspace facts cache" if had_cache else
             f"a workspace facts cache written first ({seconds:.0f} s, not timed)")
    return (f"the rollup store of `{built}` ({len(s.covered)} files, {s.rows:,} rows, built {s.built_at} "
            f"with {s.engine}) and {cache}; {rows:,} valid rows")


# What a server keeps of its own results in the data folder (docs/drift.md, docs/alerts.md):
# left out, so that every first visit computes them, as on a folder no server has used.
KEPT_RESULTS = ("bands", "alerts")


def _data_folder(tmp: str, built: str | None) -> str:
    """A fresh data folder; with `built`, its store and workspace facts cache linked in, not
    the results a server kept there (KEPT_RESULTS)."""
    if built:
        root = Path(built).resolve()
        (root / "rollups").mkdir(exist_ok=True)
        os.symlink(root / "rollups", Path(tmp) / "rollups", target_is_directory=True)
        (Path(tmp) / "cache").mkdir()
        for entry in (root / "cache").iterdir() if (root / "cache").is_dir() else ():
            if entry.name not in KEPT_RESULTS:
                os.symlink(entry, Path(tmp) / "cache" / entry.name, target_is_directory=entry.is_dir())
    return tmp


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) a live process has used so far (/proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()   # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime, stime


def run(logs: str, rounds: int, built: str | None = None,
        cpu: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Every page's visit times, in seconds, by title (the first the first visit). `cpu`, when
    given, gets the server's CPU seconds during each visit (all its threads: the page's run and
    whatever background work ran meanwhile), which the machine's load hardly changes."""
    from playwright.sync_api import sync_playwright

    cpu = {} if cpu is None else cpu

    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp:
        data_dir = _data_folder(tmp, built)
        proc, url = serve(logs, data_dir)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                t0, c0 = time.perf_counter(), server_cpu(proc.pid)
                page.goto(url, wait_until="domcontentloaded")
                page.get_by_role("heading", name="Overview").wait_for(timeout=180_000)
                page.wait_for_function(SETTLED, timeout=180_000, polling=50)
                times: dict[str, list[float]] = {"(app open, Overview)": [time.perf_counter() - t0]}
                cpu["(app open, Overview)"] = [server_cpu(proc.pid) - c0]
                nav = page.get_by_test_id("stSidebarNav")
                more = nav.get_by_role("button", name=re.compile(r"^View \d+ more$"))
                if more.count():   # the navigation shows the first pages and "View N more"
                    more.first.click()
                    nav.get_by_role("button", name=re.compile(r"^View less$")).wait_for(timeout=30_000)
                titles = [t.strip().splitlines()[-1].strip() for t in nav.get_by_role("link").all_inner_texts()
                          if t.strip()]
                from playwright.sync_api import TimeoutError as PageTimeout
                for _ in range(rounds):
                    for title in titles[1:] + titles[:1]:
                        c0 = server_cpu(proc.pid)
                        try:
                            seconds = visit(page, nav, title)
                        except PageTimeout:   # recorded as such; the next pages are still timed
                            print(f"{title}: no settled page within {VISIT_TIMEOUT / 1000:.0f} s", file=sys.stderr)
                            seconds = math.inf
                        times.setdefault(title, []).append(seconds)
                        cpu.setdefault(title, []).append(server_cpu(proc.pid) - c0)
                browser.close()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:   # still busy in a background job
                proc.kill()
                proc.wait()
    return times


# In the page: the time from each keydown to the next item's card being in the document.
REVIEW_WATCH_JS = """() => {
  const card = () => { const e = [...document.querySelectorAll('[data-testid=stCaptionContainer]')]
      .find(x => x.innerText.startsWith('Item ')); return e ? e.innerText : null; };
  window.__shown = []; let last = card();
  document.addEventListener('keydown', () => { window.__keydown = performance.now(); }, true);
  new MutationObserver(() => { const now = card();
      if (now && now !== last) { last = now; window.__shown.push(performance.now() - (window.__keydown || 0)); } })
    .observe(document.body, {subtree: true, childList: true, characterData: true});
}"""
# The card shows another item and the run that drew it is over.
NEXT_ITEM_JS = (
    "prev => { const e = [...document.querySelectorAll('[data-testid=stCaptionContainer]')]"
    ".find(x => x.innerText.startsWith('Item ')); const a = document.querySelector('[data-testid=stApp]');"
    " const s = a && a.getAttribute('data-test-script-state');"
    " return e && e.innerText !== prev && s && !['running', 'rerunRequested', 'initial'].includes(s); }"
)


def _card(page) -> str:
    return page.get_by_test_id("stCaptionContainer").filter(has_text=re.compile(r"^Item \d+ of ")).first.inner_text()


def _label_keys(page) -> dict[str, tuple[str, bool]]:
    """The label-value buttons: key -> (value, is the prediction). A button's text is its label,
    then the shortcut Streamlit draws on it. On a first visit the browser fetches the button's
    code after the run has ended: the page's text is there before its buttons, so wait for them."""
    page.get_by_role("button").filter(has_text="(predicted)").first.wait_for(timeout=60_000)
    out = {}
    for text in page.get_by_role("button").all_inner_texts():
        lines = [x.strip() for x in text.splitlines() if x.strip()]
        if len(lines) == 2 and lines[1].isdigit():
            out[lines[1]] = (lines[0].removesuffix(" (predicted)"), lines[0].endswith(" (predicted)"))
    return out


def review_session(page, n: int) -> list[dict]:
    """Label `n` items by key presses on an open Review page; returns per item what was shown,
    the key, the answer it means and the seconds from the key press to the next item."""
    page.evaluate(REVIEW_WATCH_JS)
    done = []
    for i in range(n):
        card = _card(page)
        keys = _label_keys(page)
        predicted = next(k for k, (_, p) in keys.items() if p)
        other = next(k for k, (_, p) in keys.items() if not p)
        key, verdict, label = [("y", "correct", None), (other, "wrong", keys[other][0]),
                               (predicted, "correct", None), ("u", "unsure", None)][i % 4]
        page.keyboard.press(key)
        page.wait_for_function(NEXT_ITEM_JS, arg=card, timeout=60_000, polling=20)
        shown = page.evaluate("window.__shown.length ? window.__shown[window.__shown.length - 1] : null")
        done.append({"request_id": card.split("request ")[1].split(" ·")[0], "key": key, "verdict": verdict,
                     "label": label, "seconds": shown / 1000})
        page.evaluate("window.__shown = []")
    return done


def make_queue(logs: str, db_url: str, size: int) -> int:
    from monitoring.config import load_config
    from monitoring.labelling import db, queues
    from monitoring.labelling.sampling import QueueSpec
    from monitoring.logs.workspace import open_workspace

    ws = open_workspace(load_config(overrides={"logs": logs}))
    engine = db.open_db(db_url)
    qid = queues.create_queue(engine, ws.source, ws.con, QueueSpec(size=size, seed=3))
    engine.dispose()
    return qid


def run_review(logs: str, items: int = 20, queues: int = 1) -> list[float]:
    """Seconds from each key press to the next item, over `items` items, with `queues` open
    queues in the database (the reviewer works in the newest)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-review-") as data_dir:
        for _ in range(queues - 1):
            make_queue(logs, f"sqlite:///{data_dir}/bench.sqlite", items + 5)
        qid = make_queue(logs, f"sqlite:///{data_dir}/bench.sqlite", items + 5)
        proc, url = serve(logs, data_dir)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(f"{url}/review?reviewer=bench&queue={qid}", wait_until="domcontentloaded")
                page.get_by_text(re.compile(r"^Item \d+ of ")).wait_for(timeout=180_000)
                page.wait_for_function(SETTLED, timeout=180_000, polling=50)
                page.evaluate("document.activeElement && document.activeElement.blur()")
                times = [r["seconds"] for r in review_session(page, items)]
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    return times


def review_table(runs: dict[int, list[float]]) -> str:
    lines = ["| review, key press to next item | open queues | items | p50 (s) | max (s) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for queues, times in runs.items():
        lines.append(f"| Review page, by keyboard | {queues} | {len(times)} | {statistics.median(times):.3f} | "
                     f"{max(times):.3f} |")
    return "\n".join(lines)


def _seconds(x: float | None) -> str:
    if x is None:
        return "–"
    return f"> {VISIT_TIMEOUT / 1000:.0f} (timed out)" if math.isinf(x) else f"{x:.2f}"


def table(times: dict[str, list[float]], cpu: dict[str, list[float]] | None = None) -> str:
    """First visit and median page switch per page; with `cpu`, the server's CPU seconds in each."""
    head, rule = "| page | first visit (s) | page switch (s) |", "| --- | ---: | ---: |"
    if cpu:
        head, rule = head + " server CPU, first visit (s) | server CPU, switch (s) |", rule + " ---: | ---: |"
    lines = [head, rule]
    for title, ts in times.items():
        switch = statistics.median(ts[1:]) if len(ts) > 1 else None
        line = f"| {title} | {_seconds(ts[0])} | {_seconds(switch)} |"
        if cpu:
            cs = cpu.get(title) or [None]
            line += f" {_seconds(cs[0])} | {_seconds(statistics.median(cs[1:]) if len(cs) > 1 else None)} |"
        lines.append(line)
    return "\n".join(lines)


SECTION = "## In a real browser (scripts/bench_browser.py)"
DEFAULT_OUT = str(ROOT / "docs" / "benchmarks.md")
BUILT_SECTION = "## In a real browser, big logs with rollups (scripts/bench_browser.py --data-dir)"


def main() -> None:
    from benchlib import load_average, machine, replace_section

    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", default=str(ROOT / "sample_logs"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scenario", choices=("pages", "review", "all"), default="all")
    ap.add_argument("--data-dir", help="a data folder whose rollup store for --logs is built (pages only)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="the Markdown file the section is written to "
                    "(default docs/benchmarks.md, with --scenario all; any --out given is written)")
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit("Chromium missing: make test (scripts/system-deps.sh) installs it")
    if args.data_dir:
        if args.scenario != "pages":
            raise SystemExit("--data-dir times the pages only: add --scenario pages")
        if not os.path.isdir(args.data_dir):
            raise SystemExit(f"--data-dir {args.data_dir} is not a folder")
        found = prepare(args.logs, args.data_dir)
        load_before = load_average()
        text = (f"{BUILT_SECTION}\n\nMeasured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on: "
                f"{machine('streamlit', 'duckdb', 'polars')}; Chromium {CHROMIUM}; load average "
                f"{load_before} before, ")
        cpu: dict[str, list[float]] = {}
        times = run(args.logs, args.rounds, built=args.data_dir, cpu=cpu)
        text += (f"{load_average()} after.\n\nEvery page of the navigation, {args.rounds} rounds on "
                 f"`{Path(args.logs).name}` with {found}. The server's caches, the database and the rest of "
                 "the data folder are cold: the first round is each page's first visit, the median of the "
                 "others a page switch. A visit ends when the page's heading shows and Streamlit's script "
                 "run is over; server CPU: the server process's CPU seconds (all threads) during the visit.\n\n"
                 + table(times, cpu) + "\n")
        print(text)
        replace_section(Path(args.out), text, BUILT_SECTION)
        return
    load_before = load_average()
    parts = []
    if args.scenario in ("pages", "all"):
        cpu = {}
        times = run(args.logs, args.rounds, cpu=cpu)
        parts.append(f"Every page of the navigation, {args.rounds} rounds on `{Path(args.logs).name}` with a "
                     "fresh data folder: the first round is each page's first visit (cold caches, its "
                     "queries run), the median of the others a page switch. A visit ends when the page's "
                     "heading shows and Streamlit's script run is over; server CPU: the server process's CPU "
                     "seconds (all its threads: the run and any background work) during the visit.\n\n"
                     + table(times, cpu))
    if args.scenario in ("review", "all"):
        parts.append("A reviewer labels 20 items of a fresh queue by key presses only; each figure is the "
                     "time from the keydown to the next item's card in the document, measured in the page "
                     "(`performance.now()`), with 1 and with 30 open queues. tests/test_review_browser.py "
                     "drives the same session and checks every label stored, in order.\n\n"
                     + review_table({n: run_review(args.logs, queues=n) for n in (1, 30)}))
    text = (f"{SECTION}\n\nMeasured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on: "
            f"{machine('streamlit', 'duckdb', 'polars')}; Chromium {CHROMIUM}; load average "
            f"{load_before} before, {load_average()} after.\n\n" + "\n\n".join(parts) + "\n")
    print(text)
    if args.scenario == "all" or args.out != DEFAULT_OUT:   # one scenario alone: written only where asked
        replace_section(Path(args.out), text, SECTION)


if __name__ == "__main__":
    main()

"""What users feel: every page's first visit and a page switch, timed in headless Chromium.

    python scripts/bench_browser.py [--logs sample_logs] [--rounds 2]

Starts `streamlit run app.py` on 127.0.0.1 with a fresh data folder (cold caches), opens
the app in Debian's Chromium (Playwright, no browser download), and clicks through every
page in the navigation twice: the first round is each page's first visit (its queries run),
the second a page switch (cached). A visit ends when the page's heading shows and the
script run is over (the app root's `data-test-script-state`).
Prints a Markdown table (seconds, median of the rounds where several) for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
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
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
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


def visit(page, nav, title: str) -> float:
    t0 = time.perf_counter()
    nav.get_by_role("link", name=re.compile(re.escape(title) + "$")).click()
    page.get_by_role("heading", name=re.compile(re.escape(title.split(" ")[0]), re.I)).first.wait_for(timeout=180_000)
    page.wait_for_timeout(100)   # the status widget appears a moment after the click
    page.wait_for_function(SETTLED, timeout=180_000, polling=50)
    return time.perf_counter() - t0


def run(logs: str, rounds: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-browser-") as data_dir:
        proc, url = serve(logs, data_dir)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                t0 = time.perf_counter()
                page.goto(url, wait_until="domcontentloaded")
                page.get_by_role("heading", name="Overview").wait_for(timeout=180_000)
                page.wait_for_function(SETTLED, timeout=180_000, polling=50)
                times: dict[str, list[float]] = {"(app open, Overview)": [time.perf_counter() - t0]}
                nav = page.get_by_test_id("stSidebarNav")
                titles = [t.strip().splitlines()[-1].strip() for t in nav.get_by_role("link").all_inner_texts()
                          if t.strip()]
                for _ in range(rounds):
                    for title in titles[1:] + titles[:1]:
                        times.setdefault(title, []).append(visit(page, nav, title))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    return times


def table(times: dict[str, list[float]]) -> str:
    lines = ["| page | first visit (s) | page switch (s) |", "| --- | ---: | ---: |"]
    for title, ts in times.items():
        first = ts[0]
        switch = statistics.median(ts[1:]) if len(ts) > 1 else None
        lines.append(f"| {title} | {first:.2f} | {'–' if switch is None else f'{switch:.2f}'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", default=str(ROOT / "sample_logs"))
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit("Chromium missing: make test (scripts/system-deps.sh) installs it")
    print(table(run(args.logs, args.rounds)))


if __name__ == "__main__":
    main()

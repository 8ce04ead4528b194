"""Benchmark drift end to end in the CLI on NannyML's real sets, as a user runs it.

    python scripts/bench_drift_sets.py            # needs the nannyml wheel (make thirdparty)

* car loan, 50k reference vs 50k analysis rows: `python -m monitoring drift --chunk auto
  --format json` (whole window plus drift over time), process start to exit, best of 3;
* census as a 4-year history (the 208,892 analysis rows spread over 2016-2018, reference
  file = 2015, converted by a [columns] mapping only): `summary` (the last week) and
  `alerts check`, process start to exit.

Peers are not installed here: NannyML 0.13's figure for the car-loan run on this machine
is 1.6 s (PERF_NOTES.md: whole window plus chunks), Evidently's 31 s (issue 9); the
census `summary` and `alerts check` took 200 s and 214 s before issue 9. The script prints
those beside ours and the CLI's bare start-up time (`--help`), a fixed cost every run pays.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PEERS = {"car-loan drift": ("NannyML 0.13", 1.6), "census summary": ("before issue 9", 200.0),
         "census alerts check": ("before issue 9", 214.0)}


def timed(args: list[str], repeat: int = 1) -> tuple[float, int]:
    best, code = float("inf"), 0
    for _ in range(repeat):
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "monitoring", *args], cwd=ROOT, capture_output=True, text=True,
                           env=os.environ | {"MONITORING_DB_URL": "sqlite://"})
        best = min(best, time.perf_counter() - t)
        code = r.returncode
        if r.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(args)} failed: {r.stderr.strip()[-400:]}")
    return best, code


def main() -> int:
    from tests.test_drift_thirdparty import car_loan, census

    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        start, _ = timed(["--help"], 3)
        rows.append(("CLI start-up (--help)", start, None))
        car = tmp / "car"
        car.mkdir()
        cfg = car_loan(car)
        t, _ = timed(["drift", "--config", str(cfg), "--logs", str(car / "car_logs"), "--chunk", "auto",
                      "--format", "json"], 3)
        rows.append(("car-loan drift", t, PEERS["car-loan drift"]))
        cen = tmp / "census"
        cen.mkdir()
        cfg = census(cen, with_time=True)
        logs = str(cen / "census_logs")
        t, _ = timed(["summary", "--config", str(cfg), "--logs", logs, "--format", "json"])
        rows.append(("census summary", t, PEERS["census summary"]))
        t, _ = timed(["alerts", "check", "--config", str(cfg), "--logs", logs, "--no-store", "--no-webhook"])
        rows.append(("census alerts check", t, PEERS["census alerts check"]))
    for name, t, peer in rows:
        extra = f"   ({peer[0]}: {peer[1]:.1f} s, x{peer[1] / t:.1f})" if peer else ""
        print(f"{name:24s} {t:6.2f} s{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

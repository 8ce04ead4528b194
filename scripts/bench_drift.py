"""Benchmark the drift engine: N reference rows against N current rows, 10 features
(8 numeric, 2 categorical), 2 DuckDB threads; optionally against Evidently's data drift
preset on the same data, in a virtualenv of its own.

    python scripts/bench_drift.py                       # 1M vs 1M, realistic values
    python scripts/bench_drift.py --rows 10000000       # 10M vs 10M
    python scripts/bench_drift.py --profile continuous  # full-precision floats (worst case)
    python scripts/bench_drift.py --evidently           # also Evidently 0.7.23 (pandas < 3)
    python scripts/bench_drift.py --rows 10000000 --exact-max-rows 1000000000   # force exact

The reference is a Parquet "training sample" (features only); the current side is logs
following the contract (request_id, timestamp, ... and the features). Each side is run in
a fresh process so its peak memory (max RSS) is its own. Profiles:
  realistic   values rounded as applications log them (ages and scores as integers,
              amounts to the unit or the hundred, ratios to 3 decimals): many ties;
  continuous  full-precision float64 draws: every value distinct, the worst case for the
              exact sorted merges behind Wasserstein and KS.
Above [drift] exact_max_rows values per side (default 2,000,000) numeric features are
computed from fine bins; each approximate score is printed with its error bound.
The current side has two real drifts (income x1.35, device mix), so decisions can be
compared. Data is written once under --data (default .bench/drift, git-ignored) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMERIC = ["age", "income", "credit_score", "loan_amount", "debt_to_income", "employment_years",
           "utilization", "tenure_months"]
CATEGORICAL = ["region", "device"]
EVIDENTLY = "evidently==0.7.23"


# -- data ----------------------------------------------------------------------------------------

def _features(rng, n: int, profile: str, drift: bool):
    import numpy as np

    r = profile == "realistic"
    income = 52_000.0 * np.exp(rng.normal(0.0, 0.5, n)) * (1.35 if drift else 1.0)
    cols = {
        "age": np.clip(np.rint(rng.normal(42, 12, n)), 18, 90) if r else rng.normal(42, 12, n),
        "income": np.round(income) if r else income,
        "credit_score": np.clip(np.rint(rng.normal(690, 60, n)), 300, 850) if r else rng.normal(690, 60, n),
        "loan_amount": np.round(15_000.0 * np.exp(rng.normal(0, 0.6, n)), -2 if r else 10),
        "debt_to_income": np.round(rng.beta(3, 7, n), 3 if r else 15),
        "employment_years": np.round(rng.gamma(2.0, 3.5, n), 1 if r else 15),
        "utilization": np.round(rng.beta(2, 5, n), 3 if r else 15),
        "tenure_months": np.rint(rng.gamma(3, 12, n)) if r else rng.gamma(3, 12, n),
    }
    if r:
        for c in ("age", "credit_score", "tenure_months"):
            cols[c] = cols[c].astype("int64")
    device_p = [0.20, 0.15, 0.65] if drift else [0.45, 0.25, 0.30]
    cols["region"] = rng.choice(["north", "south", "east", "west", "central"], n, p=[.22, .28, .18, .2, .12])
    cols["device"] = rng.choice(["web", "ios", "android"], n, p=device_p)
    return cols


def write_data(out: Path, rows: int, profile: str) -> tuple[Path, Path]:
    """reference.parquet (features only) and current.parquet (contract columns too)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    ref, cur = out / f"reference-{profile}-{rows}.parquet", out / f"current-{profile}-{rows}.parquet"
    if ref.exists() and cur.exists():
        return ref, cur
    chunk = 1_000_000
    for path, seed, drift in ((ref, 1, False), (cur, 2, True)):
        writer = None
        rng = np.random.default_rng(seed)
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            cols = _features(rng, n, profile, drift)
            if path == cur:
                t0 = 1_790_000_000_000_000  # microseconds, sorted over 30 days
                ts = t0 + (np.arange(start, start + n, dtype=np.int64) * (30 * 86_400_000_000 // rows))
                cols = {"request_id": pa.array(np.arange(start, start + n)).cast(pa.string()),
                        "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
                        "model_version": pa.array(["v1"] * n), "latency_ms": rng.gamma(2.0, 50.0, n),
                        "status": pa.array(["ok"] * n)} | cols
            table = pa.table(cols)
            if writer is None:
                writer = pq.ParquetWriter(path.with_suffix(".tmp"), table.schema, compression="zstd")
            writer.write_table(table, row_group_size=chunk)
        writer.close()
        path.with_suffix(".tmp").replace(path)
    return ref, cur


# -- our side ------------------------------------------------------------------------------------

def run_ours(ref: Path, cur: Path, threads: int, memory: str, exact_max_rows: int | None = None) -> dict:
    """Run the comparison in a fresh process; returns seconds, peak RSS and decisions."""
    code = textwrap.dedent(f"""
        import json, resource, time
        t0 = time.perf_counter()
        from monitoring import drift
        from monitoring.config import load_config
        from monitoring.query.filters import Filters
        from monitoring.logs.workspace import open_workspace
        cfg = load_config(overrides={{"logs": {str(cur)!r}, "duckdb_threads": {threads},
                                      "duckdb_memory_limit": {memory!r}}})
        ws = open_workspace(cfg)
        import scipy.stats  # imports are left out of the timing, on both sides
        t1 = time.perf_counter()
        settings = drift.load_settings({({"exact_max_rows": exact_max_rows} if exact_max_rows else {})!r})
        result = drift.analyze(ws, drift.Reference("file", path={str(ref)!r}), Filters(), settings)
        t2 = time.perf_counter()
        print(json.dumps({{"seconds": t2 - t1, "open_seconds": t1 - t0,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "decisions": {{f.name: bool(f.drifted) for f in result.features}},
            "scores": {{f.name: [f.method, f.score] for f in result.features}},
            "errors": {{f.name: f.error for f in result.features}}}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env=os.environ | {"PYTHONPATH": str(ROOT)}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- Evidently, in its own virtualenv ------------------------------------------------------------

EVIDENTLY_SCRIPT = """
import json, resource, sys, time
import pandas as pd
ref_path, cur_path, numeric, categorical = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4].split(",")
t0 = time.perf_counter()
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
cols = numeric + categorical
ref = pd.read_parquet(ref_path, columns=cols)
cur = pd.read_parquet(cur_path, columns=cols)
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
t1 = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                           Dataset.from_pandas(ref, data_definition=definition))
t2 = time.perf_counter()
scores = {}
for m in snapshot.dict()["metrics"]:
    config = m.get("config", {})
    if config.get("type", "").endswith("ValueDrift"):
        scores[config["column"]] = [config.get("method"), m.get("value"), config.get("threshold")]
print(json.dumps({"seconds": t2 - t1, "load_seconds": t1 - t0,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "scores": scores}))
"""


def evidently_python(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", EVIDENTLY, "pandas<3", "pyarrow"],
                       check=True)
    return py


def run_evidently(py: Path, ref: Path, cur: Path) -> dict:
    env = os.environ | {"DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
    out = subprocess.run([str(py), "-c", EVIDENTLY_SCRIPT, str(ref), str(cur), ",".join(NUMERIC),
                          ",".join(CATEGORICAL)], capture_output=True, text=True, env=env, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    # Distance methods (Evidently's defaults here: normed Wasserstein and Jensen-Shannon, 0.1)
    # detect drift when the value reaches the threshold.
    res["decisions"] = {name: (v is not None and v >= t) for name, (_, v, t) in res["scores"].items()}
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows per side (default 1M)")
    p.add_argument("--profile", choices=["realistic", "continuous"], default="realistic")
    p.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    p.add_argument("--memory", default="1GB", help="DuckDB memory limit (default 1GB)")
    p.add_argument("--repeat", type=int, default=3, help="runs of our side; the best is reported")
    p.add_argument("--data", default=str(ROOT / ".bench" / "drift"),
                   help="where the data (and Evidently's virtualenv) go (default .bench/drift, git-ignored)")
    p.add_argument("--evidently", action="store_true", help=f"also run {EVIDENTLY} (installs it in its own venv)")
    p.add_argument("--exact-max-rows", type=int, default=None,
                   help="[drift] exact_max_rows for our side (default the setting's, 2,000,000)")
    args = p.parse_args(argv)

    t = time.perf_counter()
    ref, cur = write_data(Path(args.data), args.rows, args.profile)
    print(f"data: {args.rows:,} vs {args.rows:,} rows, profile {args.profile} ({time.perf_counter() - t:.1f} s)")
    runs = [run_ours(ref, cur, args.threads, args.memory, args.exact_max_rows) for _ in range(args.repeat)]
    best = min(runs, key=lambda r: r["seconds"])
    times = ", ".join(f"{r['seconds']:.2f}" for r in runs)
    peak = max(r["max_rss_mb"] for r in runs)
    print(f"modelwatch: {best['seconds']:.2f} s (best of {args.repeat}: {times}), peak RSS {peak:.0f} MB")
    print("  drifted: " + ", ".join(sorted(k for k, v in best["decisions"].items() if v)))
    approx = {k: e for k, e in best["errors"].items() if e is not None}
    if approx:
        print("  approximate (fine bins), score ± bound: " + ", ".join(
            f"{k} {best['scores'][k][1]:.4f} ± {e:.2g}" for k, e in approx.items()))
    if args.evidently:
        py = evidently_python(Path(args.data) / "evidently-venv")
        ev = run_evidently(py, ref, cur)
        same = all(ev["decisions"].get(k) == v for k, v in best["decisions"].items())
        print(f"evidently: {ev['seconds']:.2f} s (+{ev['load_seconds']:.1f} s loading), "
              f"peak RSS {ev['max_rss_mb']:.0f} MB; speed-up x{ev['seconds'] / best['seconds']:.1f}; "
              f"same decisions: {same}")
        print("  (Evidently's Jensen-Shannon uses natural logarithms: its values are 0.83 x ours, base 2)")
        for name in NUMERIC + CATEGORICAL:
            ours = best["scores"][name]
            theirs = ev["scores"].get(name, ["?", None, None])
            print(f"  {name:18s} ours {ours[0]} {ours[1]:.4f}   evidently {theirs[0]} {theirs[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

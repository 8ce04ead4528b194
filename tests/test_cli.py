"""The `stats` and `generate` commands: JSON contract, numbers against numpy, clean failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest

from monitoring.cli.main import main

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitoring", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_stats_json_matches_numpy(generated_logs, capsys):
    start, end = "2026-11-05T00:00:00Z", "2026-11-06T00:00:00Z"
    assert main(["stats", "--logs", str(generated_logs), "--start", start, "--end", end,
                 "--bucket", "hour", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    t = ds.dataset(generated_logs, format="parquet", partitioning="hive").to_table().to_pandas()
    t = t[(t.timestamp >= start) & (t.timestamp < end)]
    ok = t[t.status == "ok"].latency_ms.to_numpy()
    assert out["rows"] == len(t)
    assert out["errors"] == int((t.status != "ok").sum())
    assert out["error_rate"] == pytest.approx((t.status != "ok").mean(), abs=1e-15)
    for q in (50, 95, 99):
        assert out["latency_ms"][f"p{q}"] == pytest.approx(np.percentile(ok, q), rel=1e-9)
    assert out["requests_per_minute"] == pytest.approx(len(t) / 1440)
    assert out["invalid_rows"] == {}
    assert len(out["buckets"]) == 24
    for key in ("start", "requests", "errors", "error_rate", "p50", "p95", "p99"):
        assert key in out["buckets"][0]
    hours = t.timestamp.dt.hour.to_numpy()
    burst = out["buckets"][14]
    assert burst["start"] == "2026-11-05T14:00:00Z"
    assert burst["requests"] == int((hours == 14).sum())
    assert burst["error_rate"] > 0.1          # the documented error burst
    assert sum(b["requests"] for b in out["buckets"]) == out["rows"]


def test_stats_filters_by_version_and_endpoint(generated_logs, capsys):
    assert main(["stats", "--logs", str(generated_logs), "--model-version", "v3",
                 "--endpoint", "/v2/predict", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    t = ds.dataset(generated_logs, format="parquet", partitioning="hive").to_table().to_pandas()
    sel = t[(t.model_version == "v3") & (t.endpoint == "/v2/predict")]
    assert out["rows"] == len(sel)
    assert out["latency_ms"]["p99"] == pytest.approx(
        np.percentile(sel[sel.status == "ok"].latency_ms, 99), rel=1e-9)


def test_stats_table_format(generated_logs, capsys):
    assert main(["stats", "--logs", str(generated_logs), "--start", "2026-11-01", "--end", "2026-11-02"]) == 0
    out = capsys.readouterr().out
    assert "p95" in out and "requests/minute" in out and "2026-11-01 00:00" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--logs", "/nonexistent/logs"], "no such file or directory"),
    (["--logs", "{tmp}/bad.parquet"], "no readable log files"),
    (["--logs", "{logs}", "--start", "yesterday"], "not an ISO 8601 time"),
    (["--logs", "{logs}", "--start", "2026-11-05", "--end", "2026-11-01"], "--end must be after --start"),
])
def test_stats_bad_input_is_one_line_and_exit_2(tmp_path, generated_logs, args, message):
    (tmp_path / "bad.parquet").write_text("not parquet")
    args = [a.format(tmp=tmp_path, logs=generated_logs) for a in args]
    r = run_cli("stats", *args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and message in r.stderr


def test_stats_reports_broken_rows_and_files(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({
        "request_id": ["a", "b", "c", "c"], "timestamp": pa.array([1, 2, None, 4], pa.timestamp("s")),
        "model_version": ["v"] * 4, "latency_ms": [1.0, float("nan"), 3.0, 4.0],
        "status": ["ok"] * 4, "prediction": ["x"] * 4}), tmp_path / "a.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"PAR1garbage")
    assert main(["stats", "--logs", str(tmp_path), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] == 2
    assert out["invalid_rows"] == {"missing_timestamp": 1, "missing_latency": 1}
    assert [b["path"].endswith("junk.parquet") for b in out["bad_files"]] == [True]


def test_generate_is_deterministic(tmp_path):
    r1 = run_cli("generate", "--out", str(tmp_path / "a"), "--days", "2", "--rows-per-day", "200", "--seed", "3")
    r2 = run_cli("generate", "--out", str(tmp_path / "b"), "--days", "2", "--rows-per-day", "200", "--seed", "3")
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr
    a = sorted((tmp_path / "a").rglob("*.parquet"))
    b = sorted((tmp_path / "b").rglob("*.parquet"))
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    bad = run_cli("generate", "--out", str(tmp_path / "c"), "--days", "0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr

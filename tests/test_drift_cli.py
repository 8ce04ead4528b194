"""`python -m monitoring drift`: the JSON contract, the table, and bad input (one line on
stderr, exit 2, never a traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitoring.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
ENTRY = {"name", "kind", "method", "score", "threshold", "drifted", "n_reference", "n_current"}


def run_json(capsys, *args) -> dict:
    assert main(["drift", *map(str, args), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_shape_and_the_injected_drifts(capsys, generated_logs):
    r = run_json(capsys, "--logs", generated_logs)
    assert r["reference"]["kind"] == "window" and r["reference"]["default"] is True
    assert r["reference"]["start"] == "2026-10-24T00:00:00Z" and r["reference"]["end"] == "2026-10-31T00:00:00Z"
    assert "first days" in r["reference"]["note"]
    assert r["reference"]["rows"] > 0 and r["current"]["rows"] > 0
    for entry in [r["prediction"], r["score"], *r["features"]]:
        assert ENTRY <= set(entry)
        assert entry["kind"] in ("numeric", "categorical") and isinstance(entry["drifted"], bool)
        assert ("p_value" in entry) == (entry["method"] in ("ks", "chisquare"))
    names = [f["name"] for f in r["features"]]
    assert "prediction" not in names and "score" not in names and len(names) == 10
    assert r["drifted"] == ["income", "device"] or sorted(r["drifted"]) == ["device", "income"]
    assert r["features"][0]["name"] == "income"  # sorted by score relative to threshold
    income = r["features"][0]
    assert income["secondary"]["method"] == "ks" and 0 <= income["secondary"]["p_value"] <= 1


def test_prediction_drift_in_its_window_with_chunks(capsys, generated_logs):
    r = run_json(capsys, "--logs", generated_logs, "--reference-start", "2026-10-24",
                 "--reference-end", "2026-10-31", "--start", "2026-11-19", "--end", "2026-11-21",
                 "--chunk", "day")
    assert r["reference"]["default"] is False
    assert r["prediction"]["drifted"] is True and r["prediction"]["method"] == "jensenshannon"
    assert r["score"]["drifted"] is False
    assert r["over_time"]["drifted_chunks"]["prediction"] == ["2026-11-19T00:00:00Z", "2026-11-20T00:00:00Z"]


def test_reference_file(capsys, generated_logs, tmp_path):
    import polars as pl

    path = tmp_path / "train.parquet"
    pl.read_parquet(f"{generated_logs}/**/*.parquet", hive_partitioning=False).head(5000).drop(
        "score").write_parquet(path)
    r = run_json(capsys, "--logs", generated_logs, "--reference", path)
    assert r["reference"] == {"kind": "file", "rows": 5000, "description": f"reference file {path}",
                              "path": str(path), "default": False}
    assert "score" in r and r["score"]["n_reference"] == 0 and r["score"]["drifted"] is False
    assert any("lacks" in w for w in r["warnings"])


def test_empty_current_window_is_a_message_not_an_error(capsys, generated_logs):
    r = run_json(capsys, "--logs", generated_logs, "--start", "2031-01-01", "--end", "2031-01-02")
    assert r["features"] == [] and "no rows" in r["message"]
    assert main(["drift", "--logs", str(generated_logs), "--start", "2031-01-01", "--end", "2031-01-02"]) == 0
    assert "no rows" in capsys.readouterr().out


def test_table(capsys, generated_logs):
    assert main(["drift", "--logs", str(generated_logs), "--chunk", "week"]) == 0
    out = capsys.readouterr().out
    assert "DRIFT" in out and "income" in out and "drifted: income, device" in out
    assert "drift over time (week chunks" in out


@pytest.mark.parametrize("args, message", [
    (["--reference", "x.parquet", "--reference-start", "2026-10-24", "--reference-end", "2026-10-30"],
     "either --reference or"),
    (["--reference-start", "2026-10-24"], "go together"),
    (["--start", "not-a-date"], "not an ISO 8601 time"),
    (["--reference", "/nonexistent/train.parquet"], "no such file"),
    (["--start", "2026-11-10", "--end", "2026-11-01"], "--end must be after --start"),
    (["--reference-start", "2026-11-10", "--reference-end", "2026-11-01"], "must end after it starts"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, generated_logs, args, message):
    assert main(["drift", "--logs", str(generated_logs), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_bad_drift_settings_and_missing_logs(capsys, generated_logs, tmp_path):
    cfg = tmp_path / "monitoring.toml"
    cfg.write_text('[drift.features.income]\nmethod = "magic"\n')
    assert main(["drift", "--logs", str(generated_logs), "--config", str(cfg)]) == 2
    assert "'magic' is not a drift test" in capsys.readouterr().err
    assert main(["drift", "--logs", str(tmp_path / "nope")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_as_a_process(generated_logs):
    out = subprocess.run([sys.executable, "-m", "monitoring", "drift", "--logs", str(generated_logs),
                          "--reference", "missing.parquet"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "Traceback" not in out.stderr and out.stderr.count("\n") == 1

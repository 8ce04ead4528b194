"""NannyML's bundled prediction sets, converted only by a `[columns]` mapping: they open,
count right and render on every page with no invented column (batch logs: no latency,
status or version; the census set has no time at all)."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from monitoring.config import load_config
from monitoring.logs.workspace import open_workspace
from tests.thirdparty import nannyml_table

# name -> (analysis file, monitoring.toml [columns] body, has time)
SETS = {
    "car_loan": ("synthetic_car_loan_analysis.csv",
                 'request_id = "id"\nprediction = "y_pred"\nscore = "y_pred_proba"\n', True),
    "car_price": ("regression_synthetic_analysis.csv", 'request_id = "id"\nprediction = "y_pred"\n', True),
    "credit_card": ("mc_analysis.csv", 'request_id = "id"\nprediction = "y_pred"\n', True),
    "housing": ("california_housing_analysis.csv",
                'request_id = "id"\nprediction = "y_pred"\nscore = "y_pred_proba"\n', True),
    "census": ("employment_MA_analysis.pq", 'request_id = "id"\nscore = "predicted_probability"\n', False),
}
REFERENCES = {"car_loan": "synthetic_car_loan_reference.csv", "car_price": "regression_synthetic_reference.csv",
              "credit_card": "mc_reference.csv", "housing": "california_housing_reference.csv",
              "census": "employment_MA_reference.pq"}
# Every page of the app's navigation (read from app.py, so a new page is covered at once).
ALL_PAGES = re.findall(r'st\.Page\("(pages/[\w]+\.py)"', (Path(__file__).resolve().parent.parent / "app.py").read_text())
# The pages about predictions, for the sets that differ only in their task (regression, multiclass).
PREDICTION_PAGES = ["pages/drift.py", "pages/quality.py", "pages/summary.py", "pages/queues.py", "pages/review.py"]


def write_set(tmp_path: Path, name: str) -> tuple[Path, Path]:
    file, mapping, _ = SETS[name]
    logs = tmp_path / name
    logs.mkdir()
    pq.write_table(nannyml_table(file), logs / "analysis.parquet")
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text("[columns]\n" + mapping)
    return logs, cfg


@pytest.mark.parametrize("name", list(SETS))
def test_batch_set_opens_with_every_row_valid(tmp_path, name):
    logs, cfg = write_set(tmp_path, name)
    ws = open_workspace(load_config(str(cfg), {"data_dir": str(tmp_path / "data")}), logs=str(logs))
    n = nannyml_table(SETS[name][0]).num_rows
    assert ws.health.total_rows == n and ws.health.valid_rows == n, ws.health.invalid_rows
    assert ws.source.has_time == SETS[name][2]
    assert ws.extent.model_versions == ("default",)
    if not SETS[name][2]:
        assert ws.extent.first is None
    for col in ("latency_ms", "status"):
        assert ws.source.missing(col) is not None


def test_overview_of_a_batch_set_claims_nothing_it_cannot_measure(app_env, tmp_path):
    """Car loans have no latency or status: the Overview says which columns are missing, once,
    shows no verdict (no green 'no requests' beside 1,156 of them) and no cards of dashes."""
    logs, cfg = write_set(tmp_path, "car_loan")
    at = app_env(logs, MONITORING_CONFIG=cfg)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.success and not at.error and not at.warning
    infos = [i.value for i in at.info]
    assert len(infos) == 2 and "latency_ms" in infos[0] and "status" in infos[1]
    shown = [m.label for m in at.metric]
    assert shown == ["Requests", "Throughput"]


def test_the_page_list_is_the_apps():
    """Every page file but the admins' Audit page (tested with sign-in, test_auth_pages)."""
    root = Path(__file__).resolve().parent.parent
    assert set(ALL_PAGES) | {"pages/audit.py"} == {f"pages/{p.name}" for p in (root / "pages").glob("*.py")}


@pytest.mark.parametrize("name,page", [(n, p) for n in ("car_loan", "census") for p in ALL_PAGES]
                         + [(n, p) for n in ("car_price", "credit_card") for p in PREDICTION_PAGES])
def test_every_page_renders_on_a_batch_set(app_env, tmp_path, name, page):
    logs, cfg = write_set(tmp_path, name)
    at = app_env(logs, MONITORING_CONFIG=cfg)
    at.switch_page(page)    # opened at the page's own address (the Overview has its own case)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(str(x.value) for x in [*at.info, *at.warning, *at.error, *at.markdown, *at.caption])
    if page in ("pages/latency.py",):
        assert "latency_ms" in shown and "[columns]" in shown
    if page == "pages/errors.py":
        assert ("status" in shown and "[columns]" in shown) or not SETS[name][2]


@pytest.mark.parametrize("name", ["car_loan", "car_price", "credit_card", "census"])
def test_commands_run_on_a_batch_set(tmp_path, name, monkeypatch, capsys):
    """stats, summary, drift and alerts on NannyML's sets: a result or one clear sentence.
    Through `monitoring.cli.main` in this process (its return is the exit status), and the
    census set's summary (no time: exit 2) once more as a real process: one line, no traceback."""
    import json
    import os
    import subprocess
    import sys

    from monitoring.cli.main import main

    logs, cfg = write_set(tmp_path, name)
    ref = tmp_path / "reference.parquet"
    pq.write_table(nannyml_table(REFERENCES[name]), ref)
    monkeypatch.setenv("MONITORING_DATA_DIR", str(tmp_path / "data"))
    root = Path(__file__).resolve().parent.parent

    def cli(*args):
        capsys.readouterr()
        code = main([*args, "--logs", str(logs), "--config", str(cfg)])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    stats = cli("stats", "--format", "json")
    assert stats.returncode == 0, stats.stderr
    data = json.loads(stats.stdout)
    assert data["rows"] == nannyml_table(SETS[name][0]).num_rows
    assert data["error_rate"] is None and data["latency_ms"]["p95"] is None
    assert any("latency_ms" in m for m in data["missing"])
    drift = cli("drift", "--reference", str(ref), "--format", "json")
    assert drift.returncode == 0, drift.stderr
    assert json.loads(drift.stdout)["features"]
    summary = cli("summary", "--format", "json")
    alerts = cli("alerts", "check")
    if SETS[name][2]:
        assert summary.returncode == 0, summary.stderr
        areas = json.loads(summary.stdout)["areas"]
        assert areas["errors"]["status"] == "grey" and "status" in areas["errors"]["reason"]
        assert areas["latency"]["status"] == "grey" and "latency_ms" in areas["latency"]["reason"]
        assert alerts.returncode in (0, 1), alerts.stderr
    else:
        assert summary.returncode == 2 and "no `timestamp` column" in summary.stderr
        assert "Traceback" not in summary.stderr + alerts.stderr
        env = {**os.environ, "MONITORING_DATA_DIR": str(tmp_path / "data")}
        real = subprocess.run([sys.executable, "-m", "monitoring", "summary", "--format", "json", "--logs", str(logs),
                               "--config", str(cfg)], capture_output=True, text=True, env=env, cwd=root, timeout=300)
        assert real.returncode == 2 and "no `timestamp` column" in real.stderr
        assert "Traceback" not in real.stderr and len(real.stderr.strip().splitlines()) == 1, real.stderr

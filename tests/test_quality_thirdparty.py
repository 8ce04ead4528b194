"""Quality on prediction sets nobody on this team generated (NannyML's bundled data).

The sets are converted only by renaming columns in monitoring.toml; CSV is rewritten as
Parquet (same columns, same values). Labels live in their own file, joined by id.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from scipy.stats import mannwhitneyu

from monitoring.config import load_config
from monitoring.logs.workspace import open_workspace
from monitoring.quality import quality_report
from tests.thirdparty import nannyml_table

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def _setup(tmp_path, stem: str, target: str, columns: dict[str, str], label: str):
    for part, name in (("analysis", f"{stem}_analysis.csv"), ("target", target), ("reference", f"{stem}_reference.csv")):
        pq.write_table(nannyml_table(name), tmp_path / f"{part}.parquet")
    cols = "\n".join(f'{k} = "{v}"' for k, v in columns.items())
    cfg = tmp_path / "monitoring.toml"
    cfg.write_text(f'logs = "{tmp_path / "analysis.parquet"}"\ndata_dir = "{tmp_path / "data"}"\n'
                   f"[columns]\n{cols}\n"
                   f'[labels]\npath = "{tmp_path / "target.parquet"}"\nid = "id"\nlabel = "{label}"\n')
    return cfg


def _months(ts) -> np.ndarray:
    arr = np.asarray(ts.cast("timestamp[us]").to_numpy(zero_copy_only=False))
    return arr.astype("datetime64[M]")


def _joined(analysis: str, target: str, label: str):
    a, t = nannyml_table(analysis), nannyml_table(target)
    y = dict(zip(t["id"].to_pylist(), t[label].to_pylist(), strict=True))
    truth = np.array([y[i] for i in a["id"].to_pylist()], dtype=float)
    return a, truth, _months(a["timestamp"])


@pytest.fixture(scope="module")
def car_loan(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("car_loan")
    cfg = _setup(tmp, "synthetic_car_loan", "synthetic_car_loan_analysis_target.csv",
                 {"request_id": "id", "prediction": "y_pred", "score": "y_pred_proba", "label": "repaid"}, "repaid")
    ws = open_workspace(load_config(str(cfg)))
    return tmp, cfg, quality_report(ws, chunk="month", reference=str(tmp / "reference.parquet"),
                                    by="salary_range", sensitive="salary_range")


def test_car_loan_monthly_accuracy_and_auc_equal_an_independent_computation(car_loan):
    _, _, r = car_loan
    a, truth, month = _joined("synthetic_car_loan_analysis.csv", "synthetic_car_loan_analysis_target.csv", "repaid")
    pred = a["y_pred"].to_numpy().astype(float)
    proba = a["y_pred_proba"].to_numpy()
    assert r["task"] == "classification" and r["positive_class"] == "1" and r["score"] == "positive"
    assert r["labelled"] == a.num_rows and r["coverage"] == 1.0
    chunks = {np.datetime64(c["start"].replace(tzinfo=None), "M"): c for c in r["chunks"]}
    assert set(chunks) == set(np.unique(month))
    for m, c in chunks.items():
        sel = month == m
        assert c["rows"] == sel.sum()
        assert c["metrics"]["accuracy"]["value"] == pytest.approx(np.mean(pred[sel] == truth[sel]), abs=1e-12)
        pos, neg = proba[sel & (truth == 1)], proba[sel & (truth == 0)]
        auc = mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg))
        assert c["metrics"]["roc_auc"]["value"] == pytest.approx(auc, abs=1e-12)
        lo, hi = c["metrics"]["roc_auc"]["ci"]
        assert lo < auc < hi


def test_car_loan_estimate_tracks_realized_accuracy_in_every_full_month(car_loan):
    _, _, r = car_loan
    ts = nannyml_table("synthetic_car_loan_analysis.csv")["timestamp"]
    first, last = pc.min(ts).as_py(), pc.max(ts).as_py()
    full = [c for c in r["chunks"] if c["start"] >= first.replace(tzinfo=UTC) and c["end"] <= last.replace(tzinfo=UTC)]
    assert len(full) >= 8
    assert any(c["start"] >= datetime(2019, 4, 1, tzinfo=UTC) for c in full)   # the drifted months
    for c in full:
        realized, est = c["metrics"]["accuracy"]["value"], c["estimated"]["accuracy"]["value"]
        assert abs(est - realized) <= 0.015, c["start"]
        assert c["gap"]["accuracy"] == pytest.approx(est - realized)
    # The drop from 2019-04 is seen by the estimate before any label: about 0.94 -> 0.91.
    before = np.mean([c["estimated"]["accuracy"]["value"] for c in full if c["start"] < datetime(2019, 4, 1, tzinfo=UTC)])
    after = np.mean([c["estimated"]["accuracy"]["value"] for c in full if c["start"] >= datetime(2019, 4, 1, tzinfo=UTC)])
    assert after < before - 0.02


def test_car_loan_fairness_rates_equal_a_count(car_loan):
    _, _, r = car_loan
    a, truth, _ = _joined("synthetic_car_loan_analysis.csv", "synthetic_car_loan_analysis_target.csv", "repaid")
    pred = a["y_pred"].to_numpy()
    group = np.array(a["salary_range"].to_pylist())
    rates = {g: np.mean(pred[group == g] == 1) for g in np.unique(group)}
    got = {g["value"]: g["positive_rate"]["value"] for g in r["fairness"]["groups"]}
    assert got == pytest.approx(rates)
    dp = r["fairness"]["demographic_parity"]
    assert dp["difference"]["value"] == pytest.approx(max(rates.values()) - min(rates.values()))
    assert dp["ratio"]["value"] == pytest.approx(min(rates.values()) / max(rates.values()))
    assert dp["four_fifths_violated"] == (dp["ratio"]["value"] < 0.8)
    tpr = {g: np.mean(pred[(group == g) & (truth == 1)] == 1) for g in np.unique(group)}
    assert r["fairness"]["equalized_odds"]["tpr_gap"]["value"] == pytest.approx(max(tpr.values()) - min(tpr.values()))


def test_car_price_monthly_mae_equals_an_independent_computation(tmp_path):
    cfg = _setup(tmp_path, "regression_synthetic", "regression_synthetic_analysis_targets.csv",
                 {"request_id": "id", "prediction": "y_pred", "label": "y_true"}, "y_true")
    r = quality_report(open_workspace(load_config(str(cfg))), chunk="month")
    a, truth, month = _joined("regression_synthetic_analysis.csv", "regression_synthetic_analysis_targets.csv", "y_true")
    pred = a["y_pred"].to_numpy()
    assert r["task"] == "regression" and "accuracy" not in r["overall"]
    assert r["overall"]["mae"]["value"] == pytest.approx(np.mean(np.abs(pred - truth)))
    assert r["estimation"]["what"].startswith("Nothing is estimated")
    for c in r["chunks"]:
        sel = month == np.datetime64(c["start"].replace(tzinfo=None), "M")
        assert c["metrics"]["mae"]["value"] == pytest.approx(np.mean(np.abs(pred[sel] - truth[sel])), rel=1e-12)
        e = pred[sel] - truth[sel]
        assert c["metrics"]["rmse"]["value"] == pytest.approx(np.sqrt(np.mean(e ** 2)), rel=1e-12)
        assert c["metrics"]["r2"]["value"] == pytest.approx(
            1 - np.sum(e ** 2) / np.sum((truth[sel] - truth[sel].mean()) ** 2), rel=1e-9)


def test_cli_json_on_car_loan(car_loan):
    import json

    tmp, cfg, r = car_loan
    out = subprocess.run([sys.executable, "-m", "monitoring", "quality", "--config", str(cfg), "--chunk", "month",
                          "--reference", str(tmp / "reference.parquet"), "--format", "json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert {"task", "labelled", "coverage", "overall", "chunks", "segments", "fairness"} <= set(got)
    assert {"accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc", "ece", "per_class",
            "confusion"} <= set(got["overall"])
    assert got["overall"]["accuracy"]["value"] == pytest.approx(r["overall"]["accuracy"]["value"])
    c = got["chunks"][1]
    assert {"start", "end", "rows", "labelled", "metrics", "estimated"} <= set(c)
    assert set(c["estimated"]["accuracy"]) >= {"value", "band"}


def test_credit_card_per_class_figures_and_one_vs_rest_auc(tmp_path):
    cfg = _setup(tmp_path, "mc", "mc_analysis_gt.csv", {"request_id": "id", "prediction": "y_pred", "label": "y_true"},
                 "y_true")
    cfg.write_text(cfg.read_text() + '[quality]\nclass_score_prefix = "y_pred_proba_"\n')
    r = quality_report(open_workspace(load_config(str(cfg))), chunk="month", reference=str(tmp_path / "reference.parquet"))
    a = nannyml_table("mc_analysis.csv")
    gt_ = nannyml_table("mc_analysis_gt.csv")
    y = dict(zip(gt_["id"].to_pylist(), gt_["y_true"].to_pylist(), strict=True))
    truth = np.array([y[i] for i in a["id"].to_pylist()])
    pred = np.array(a["y_pred"].to_pylist())
    classes = sorted(set(truth))
    assert r["classes"] == classes
    for c in classes:
        tp = np.sum((pred == c) & (truth == c))
        per = r["overall"]["per_class"][c]
        assert per["precision"] == pytest.approx(tp / np.sum(pred == c))
        assert per["recall"] == pytest.approx(tp / np.sum(truth == c))
        assert per["support"] == np.sum(truth == c)
    aucs = []
    for c in classes:
        s = a[f"y_pred_proba_{c}"].to_numpy()
        pos, neg = s[truth == c], s[truth != c]
        aucs.append(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))
    assert r["overall"]["roc_auc"]["value"] == pytest.approx(np.mean(aucs), abs=1e-12)
    assert r["overall"]["confusion"]["matrix"][0][0] == np.sum((truth == classes[0]) & (pred == classes[0]))
    assert "accuracy" in r["chunks"][0]["estimated"]


def test_census_without_timestamps_uses_row_chunks_and_shows_the_auc_drop(tmp_path):
    for part, name in (("analysis", "employment_MA_analysis.pq"), ("target", "employment_MA_analysis_target.pq")):
        pq.write_table(nannyml_table(name), tmp_path / f"{part}.parquet")
    cfg = tmp_path / "monitoring.toml"
    cfg.write_text(f'logs = "{tmp_path / "analysis.parquet"}"\ndata_dir = "{tmp_path / "data"}"\n'
                   '[columns]\nrequest_id = "id"\nscore = "predicted_probability"\n'
                   f'[labels]\npath = "{tmp_path / "target.parquet"}"\nid = "id"\nlabel = "employed"\n')
    r = quality_report(open_workspace(load_config(str(cfg))), chunk="rows:5000")
    a = nannyml_table("employment_MA_analysis.pq")
    t = nannyml_table("employment_MA_analysis_target.pq")
    y = dict(zip(t["id"].to_pylist(), t["employed"].to_pylist(), strict=True))
    truth = np.array([y[i] for i in a["id"].to_pylist()])
    proba = a["predicted_probability"].to_numpy()
    assert r["chunk"] == "rows:5000" and len(r["chunks"]) == -(-a.num_rows // 5000)
    spike = r["chunks"][27]                                  # rows 135000-139999
    sel = slice(135000, 140000)
    pos, neg = proba[sel][truth[sel] == 1], proba[sel][truth[sel] == 0]
    assert spike["rows"] == 5000
    assert spike["metrics"]["roc_auc"]["value"] == pytest.approx(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))
    others = [c["metrics"]["roc_auc"]["value"] for i, c in enumerate(r["chunks"]) if i != 27 and c["rows"] == 5000]
    assert spike["metrics"]["roc_auc"]["ci"][1] < min(others)

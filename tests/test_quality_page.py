"""The Quality page rendered in-process (AppTest) on the sample logs and on logs without labels."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.page_helpers import open_page


def _frame(at, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_quality_page_shows_the_accuracy_drop_segments_and_fairness(app_env, sample_logs):
    at = open_page(app_env(sample_logs), "pages/quality.py")   # default window: the last 7 days (the prediction shift)
    assert at.title[0].value == "Quality"
    labels = {m.label for m in at.metric}
    assert {"Labelled", "Accuracy", "F1 (macro)", "Positive-rate difference", "TPR gap"} <= labels
    lab = next(m for m in at.metric if m.label == "Labelled")
    assert lab.delta.endswith("% of served") and len(lab.delta) <= 20 and " served predictions" in lab.help
    acc = next(m for m in at.metric if m.label == "Accuracy")
    assert acc.value.startswith("0.") and acc.delta.startswith("95%: ") and len(acc.delta) <= 20
    assert "95% interval" in acc.help and "n = " in acc.help   # the whole interval with its n on hover
    charts = {c.proto.spec for c in at.get("plotly_chart")}
    assert any("accuracy over time" in s for s in charts)
    over = next(s for s in charts if "accuracy over time" in s)
    assert "estimated" in over
    seg = _frame(at, "rank")
    assert list(seg["rank"]) == list(range(1, len(seg) + 1))
    groups = _frame(at, "positive rate")
    assert set(groups["group"]) == {"web", "ios", "android"}
    assert any("Too few labels" in c.value for c in at.caption)   # the last days have none yet


def test_quality_page_segment_and_sensitive_choices(app_env, sample_logs):
    at = open_page(app_env(sample_logs), "pages/quality.py")
    at.selectbox(key="quality_by").set_value("region")
    at.selectbox(key="quality_sensitive").set_value("(none)")
    at.run()
    assert not at.exception
    seg = _frame(at, "rank")
    assert set(seg["region"]) == {"north", "south", "east", "west", "central"}
    assert any("Pick a sensitive column" in i.value for i in at.info)


def test_quality_page_without_labels_explains_itself(app_env, tmp_path):
    n = 50
    pq.write_table(pa.table({
        "request_id": [f"r{i}" for i in range(n)],
        "timestamp": pa.array([datetime(2026, 11, 1, 10) + timedelta(minutes=i) for i in range(n)], pa.timestamp("us")),
        "prediction": ["a", "b"] * (n // 2)}), tmp_path / "a.parquet")
    at = open_page(app_env(tmp_path), "pages/quality.py")
    assert any("No labels to score yet" in i.value for i in at.info)
    assert any("no labels" in w.value for w in at.warning)


def test_quality_page_with_a_broken_labels_mapping_says_so(app_env, sample_logs, tmp_path):
    pq.write_table(pa.table({"id": ["x"], "truth": ["low"]}), tmp_path / "labels.parquet")
    cfg = tmp_path / "monitoring.toml"
    cfg.write_text(f'[labels]\npath = "{tmp_path / "labels.parquet"}"\nid = "id"\nlabel = "truht"\n')
    at = open_page(app_env(sample_logs, MONITORING_CONFIG=cfg), "pages/quality.py")
    assert any("no column" in e.value and "truht" in e.value for e in at.error)


def _batch(tmp_path, analysis: str, target: str, columns: str, label: str):
    from tests.thirdparty import nannyml_table

    logs = tmp_path / "logs"
    logs.mkdir()
    pq.write_table(nannyml_table(analysis), logs / "analysis.parquet")
    pq.write_table(nannyml_table(target), tmp_path / "target.parquet")
    cfg = tmp_path / "monitoring.toml"
    cfg.write_text(f"[columns]\n{columns}\n[labels]\npath = \"{tmp_path / 'target.parquet'}\"\nid = \"id\"\n"
                   f"label = \"{label}\"\n")
    return logs, cfg


def test_quality_page_on_batch_sets_with_late_labels(app_env, tmp_path):
    logs, cfg = _batch(tmp_path, "synthetic_car_loan_analysis.csv", "synthetic_car_loan_analysis_target.csv",
                       'request_id = "id"\nprediction = "y_pred"\nscore = "y_pred_proba"', "repaid")
    at = open_page(app_env(logs, MONITORING_CONFIG=cfg), "pages/quality.py")
    at.sidebar.selectbox(key="range_preset").set_value("All data")
    at.run()
    assert not at.exception
    labels = {m.label: m for m in at.metric}
    assert labels["ROC AUC"].value.startswith("0.9") and labels["Labelled"].value == "50,000"


def test_quality_page_on_logs_without_time(app_env, tmp_path):
    logs, cfg = _batch(tmp_path, "employment_MA_analysis.pq", "employment_MA_analysis_target.pq",
                       'request_id = "id"\nscore = "predicted_probability"', "employed")
    at = open_page(app_env(logs, MONITORING_CONFIG=cfg), "pages/quality.py")
    assert any("no timestamp" in w.value for w in at.warning)
    assert {"Accuracy", "ROC AUC"} <= {m.label for m in at.metric}


def test_text_from_the_logs_stays_text_on_the_quality_page(app_env, tmp_path):
    n = 120
    classes = ["<i>a</i>", "**b**"]
    pq.write_table(pa.table({
        "request_id": [f"r{i}" for i in range(n)],
        "timestamp": pa.array([datetime(2026, 11, 1, 10) + timedelta(minutes=i) for i in range(n)], pa.timestamp("us")),
        "prediction": [classes[i % 2] for i in range(n)],
        "label": [classes[(i // 3) % 2] for i in range(n)],
        "region": ["[x](http://evil.example)", "<script>alert(1)</script>"] * (n // 2)}), tmp_path / "a.parquet")
    at = open_page(app_env(tmp_path), "pages/quality.py")
    at.selectbox(key="quality_by").set_value("region")
    at.run()
    assert not at.exception
    import json

    specs = " ".join(json.dumps(json.loads(c.proto.spec), ensure_ascii=False) for c in at.get("plotly_chart"))
    assert "&lt;i&gt;a&lt;/i&gt;" in specs and "<i>a</i>" not in specs
    assert "&lt;script&gt;" in specs and "<script>" not in specs
    seg = _frame(at, "rank")
    assert set(seg["region"]) == {"[x](http://evil.example)", "<script>alert(1)</script>"}


def test_quality_page_shows_coverage_and_label_delay(app_env, tmp_path):
    n = 90
    served = [datetime(2026, 11, 1, 10) + timedelta(minutes=i) for i in range(n)]
    pq.write_table(pa.table({"request_id": [f"r{i}" for i in range(n)], "timestamp": pa.array(served, pa.timestamp("us")),
                             "prediction": ["a", "b", "a"] * (n // 3)}), tmp_path / "a.parquet")
    labels = tmp_path / "labels"
    labels.mkdir()
    k = 60                                            # two thirds labelled, 0-5 days late
    pq.write_table(pa.table({"request_id": [f"r{i}" for i in range(k)], "label": ["a"] * k,
                             "labeled_at": pa.array([served[i] + timedelta(days=i % 6) for i in range(k)],
                                                    pa.timestamp("us"))}), labels / "l.parquet")
    at = app_env(tmp_path / "a.parquet", MONITORING_LABELS=labels / "l.parquet")
    at = open_page(at, "pages/quality.py")
    cov = next(m for m in at.metric if m.label == "Labelled")
    assert cov.value == "60" and cov.delta == "66.7% of served" and "window's 90 served" in cov.help
    assert next(m for m in at.metric if m.label == "Median delay").value == "2.5 days"
    assert any("Label delay" in c.proto.spec for c in at.get("plotly_chart"))


@pytest.fixture(scope="module")
def review_only_logs(tmp_path_factory):
    """Five sample days without a label column: every label comes from the reviewers."""
    from tests.page_helpers import sample_without_labels

    return sample_without_labels(tmp_path_factory.mktemp("review-only") / "logs", 5, 200, 3)


def test_a_reviewer_verdict_shows_on_the_next_run(app_env, review_only_logs, tmp_path):
    """The Quality page's figures are cached for ten minutes by the logs' fingerprint and the
    labels mark: verdicts recorded after the page was drawn are on it at the next run, and its
    figures are those of the event table counted by sqlite3."""
    import sqlite3

    from monitoring.labelling import db, queues
    from tests.page_helpers import make_queue

    path = tmp_path / "verdicts.sqlite"
    cfg = tmp_path / "monitoring.toml"
    cfg.write_text("[quality]\nmin_labels = 3\n")
    at = open_page(app_env(review_only_logs, db_url=f"sqlite:///{path}", MONITORING_CONFIG=cfg),
                   "pages/quality.py")
    assert any("No labels to score yet" in i.value for i in at.info)
    q = make_queue(review_only_logs, f"sqlite:///{path}", size=6)
    engine = db.open_db(f"sqlite:///{path}")
    for verdict in ("correct", "correct", "wrong", "correct"):
        item = queues.claim_next(engine, q, "ana")
        queues.answer(engine, item, "ana", verdict, correct_label="other" if verdict == "wrong" else None)
    engine.dispose()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    con = sqlite3.connect(path)
    labelled, right = con.execute(
        "SELECT count(DISTINCT request_id), count(DISTINCT request_id) FILTER (WHERE verdict = 'correct') "
        "FROM labelling_events WHERE action = 'answer'").fetchone()
    con.close()
    assert (labelled, right) == (4, 3)
    metric = {m.label: m.value for m in at.metric}
    assert metric["Labelled"] == f"{labelled:,}" and metric["Accuracy"] == f"{right / labelled:.3f}"

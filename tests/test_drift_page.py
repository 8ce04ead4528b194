"""The Drift page in-process (AppTest) on a reference file, a reference window, an empty
window, and logs with an all-null feature and hostile category strings; and one journey in
headless Chromium that picks a feature and sees its distributions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ["<script>alert(1)</script>", "'; DROP TABLE logs; --", "**bold** [x](http://e.invalid)"]


def open_drift(at):
    """The Drift page opened directly, as a link to it does: one run of app.py (before the
    first run AppTest names a page by its file, as st.Page does), no Overview computed first."""
    at.switch_page("pages/drift.py")
    at.run()
    assert not at.exception, at.exception
    return at


def features_table(at):
    """The columns table without the model outputs' rows (listed first)."""
    t = next(d.value for d in at.dataframe if "feature" in d.value.columns)
    return t[~t["feature"].str.endswith(("(model output)", "(ground truth)", "(multivariate)"))].reset_index(drop=True)


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.fixture
def empty_config(tmp_path):
    path = tmp_path / "monitoring.toml"
    path.write_text("# kept as is\n")
    return path


def test_reference_file(app_env, generated_logs, tmp_path, empty_config):
    train = pl.read_parquet(f"{generated_logs}/**/*.parquet", hive_partitioning=False).filter(
        pl.col("timestamp") < datetime(2026, 10, 31, tzinfo=UTC)).drop("request_id", "latency_ms", "status")
    path = tmp_path / "train.parquet"
    train.write_parquet(path)
    at = open_drift(app_env(generated_logs, MONITORING_REFERENCE=path, MONITORING_CONFIG=empty_config))
    assert at.radio(key="drift_ref_kind").value == "Reference file"
    assert metric(at, "Reference rows") == f"{train.height:,}"
    table = features_table(at)
    assert table["feature"].iloc[0] == "income" and "drift" in table["status"].iloc[0]
    assert set(table.loc[table["status"].str.contains("drift"), "feature"]) == {"income", "device"}


def test_reference_window_chosen_and_remembered(app_env, generated_logs, empty_config):
    at = open_drift(app_env(generated_logs, MONITORING_CONFIG=empty_config))
    assert at.date_input(key="drift_ref_window").value == (date(2026, 10, 24), date(2026, 10, 30))
    at.date_input(key="drift_ref_window").set_value((date(2026, 10, 24), date(2026, 10, 26))).run()
    assert not at.exception
    three_days = metric(at, "Reference rows")
    at.button(key="drift_save").click().run()
    assert not at.exception
    text = empty_config.read_text()
    assert text.startswith("# kept as is\n")
    assert 'reference_start = "2026-10-24T00:00:00Z"' in text and 'reference_end = "2026-10-27T00:00:00Z"' in text
    at = open_drift(app_env(generated_logs, MONITORING_CONFIG=empty_config))  # a new session
    assert at.date_input(key="drift_ref_window").value == (date(2026, 10, 24), date(2026, 10, 26))
    assert metric(at, "Reference rows") == three_days
    # the detail of one column: its distributions and score over time
    at.selectbox(key="drift_feature").set_value(("device", "feature")).run()
    assert not at.exception
    assert metric(at, "Status").endswith("drift")


def test_empty_current_window(app_env, generated_logs, empty_config):
    at = open_drift(app_env(generated_logs, MONITORING_CONFIG=empty_config))
    at.multiselect(key="versions").set_value(["v1"]).run()  # v1 is gone in the last 7 days
    assert not at.exception
    assert any("current window" in i.value and "no rows" in i.value for i in at.info)
    assert metric(at, "Current rows") == "0"


def _odd_logs(path: Path, n: int = 3000) -> Path:
    rng = np.random.default_rng(5)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    ts = [start + timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 20 * 86400, n))]
    table = pa.table({
        "request_id": [f"r{i}" for i in range(n)],
        "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "model_version": ["v1"] * n, "latency_ms": rng.gamma(2, 40, n), "status": ["ok"] * n,
        "prediction": rng.choice(["a", "b"], n), "score": rng.random(n),
        "amount": rng.normal(100, 10, n),
        "nothing": pa.nulls(n, pa.float64()),
        "comment": rng.choice(HOSTILE, n),
    })
    pq.write_table(table, path)
    return path


def test_all_null_feature_and_hostile_categories(app_env, tmp_path, empty_config):
    logs = _odd_logs(tmp_path / "odd.parquet")
    at = open_drift(app_env(logs, MONITORING_CONFIG=empty_config))
    table = features_table(at)
    row = table.loc[table["feature"] == "nothing"].iloc[0]
    assert "no data" in row["status"] and "null" in row["quality"]
    at.selectbox(key="drift_feature").set_value(("nothing", "feature")).run()
    assert not at.exception
    assert any("no non-null values" in w.value for w in at.warning)
    assert any("one side has no values" in i.value for i in at.info)
    at.selectbox(key="drift_feature").set_value(("comment", "feature")).run()
    assert not at.exception
    # Category strings stay data: never rendered as markup by the page itself.
    for el in [*at.markdown, *at.warning, *at.caption]:
        assert "<script>" not in el.value


def test_no_unsafe_html_anywhere():
    for path in [ROOT / "pages" / "drift.py", ROOT / "ui" / "drift.py", *(ROOT / "monitoring" / "drift").glob("*.py")]:
        assert "unsafe_allow_html" not in path.read_text(), path


@pytest.mark.browser
def test_browser_pick_a_feature_and_see_its_distributions(streamlit_server, browser, generated_logs):
    url = streamlit_server(MONITORING_LOGS=generated_logs)
    page = browser.new_page()
    try:
        page.goto(f"{url}/drift", wait_until="networkidle")
        page.get_by_text("Drift over time").first.wait_for(timeout=90_000)
        page.get_by_text("Distribution: reference vs current").first.wait_for(timeout=60_000)
        page.wait_for_load_state("networkidle")
        box = page.get_by_role("combobox", name="Column")
        # Type to filter, then Enter: sturdier than clicking an option of a list that a
        # rerun of the page may close under the cursor.
        box.click()
        box.fill("income")
        page.keyboard.press("Enter")
        page.get_by_text("Score (wasserstein)").first.wait_for(timeout=60_000)
        page.get_by_text("Distribution: reference vs current").first.wait_for(timeout=60_000)
        page.get_by_text("wasserstein score per chunk").first.wait_for(timeout=60_000)
        assert page.get_by_text("drift", exact=True).count() >= 1   # the status, in words
    finally:
        page.close()


# -- issue 9: the census spike on the page, with no control changed; drill-down; URL --------------

def _census_app(app_env, tmp_path):
    from tests.test_drift_thirdparty import census

    cfg = census(tmp_path, with_time=False)
    return app_env(tmp_path / "census_logs", MONITORING_CONFIG=cfg)


def _heatmap_spec(at) -> dict:
    import json

    charts = [c for c in at.get("plotly_chart") if "Drift over time" in c.proto.spec]
    return json.loads(charts[0].proto.spec)


def test_census_spike_shows_with_default_controls(app_env, tmp_path):
    at = open_drift(_census_app(app_env, tmp_path))
    shown = " ".join(c.value for c in at.caption).replace("\\", "")  # Markdown escapes
    assert "auto: rows:5000" in shown and "needs the most" in shown  # the choice, stated on screen
    table = features_table(at)
    worst = dict(zip(table["feature"], table["worst chunk"], strict=True))
    for name in ("RELP", "AGEP", "SCHL"):                            # each names its worst chunk
        assert worst[name].startswith(("rows 135,000", "rows 140,000")), (name, worst[name])
    spec = _heatmap_spec(at)
    rows = spec["layout"]["yaxis"]["tickvals"]
    assert len(rows) == table.shape[0] + 2 and "CIT" in rows         # every row labelled
    # the detail opens on the most drifted column, not on the prediction
    assert at.selectbox(key="drift_feature").value[0] != "prediction"


@pytest.mark.parametrize("k, expect", [(27, {"RELP", "AGEP", "SCHL"}), (2, set())])
def test_picking_a_chunk_shows_its_table(app_env, tmp_path, k, expect):
    at = open_drift(_census_app(app_env, tmp_path))
    at.selectbox(key="drift_pick_k").set_value(k).run()
    assert not at.exception, at.exception
    table = features_table(at)
    drifted = set(table.loc[table["status"].str.contains("drift"), "feature"])
    assert expect <= drifted and (expect or not drifted & {"AGEP", "SCHL"})
    assert at.query_params["k"] == [str(k)] or at.query_params["k"] == str(k)
    assert any(f"chunk rows {k * 5000:,}" in h.value for h in at.subheader)
    assert "nulls" in next(d.value for d in at.dataframe if "nulls" in d.value.columns).columns


def test_choices_come_from_the_url(app_env, tmp_path):
    at = _census_app(app_env, tmp_path)
    at.query_params["chunk"] = "rows:10000"
    at.query_params["column"] = "SEX"
    at.query_params["k"] = "13"
    at = open_drift(at)
    assert at.selectbox(key="drift_feature").value == ("SEX", "feature")
    assert at.selectbox(key="drift_pick_k").value == 13
    assert any("rows 130,000" in h.value for h in at.subheader)


def test_multiclass_outputs_and_late_labels_beside_the_prediction(app_env, tmp_path):
    """Per-class probabilities (a struct column), their max and label drift from a labels
    file: headlines beside the prediction, a row each in the table, a detail view each."""
    from tests.test_drift_classes import write_set

    cfg, _, cur = write_set(tmp_path, "struct")
    ids = np.arange(10_000, 10_000 + len(cur))
    pq.write_table(pa.table({"id": ids, "y": np.where(cur.argmax(axis=1) == 2, "owl", "cat")}),
                   tmp_path / "labels.parquet")
    cfg.write_text(cfg.read_text() + f'[labels]\npath = "{tmp_path / "labels.parquet"}"\nlabel = "y"\nid = "id"\n')
    at = open_drift(app_env(tmp_path / "logs", MONITORING_CONFIG=cfg))
    labels = [m.label for m in at.metric]
    assert "Max probability drift (wasserstein)" in labels and "Label drift (jensenshannon)" in labels
    assert any("Class probabilities: cat" in c.value for c in at.caption)
    t = next(d.value for d in at.dataframe if "feature" in d.value.columns)
    rows = set(t["feature"])
    assert {"probs.cat (class probability)", "probs.owl (class probability)",
            "max probability (the model's confidence)", "label (ground truth)"} <= rows
    assert "drift" in t.loc[t["feature"] == "max probability (the model's confidence)", "status"].iloc[0]
    at.selectbox(key="drift_feature").set_value(("probs.owl", "class_score")).run()
    assert not at.exception
    assert metric(at, "Status").endswith("drift")

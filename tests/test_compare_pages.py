"""The Compare and Models pages rendered in-process (AppTest) on the sample logs, on logs
with one version, and with a broken registry."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def render(at, page: str, preset: str = "All data"):
    at.run()
    at.sidebar.selectbox(key="range_preset").set_value(preset)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [w.value for w in at.warning]
    parts += [i.value for i in at.info] + [s.value for s in at.success] + [c.value for c in at.caption]
    return plain("\n".join(str(p) for p in parts))


def plain(text: str) -> str:
    """Markdown-escaped text (monitoring.fmt.md) as it reads on screen."""
    return text.replace("\\", "")


def test_compare_names_the_regressed_version_with_its_interval(app_env, sample_logs):
    at = render(app_env(sample_logs), "pages/compare.py")
    assert at.title[0].value == "Compare versions"
    assert at.selectbox(key="compare_baseline").value == "v2"       # most traffic
    assert at.selectbox(key="compare_candidate").value == "v3"      # newest
    err = plain(" ".join(e.value for e in at.error))
    assert "Rollback signal: roll back v3" in err
    assert "slower at P95 by" in err and "95% interval" in err and "significant" in err
    table = at.dataframe[0].value
    row = table[table["metric"] == "P95"].iloc[0]
    assert row["judgement"].startswith("BREACH") and row["tolerance"] == "+10%"
    assert "mixture" in texts(at) and "Holm" in texts(at)


def test_compare_the_calm_pair_raises_no_rollback(app_env, sample_logs):
    at = render(app_env(sample_logs), "pages/compare.py")
    at.selectbox(key="compare_baseline").set_value("v1")
    at.selectbox(key="compare_candidate").set_value("v2")
    at.run()
    assert not at.exception
    assert not any("Rollback" in e.value for e in at.error)
    assert "v2 is faster at P95" in texts(at)


@pytest.fixture
def one_version_logs(tmp_path):
    n = 50
    t0 = datetime(2026, 11, 1, 10)
    table = pa.table({"request_id": [f"r{i}" for i in range(n)],
                      "timestamp": pa.array([t0 + timedelta(minutes=i) for i in range(n)], pa.timestamp("us")),
                      "model_version": ["v1"] * n, "latency_ms": [100.0 + i for i in range(n)],
                      "status": ["ok"] * n, "prediction": ["a"] * n})
    pq.write_table(table, tmp_path / "one.parquet")
    return tmp_path / "one.parquet"


def test_compare_with_one_version_explains(app_env, one_version_logs):
    at = render(app_env(one_version_logs), "pages/compare.py")
    assert "Fewer than two versions" in " ".join(i.value for i in at.info)


def test_models_page_shows_validation_against_production_for_every_version(app_env, sample_logs):
    at = render(app_env(sample_logs), "pages/models.py")
    assert at.title[0].value == "Models"
    df = at.dataframe[0].value
    assert list(df["version"]) == ["v1", "v2", "v3"]
    assert list(df["status"]) == ["retired", "active", "canary"]
    assert all(v != "–" for v in df["validation accuracy"])
    assert all("labelled" in v for v in df["production accuracy (95%)"])
    assert "v3: production accuracy" in plain(" ".join(w.value for w in at.warning))
    assert "trained 2026-11-05" in texts(at)


def test_models_page_without_a_registry_informs_and_still_lists_versions(app_env, one_version_logs, tmp_path):
    """No models.toml at all is no error: the registry is optional."""
    (tmp_path / "monitoring.toml").write_text("[compare]\nregistry = 'no-such-models.toml'\n")
    at = render(app_env(one_version_logs, MONITORING_CONFIG=tmp_path / "monitoring.toml"), "pages/models.py")
    assert not at.error and not at.warning
    assert "No model registry at" in plain(" ".join(i.value for i in at.info))
    assert list(at.dataframe[0].value["version"]) == ["v1"]
    assert not at.success                   # nothing to agree with: no validation figures


@pytest.mark.parametrize("content, message", [
    ("[versions.v1]\nowner = 'x'\n", "missing fields"),
    ("[versions.v1]\ntrained = 2026-01-01\ntraining_data='d'\ncode_commit='c'\nowner='o'\n"
     "deployed = 2025-01-01\nvalidation = { accuracy = 0.9 }\n", "is before"),
    ("not toml [", "not valid TOML"),
])
def test_models_page_with_a_broken_registry_says_why_and_still_lists_versions(
        app_env, sample_logs, tmp_path, content, message):
    (tmp_path / "models.toml").write_text(content)
    (tmp_path / "monitoring.toml").write_text("[compare]\nregistry = 'models.toml'\n")
    at = render(app_env(sample_logs, MONITORING_CONFIG=tmp_path / "monitoring.toml"), "pages/models.py")
    assert message in plain(" ".join(e.value for e in at.error))
    df = at.dataframe[0].value
    assert list(df["version"]) == ["v1", "v2", "v3"]
    assert "v1, v2, v3" in plain(" ".join(w.value for w in at.warning))    # all unregistered


@pytest.mark.parametrize("drop", [(), ("timestamp", "latency_ms", "status")], ids=["serving", "batch"])
@pytest.mark.parametrize("page", ["pages/compare.py", "pages/models.py"])
def test_pages_on_small_two_version_logs(app_env, tmp_path, page, drop):
    rng = np.random.default_rng(5)
    n = 600
    cols = {"request_id": [f"r{i}" for i in range(n)],
            "timestamp": pa.array([datetime(2026, 11, 1) + timedelta(minutes=i) for i in range(n)], pa.timestamp("us")),
            "model_version": ["<b>a</b>" if i % 3 else "b*" for i in range(n)],
            "latency_ms": rng.lognormal(4.6, 0.4, n), "status": ["ok"] * n,
            "prediction": rng.choice(["x", "y"], n).tolist(), "score": rng.random(n)}
    pq.write_table(pa.table({k: v for k, v in cols.items() if k not in drop}), tmp_path / "l.parquet")
    at = app_env(tmp_path / "l.parquet")
    at.run()
    if "timestamp" not in drop:
        at.sidebar.selectbox(key="range_preset").set_value("All data")
        at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "<b>" not in " ".join(m.value for m in at.markdown)       # log text shown as text


def test_compare_and_models_pages_read_the_store_when_built(app_env, sample_logs, tmp_path):
    """With the store built the page says so in its caption and names the same regression;
    Models lists the same versions with the same labelled counts as the raw engine."""
    import shutil

    from monitoring.compare.versions import fleet
    from tests.rollup_helpers import built_workspace

    logs = tmp_path / "logs"
    shutil.copytree(sample_logs, logs)
    _, ws, store = built_workspace(logs, tmp_path / "data")
    at = render(app_env(logs), "pages/compare.py")
    assert "answered from the rollup store for the window's whole UTC days" in texts(at)
    assert "Rollback signal: roll back v3" in plain(" ".join(e.value for e in at.error))
    at.switch_page("pages/models.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = at.dataframe[0].value
    ws.source.rollups = None                                   # the raw engine's figures
    raw = {r.version: r.labelled for r in fleet(ws).rows}
    for _, row in shown.iterrows():
        n = raw[row["version"]]
        assert (row["production accuracy (95%)"] == "no labels") == (n == 0)
        if n:
            assert f"({n:,} labelled)" in row["production accuracy (95%)"]

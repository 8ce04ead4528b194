"""The drift engine on realistic data: no false alarms on large identical samples, the
incidents injected by the generator flagged at the right time and nothing else, reference
files, chunks, data quality and the [drift] settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring import drift
from monitoring.config import ConfigError, load_config
from monitoring.drift import Reference
from monitoring.drift.settings import load as load_settings
from monitoring.drift.settings import save_reference_window
from monitoring.logs.workspace import open_workspace
from monitoring.query.filters import Filters

DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def gen_ws(generated_logs):
    ws = open_workspace(load_config(overrides={"logs": str(generated_logs)}))
    yield ws
    ws.con.close()


def _default(ws):
    settings = load_settings({})
    ref = drift.resolve_reference(ws.config, settings, ws.extent)
    return ref, drift.default_current(ref, ws.extent), settings


def test_default_reference_is_the_first_week_and_current_what_follows(gen_ws):
    ref, cur, _ = _default(gen_ws)
    assert ref.kind == "window" and ref.origin == "default"
    assert ref.start == datetime(2026, 10, 24, tzinfo=UTC) and ref.end == datetime(2026, 10, 31, tzinfo=UTC)
    assert cur.start == ref.end and cur.end > datetime(2026, 11, 22, 23, tzinfo=UTC)


def test_injected_drifts_and_nothing_else(gen_ws):
    ref, cur, settings = _default(gen_ws)
    result = drift.analyze(gen_ws, ref, cur, settings)
    assert result.message is None
    kinds = {f.name: f.kind for f in result.all}
    assert kinds["num_open_accounts"] == "categorical"  # integer with few values
    assert kinds["age"] == kinds["income"] == "numeric" and kinds["prediction"] == "categorical"
    assert {f.name for f in result.features if f.drifted} == {"income", "device"}
    assert result.score.drifted is False
    assert result.ranked()[0].name == "income"
    # label drift beside prediction drift: the logs' label column, its non-null values counted
    logs = pl.read_parquet(f"{gen_ws.config.logs}/**/*.parquet", hive_partitioning=False)
    in_ref = logs.filter((pl.col("timestamp") >= ref.start) & (pl.col("timestamp") < ref.end))
    assert result.label is not None and result.label.role == "label" and result.label.kind == "categorical"
    assert result.label.n_reference == in_ref["label"].drop_nulls().len()
    for f in result.all:
        if f.role == "label":
            continue
        assert f.n_reference > 9000 and f.n_current > 30000
        assert f.threshold == drift.REGISTRY[f.method].threshold


def test_drift_over_time_flags_each_incident_on_its_days(gen_ws):
    ref, cur, settings = _default(gen_ws)
    result = drift.analyze(gen_ws, ref, cur, settings)
    ot = drift.analyze_over_time(gen_ws, ref, cur, result, settings, "day")
    assert ot.chunks.height == 23 and ot.chunks["rows"].sum() == result.rows_current
    days = ot.scores.join(ot.chunks.select("k", "start"), on="k")
    flagged = {name: sorted(d.date() for d in g["start"].to_list())
               for (name,), g in days.filter(pl.col("drifted")).group_by("name")}
    day = lambda m, d: datetime(2026, m, d).date()  # noqa: E731
    assert flagged["income"] == [day(11, 3) + i * DAY for i in range(20)]       # from 11-03 on
    assert flagged["device"][0] in (day(11, 15), day(11, 16)) and flagged["device"][-1] == day(11, 22)
    assert flagged["prediction"] == [day(11, 19), day(11, 20)]
    assert set(flagged) == {"income", "device", "prediction"}
    assert ot.scores.filter(pl.col("score").is_null() & (pl.col("role") != "label")).height == 0
    # labels arrive two days late (monitoring.sample.profile.LABEL_DELAY): the last two days have none
    assert ot.scores.filter(pl.col("score").is_null()).height == 2


def test_chunks_by_rows_and_by_week(gen_ws):
    ref, cur, settings = _default(gen_ws)
    result = drift.analyze(gen_ws, ref, cur, settings)
    ot = drift.analyze_over_time(gen_ws, ref, cur, result, settings, "rows", chunk_rows=5000)
    assert ot.chunks["rows"].to_list()[:-1] == [5000] * (ot.chunks.height - 1)
    assert ot.chunks["rows"].sum() == result.rows_current
    weeks = drift.analyze_over_time(gen_ws, ref, cur, result, settings, "week")
    assert all(s.weekday() == 0 for s in weeks.chunks["start"].to_list())  # weeks start on Monday


def test_reference_window_equal_to_current_scores_zero(gen_ws):
    settings = load_settings({})
    f = Filters(start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 11, 3, tzinfo=UTC))
    result = drift.analyze(gen_ws, Reference("window", start=f.start, end=f.end), f, settings)
    for feat in result.all:
        assert feat.score == pytest.approx(0.0, abs=1e-12), feat.name


def test_empty_windows_give_a_message(gen_ws):
    settings = load_settings({})
    far = Filters(start=datetime(2030, 1, 1, tzinfo=UTC), end=datetime(2030, 1, 2, tzinfo=UTC))
    ref, _, _ = _default(gen_ws)
    result = drift.analyze(gen_ws, ref, far, settings)
    assert result.features == () and "current window" in result.message and "no rows" in result.message
    result = drift.analyze(gen_ws, Reference("window", start=far.start, end=far.end),
                           Filters(start=ref.start, end=ref.end), settings)
    assert "reference" in result.message


def test_reference_file_without_serving_columns(gen_ws, generated_logs, tmp_path):
    # A "training sample": the features and the prediction of the first week, nothing else.
    train = pl.read_parquet(f"{generated_logs}/**/*.parquet", hive_partitioning=False).filter(
        pl.col("timestamp") < datetime(2026, 10, 31, tzinfo=UTC)).drop(
        "request_id", "timestamp", "latency_ms", "status", "model_version", "score", "label")
    path = tmp_path / "train.parquet"
    train.write_parquet(path)
    _, cur, settings = _default(gen_ws)
    result = drift.analyze(gen_ws, Reference("file", path=str(path)), cur, settings)
    assert result.rows_reference == train.height
    assert {f.name for f in result.features if f.drifted} == {"income", "device"}
    assert result.score.status == "no data"  # the sample has no score column
    assert any("lacks" in w and "score" in w for w in result.warnings)


def _write_logs(path, n, seed, *, shift=0.0, extra=None, start=datetime(2026, 1, 1, tzinfo=UTC)):
    rng = np.random.default_rng(seed)
    cols = {
        "request_id": [f"{seed}-{i}" for i in range(n)],
        "timestamp": pa.array([start + timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 86400 * 10, n))],
                              pa.timestamp("us", tz="UTC")),
        "model_version": ["v1"] * n, "latency_ms": rng.gamma(2, 50, n), "status": ["ok"] * n,
        "prediction": rng.choice(["yes", "no"], n),
        "x_norm": rng.normal(shift, 1, n),
        "x_lognorm": np.exp(rng.normal(10, 0.5, n)),
        "x_int": rng.integers(300, 850, n),
        "x_round": np.round(rng.normal(50, 10, n), 1),
        "c_region": rng.choice(["north", "south", "east", "west"], n),
        "c_flag": rng.random(n) < 0.3,
    }
    cols |= extra or {}
    pq.write_table(pa.table(cols), path, row_group_size=1_000_000)
    return path


@pytest.mark.slow
def test_a_million_rows_from_the_same_distribution_flag_nothing(tmp_path, con):
    from monitoring.drift.windows import file_side, logs_side, open_reference

    n = 1_000_000
    ref_path = _write_logs(tmp_path / "ref.parquet", n, 1)
    cur_path = _write_logs(tmp_path / "cur.parquet", n, 2)
    cfg = load_config(overrides={"logs": str(cur_path)})
    ws = open_workspace(cfg, con=con)
    ref_src = open_reference(str(ref_path), cfg, con)
    cols = drift.windows.columns(ws.source)
    result = drift.compare(con, file_side(ref_src, [c.name for c in cols]),
                           logs_side(ws.source, Filters(), "current"), cols, load_settings({}))
    assert result.rows_reference == result.rows_current == n
    assert [f.name for f in result.all if f.drifted] == []
    for f in result.all:
        assert f.score < f.threshold / 5, (f.name, f.score)  # far from the line, not just under it
        assert f.scores.get("ks", f.scores.get("chisquare")).p_value > 1e-4


def test_all_null_feature_and_type_changes_are_quality_problems(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    n = 2000
    _write_logs(logs / "a.parquet", n, 1, extra={"empty": pa.nulls(n, pa.float64()),
                                                   "mixed": np.arange(n, dtype=np.int64) % 7})
    _write_logs(logs / "b.parquet", n, 2, start=datetime(2026, 1, 11, tzinfo=UTC),
                extra={"empty": pa.nulls(n, pa.float64()), "mixed": np.arange(n, dtype=np.float64) % 7})
    ws = open_workspace(load_config(overrides={"logs": str(logs)}))
    ref, cur, settings = _default(ws)
    result = drift.analyze(ws, ref, cur, settings)
    empty = result.get("empty")
    assert empty.status == "no data" and empty.score is None
    assert "every current value is null" in empty.quality.problems
    mixed = result.get("mixed")
    assert any("type differs between files" in p for p in mixed.quality.problems)
    assert [f.name for f in result.ranked()][-1] == "empty"  # uncomputed last


def test_settings_choose_method_threshold_and_kind(gen_ws):
    settings = load_settings({"features": {"income": {"method": "psi", "threshold": 5.0},
                                           "age": {"kind": "categorical"},
                                           "device": {"threshold": 0.5}}})
    ref, cur, _ = _default(gen_ws)
    result = drift.analyze(gen_ws, ref, cur, settings)
    income, age, device = result.get("income"), result.get("age"), result.get("device")
    assert income.method == "psi" and income.threshold == 5.0 and not income.drifted
    assert income.score == income.scores["psi"].value > 0.25
    assert age.kind == "categorical" and age.method == "jensenshannon"
    assert device.threshold == 0.5 and not device.drifted


def test_fine_bins_above_exact_max_rows_give_the_same_decisions(gen_ws):
    ref, cur, settings = _default(gen_ws)
    exact = drift.analyze(gen_ws, ref, cur, settings)
    approx = drift.analyze(gen_ws, ref, cur, load_settings({"exact_max_rows": 1000}))
    assert [(f.name, f.drifted, f.status) for f in approx.all] == [(f.name, f.drifted, f.status) for f in exact.all]
    for a, e in zip(approx.all, exact.all, strict=True):
        if a.kind == "numeric":
            assert a.reference.merge is not None and e.reference.merge.exact
            assert abs(a.score - e.score) <= (a.error or 0.0) + 1e-9, a.name
            ks_a, ks_e = a.scores["ks"], e.scores["ks"]
            assert 0 <= ks_e.value - ks_a.value <= (ks_a.error or 0.0) + 1e-12, a.name
            assert a.reference.mean == pytest.approx(e.reference.mean) and a.reference.std == pytest.approx(e.reference.std)
        else:
            assert a.score == e.score and a.error is None
    income = approx.get("income")
    assert income.error is not None and income.error < 0.01 and "within ±" in income.accuracy
    assert exact.get("income").error is None and exact.get("income").accuracy == "exact"
    from monitoring.drift.report import feature_json
    assert feature_json(income)["approximate"] is True and feature_json(income)["error_bound"] == income.error
    assert feature_json(exact.get("income"))["approximate"] is False
    assert "error_bound" not in feature_json(exact.get("income"))
    # chunks are scored as before (their merges are exact); only the PSI edges may move
    ot_e = drift.analyze_over_time(gen_ws, ref, cur, exact, settings, "day").scores
    ot_a = drift.analyze_over_time(gen_ws, ref, cur, approx, settings, "day").scores
    assert ot_a["drifted"].to_list() == ot_e["drifted"].to_list()
    assert ot_a["score"].fill_null(-1.0).to_numpy() == pytest.approx(ot_e["score"].fill_null(-1.0).to_numpy(),
                                                                    rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("section, message", [
    ({"features": {"income": {"method": "nope"}}}, "'nope' is not a drift test"),
    ({"numeric_method": "jensenshannon"}, "does not apply to numeric"),
    ({"features": {"income": {"threshold": -1}}}, "positive number"),
    ({"features": {"income": {"colour": "red"}}}, "unknown key .colour."),
    ({"chunk": "fortnight"}, "chunk must be one of"),
    ({"chunk": "rows:0"}, "chunk must be one of"),
    ({"reference_start": "2026-11-01"}, "go together"),
    ({"reference_start": "2026-11-02", "reference_end": "2026-11-01"}, "after"),
    ({"reference_start": "yesterday", "reference_end": "2026-11-01"}, "not an ISO 8601"),
    ({"speed": 3}, "unknown key .speed."),
    ({"exact_max_rows": 0}, "exact_max_rows must be a positive integer"),
])
def test_bad_settings_name_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(section)


def test_save_reference_window_keeps_the_rest_of_the_file(tmp_path):
    path = tmp_path / "monitoring.toml"
    original = ('# my settings\nlogs = "x/"\n\n[slo]\np95_latency_ms = 900  # tight\n\n'
                '[drift.features.income]\nmethod = "psi"\n')
    path.write_text(original)
    start, end = datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)
    save_reference_window(path, start, end)
    text = path.read_text()
    assert text.startswith(original)
    settings = load_settings(load_config(str(path)).section("drift"))
    assert (settings.reference_start, settings.reference_end) == (start, end)
    assert settings.feature("income").method == "psi"
    later = start + DAY
    save_reference_window(path, later, end)  # replaces, does not duplicate
    assert path.read_text().count("reference_start") == 1
    assert load_settings(load_config(str(path)).section("drift")).reference_start == later
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    bad = tmp_path / "bad.toml"
    bad.write_text("[drift\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        save_reference_window(bad, start, end)
    assert bad.read_text() == "[drift\n"


def test_distribution_shares(gen_ws):
    ref, cur, settings = _default(gen_ws)
    result = drift.analyze(gen_ws, ref, cur, settings)
    p = drift.plan(gen_ws, ref, cur)
    for name in ("income", "device"):
        d = drift.distribution(gen_ws.con, p.reference, p.current, result.get(name))
        assert d["reference"].sum() == pytest.approx(1.0) and d["current"].sum() == pytest.approx(1.0)
    dev = drift.distribution(gen_ws.con, p.reference, p.current, result.get("device"))
    shares = dict(zip(dev["bin"], dev["current"], strict=True))
    assert shares["android"] > 0.4  # 30% before 11-15 12:00, 65% after


def test_monitoring_never_imports_streamlit():
    import subprocess
    import sys

    code = "import sys, monitoring.drift, monitoring.drift.charts, monitoring.drift.report; " \
           "print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

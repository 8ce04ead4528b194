"""Logs as users write them (issue: any real log, on any machine): each case under the
issue's "Why" as a row of a table, with the correct result or one clear sentence.

Oracles are hand counts and numpy over the very rows written."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.config import load_config
from monitoring.logs.health import check_health
from monitoring.logs.source import LogSourceError
from monitoring.logs.workspace import open_workspace
from monitoring.metrics import service as metrics
from monitoring.query.filters import Filters, extent

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 1, 12, 0)


def table(n: int, start: int = 0, **over) -> pa.Table:
    cols = {
        "request_id": [f"r{start + i}" for i in range(n)],
        "timestamp": pa.array([T0 + timedelta(minutes=start + i) for i in range(n)], pa.timestamp("us")),
        "model_version": ["v1"] * n,
        "latency_ms": [100.0 + i for i in range(n)],
        "status": ["ok"] * n,
        "prediction": ["a"] * n,
    }
    for k, v in over.items():
        if v is None:
            cols.pop(k)
        else:
            cols[k] = v
    return pa.table(cols)


def open_ws(path, toml: str = "", tmp=None):
    cfg_path = None
    if toml:
        cfg_path = Path(tmp or path) / "monitoring.toml"
        cfg_path.write_text(toml)
    return open_workspace(load_config(str(cfg_path) if cfg_path else None), logs=str(path))


def count(ws, where: str = "TRUE") -> int:
    return int(ws.source.query(ws.con, f"SELECT count(*) AS n FROM logs WHERE {where}")["n"][0])


# -- time ---------------------------------------------------------------------------------------

def test_naive_and_aware_files_agree_with_numpy_under_any_zone(tmp_path):
    """Mixed naive-UTC and zone-aware files, `stats`-style hourly buckets checked against
    numpy in a child process for several machine zones."""
    rng = np.random.default_rng(3)
    n = 600
    ts = [datetime(2026, 11, 1) + timedelta(minutes=float(m)) for m in np.sort(rng.uniform(0, 24 * 60, n))]
    lat = rng.lognormal(5, 0.5, n)
    half = n // 2
    pq.write_table(table(half, timestamp=pa.array(ts[:half], pa.timestamp("us")),
                         latency_ms=lat[:half], request_id=[f"a{i}" for i in range(half)]),
                   tmp_path / "naive.parquet")
    aware = [t.replace(tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Kolkata")) for t in ts[half:]]
    pq.write_table(table(n - half, timestamp=pa.array(aware, pa.timestamp("us", tz="Asia/Kolkata")),
                         latency_ms=lat[half:], request_id=[f"b{i}" for i in range(n - half)]),
                   tmp_path / "aware.parquet")
    hours = np.array([t.hour for t in ts])
    expected = {h: (int((hours == h).sum()), float(np.percentile(lat[hours == h], 95))) for h in range(24)}
    code = (
        "import json, sys\n"
        "from datetime import datetime, UTC\n"
        "from monitoring.config import load_config\n"
        "from monitoring.logs.workspace import open_workspace\n"
        "from monitoring.query.filters import Filters\n"
        "from monitoring.metrics import service as metrics\n"
        "ws = open_workspace(load_config(overrides={'data_dir': sys.argv[2]}), logs=sys.argv[1])\n"
        "f = Filters(start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 11, 2, tzinfo=UTC))\n"
        "s = metrics.summarize(ws.source, ws.con, f, 'hour')\n"
        "print(json.dumps([[t.hour, r, p] for t, r, p in s.buckets.select('time', 'requests', 'p95').iter_rows()]))\n"
    )
    for zone in ("America/New_York", "Asia/Tokyo", "UTC"):
        env = {**os.environ, "TZ": zone}
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / f"data-{zone[:4]}")],
                             capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
        assert out.returncode == 0, out.stderr
        got = {h: (r, p) for h, r, p in __import__("json").loads(out.stdout)}
        assert sum(r for r, _ in got.values()) == n, zone
        for h, (r, p) in got.items():
            assert r == expected[h][0], (zone, h)
            assert p == pytest.approx(expected[h][1], rel=1e-12), (zone, h)


def test_times_before_1970_land_in_their_own_bucket(tmp_path):
    ts = [datetime(1969, 12, 31, 23, 30), datetime(1969, 12, 31, 23, 59), datetime(1970, 1, 1, 0, 10)]
    pq.write_table(table(3, timestamp=pa.array(ts, pa.timestamp("us"))), tmp_path / "a.parquet")
    ws = open_ws(tmp_path)
    f = Filters(start=datetime(1969, 12, 31, 23, tzinfo=UTC), end=datetime(1970, 1, 1, 1, tzinfo=UTC))
    s = metrics.summarize(ws.source, ws.con, f, "hour")
    got = {t.isoformat(): r for t, r in s.buckets.select("time", "requests").iter_rows()}
    assert got == {"1969-12-31T23:00:00+00:00": 2, "1970-01-01T00:00:00+00:00": 1}


@pytest.mark.parametrize("values, arrow_type, unit, expected_first", [
    (["2026-11-01", "2026-11-02"], pa.date32(), None, datetime(2026, 11, 1, tzinfo=UTC)),
    (["2026-11-01T12:00:00", "2026-11-01T13:00:00+01:00"], pa.string(), None, datetime(2026, 11, 1, 12, tzinfo=UTC)),
    ([1_793_534_400, 1_793_538_000], pa.int64(), "s", datetime.fromtimestamp(1_793_534_400, UTC)),
    ([1_793_534_400_000, 1_793_538_000_000], pa.int64(), "ms", datetime.fromtimestamp(1_793_534_400, UTC)),
    ([1_793_534_400_000_000, 1_793_538_000_000_000], pa.int64(), "us", datetime.fromtimestamp(1_793_534_400, UTC)),
    ([1_793_534_400.5, 1_793_538_000.0], pa.float64(), "s", datetime.fromtimestamp(1_793_534_400.5, UTC)),
])
def test_timestamp_as_date_text_or_epoch(tmp_path, values, arrow_type, unit, expected_first):
    if arrow_type == pa.date32():
        arr = pa.array([datetime.fromisoformat(v).date() for v in values], arrow_type)
    else:
        arr = pa.array(values, arrow_type)
    pq.write_table(table(2, timestamp=arr), tmp_path / "a.parquet")
    toml = f'[columns]\ntimestamp_unit = "{unit}"\n' if unit else ""
    ws = open_ws(tmp_path / "a.parquet", toml, tmp=tmp_path)
    assert ws.extent.rows == 2 and ws.extent.first == expected_first


def test_epoch_numbers_without_a_unit_get_one_sentence(tmp_path):
    pq.write_table(table(2, timestamp=pa.array([1, 2], pa.int64())), tmp_path / "a.parquet")
    with pytest.raises(LogSourceError, match='timestamp_unit = "s", "ms", "us" or "ns"'):
        open_ws(tmp_path)


def test_unparsable_timestamps_are_counted_apart_from_missing_ones(tmp_path):
    pq.write_table(table(4, timestamp=pa.array(["2026-11-01T00:00:00", "yesterday", None, "2026-11-01T00:05:00"])),
                   tmp_path / "a.parquet")
    ws = open_ws(tmp_path)
    assert ws.health.invalid == {"unparsable_timestamp": 1, "missing_timestamp": 1}
    assert ws.health.valid_rows == 2


# -- batch logs -----------------------------------------------------------------------------------

def test_batch_log_with_only_features_and_a_prediction(tmp_path):
    pq.write_table(pa.table({"age": [30, 40, 50], "prediction": [1, 0, 1]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"age": [60, 70], "prediction": [0, 0]}), tmp_path / "b.parquet")
    ws = open_ws(tmp_path)
    assert ws.health.valid_rows == 5 and not ws.health.invalid
    df = ws.source.query(ws.con, 'SELECT request_id, model_version, latency_ms, is_error, "f:age" AS age '
                                 "FROM logs ORDER BY row_seq")
    assert df["age"].to_list() == [30, 40, 50, 60, 70]           # file order, then row
    assert df["model_version"].unique().to_list() == ["default"]  # one version
    assert df["request_id"].n_unique() == 5                       # derived from file and row
    assert df["latency_ms"].null_count() == 5 and not df["is_error"].any()
    assert ws.extent.first is None and not ws.source.has_time
    for col in ("latency_ms", "status", "timestamp"):
        assert "monitoring.toml" in ws.source.missing(col)


# -- nothing silently lost or overridden --------------------------------------------------------------

def test_hive_directory_never_overrides_a_file_column(tmp_path):
    (tmp_path / "status=ok" / "model_version=v9").mkdir(parents=True)
    pq.write_table(table(3, status=["500", "ok", "404"]), tmp_path / "status=ok" / "model_version=v9" / "p.parquet")
    ws = open_ws(tmp_path)
    errors = int(ws.source.query(ws.con, "SELECT count_if(is_error) AS e FROM logs")["e"][0])
    assert errors == 2
    assert ws.extent.model_versions == ("v1",)
    assert any("status=" in w and "ignored" in w for w in ws.source.warnings)


def test_hive_directory_supplies_a_column_the_files_lack(tmp_path):
    for v in ("v1", "v2"):
        (tmp_path / f"model_version={v}").mkdir()
        pq.write_table(table(2, model_version=None, request_id=[f"{v}-{i}" for i in range(2)]),
                       tmp_path / f"model_version={v}" / "p.parquet")
    ws = open_ws(tmp_path)
    assert ws.extent.model_versions == ("v1", "v2")


@pytest.mark.parametrize("name", ["ts", "ts_us", "is_error", "row_seq", "__mw_file", "f:ts"])
def test_features_named_like_internal_columns_keep_their_values(tmp_path, name):
    pq.write_table(table(4, **{name: [7.0, 8.0, 9.0, 10.0]}), tmp_path / "a.parquet")
    ws = open_ws(tmp_path)
    f = ws.source.feature(name)
    assert f is not None and f.kind == "numeric"
    got = ws.source.query(ws.con, f"SELECT sum({f.col}) AS s, count_if(is_error) AS e FROM logs")
    assert got["s"][0] == 34.0 and got["e"][0] == 0
    if name == "ts":
        assert ws.extent.rows == 4 and ws.extent.first == T0.replace(tzinfo=UTC)


def test_a_feature_may_share_a_canonical_name_mapped_elsewhere(tmp_path):
    pq.write_table(table(3, prediction=None, y_pred=["a", "b", "a"], label=[1.0, 2.0, 3.0]),
                   tmp_path / "a.parquet")
    ws = open_ws(tmp_path / "a.parquet", '[columns]\nprediction = "y_pred"\nlabel = "truth"\n', tmp=tmp_path)
    got = ws.source.query(ws.con, f"SELECT string_agg(prediction, '') AS p, sum({ws.source.feature('label').col}) AS l "
                                  "FROM logs")
    assert got.row(0) == ("aba", 6.0)


def test_struct_fields_of_any_name_and_nested_ones(tmp_path):
    feats = pa.array([{"a b": 1, "c,d": "x", 'q"t': 2.5, "inner": {"deep": 3}, "tags": [1]},
                      {"a b": 2, "c,d": "y", 'q"t': 3.5, "inner": {"deep": 4}, "tags": [2]}])
    meta = pa.array([{"region": "eu"}, {"region": "us"}])
    pq.write_table(table(2).append_column("features", feats).append_column("meta", meta), tmp_path / "a.parquet")
    ws = open_ws(tmp_path)
    kinds = {f.name: f.kind for f in ws.source.features}
    assert kinds == {"a b": "numeric", "c,d": "categorical", 'q"t': "numeric", "inner.deep": "numeric",
                     "meta.region": "categorical"}
    cols = ", ".join(f"sum(CAST({f.col} AS DOUBLE)) AS c{i}" for i, f in enumerate(ws.source.features)
                     if f.kind == "numeric")
    got = ws.source.query(ws.con, f"SELECT {cols} FROM logs").row(0)
    assert got == (3.0, 6.0, 7.0)
    assert ("features.tags", ) == tuple(n for n, _ in ws.source.ignored if "tags" in n)


def test_null_endpoint_is_its_own_group_with_percentiles(tmp_path):
    pq.write_table(table(4, endpoint=["/a", None, None, "/a"], latency_ms=[10.0, 20.0, 30.0, 40.0]),
                   tmp_path / "a.parquet")
    ws = open_ws(tmp_path)
    f = Filters(start=T0.replace(tzinfo=UTC), end=(T0 + timedelta(hours=1)).replace(tzinfo=UTC))
    df = metrics.by_dimension(ws.source, ws.con, f, "endpoint")
    got = {r["key"]: (r["requests"], r["p50"]) for r in df.iter_rows(named=True)}
    assert got == {"/a": (2, 25.0), "(none)": (2, 25.0)}
    assert "(none)" in extent(ws.source, ws.con).endpoints


def test_symlink_loop_is_read_once(tmp_path):
    (tmp_path / "d").mkdir()
    pq.write_table(table(3), tmp_path / "d" / "a.parquet")
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    os.symlink(tmp_path / "d" / "a.parquet", tmp_path / "d" / "same.parquet")
    ws = open_ws(tmp_path / "d")
    assert len(ws.source.files) == 1 and ws.health.valid_rows == 3


def test_a_feature_whose_type_differs_across_files_is_warned_about(tmp_path):
    pq.write_table(table(2, size=[1, 2]), tmp_path / "a.parquet")
    pq.write_table(table(2, start=5, size=["big", "small"]), tmp_path / "b.parquet")
    ws = open_ws(tmp_path)
    assert any("'size' changes type across files" in w for w in ws.source.warnings)
    assert ws.source.feature("size").kind == "categorical"


def test_every_ignored_column_is_listed_with_its_reason(tmp_path):
    pq.write_table(table(2, blob=pa.array([b"x", b"y"]), empty=pa.array([None, None], pa.null()),
                         nums=pa.array([[1], [2]])), tmp_path / "a.parquet")
    ws = open_ws(tmp_path)
    reasons = dict(ws.source.ignored)
    assert set(reasons) == {"blob", "empty", "nums"}
    assert "null" in reasons["empty"] and "not a feature type" in reasons["nums"]


def test_stats_reports_invalid_rows_outside_the_window(tmp_path):
    bad = table(3, start=600, latency_ms=[-1.0, float("nan"), 5.0])   # ten hours later
    pq.write_table(table(5), tmp_path / "a.parquet")
    pq.write_table(bad, tmp_path / "b.parquet")
    out = subprocess.run([sys.executable, "-m", "monitoring", "stats", "--logs", str(tmp_path),
                          "--start", "2026-11-01T12:00Z", "--end", "2026-11-01T13:00Z", "--format", "json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "MONITORING_DATA_DIR": str(tmp_path / "data")})
    assert out.returncode == 0, out.stderr
    data = __import__("json").loads(out.stdout)
    assert data["rows"] == 5
    assert data["invalid_rows_all_logs"] == {"negative_latency": 1, "missing_latency": 1}


def test_health_counts_every_row(tmp_path):
    pq.write_table(table(5, latency_ms=[1.0, -1.0, float("inf"), None, 2.0]), tmp_path / "a.parquet")
    h = check_health(open_ws(tmp_path).source, open_ws(tmp_path).con)
    assert h.total_rows == 5 and h.valid_rows == 2
    assert h.invalid == {"negative_latency": 1, "infinite_latency": 1, "missing_latency": 1}


def test_a_queue_can_be_drawn_when_features_take_internal_names(tmp_path):
    from monitoring.labelling import db, queues
    from monitoring.labelling.sampling import QueueSpec

    pq.write_table(table(30, ts=[float(i) for i in range(30)], is_error=["x"] * 30), tmp_path / "a.parquet")
    ws = open_ws(tmp_path)
    engine = db.open_db(f"sqlite:///{tmp_path / 'q.sqlite'}")
    qid = queues.create_queue(engine, ws.source, ws.con, QueueSpec(size=10, seed=2**31))
    item = queues.claim_next(engine, qid, "ana")
    assert set(item.inputs) == {"ts", "is_error"} and item.inputs["is_error"] == "x"

"""The log source on good and broken inputs: each problem named, nothing else lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.config import load_config
from monitoring.logs.health import INVALID_REASONS, check_health
from monitoring.logs.source import LogSourceError, open_source, resolve_paths
from monitoring.logs.workspace import open_workspace
from monitoring.query.filters import extent

T0 = datetime(2026, 11, 1, 12, 0)


def rows(n: int, start: int = 0, **over) -> pa.Table:
    """n valid rows, one a minute from T0 (naive UTC); columns may be overridden or removed."""
    cols = {
        "request_id": [f"r{start + i}" for i in range(n)],
        "timestamp": pa.array([T0 + timedelta(minutes=start + i) for i in range(n)], pa.timestamp("us")),
        "model_version": ["v1"] * n,
        "endpoint": ["/p"] * n,
        "latency_ms": [100.0 + i for i in range(n)],
        "status": ["ok"] * n,
        "prediction": ["a"] * n,
        "color": ["red"] * n,
    }
    for k, v in over.items():
        if v is None:
            cols.pop(k)
        else:
            cols[k] = v
    return pa.table(cols)


def ws_for(path, **cfg_over):
    return open_workspace(load_config(overrides=cfg_over), logs=str(path))


def valid_count(ws) -> int:
    return int(ws.source.query(ws.con, "SELECT count(*) AS n FROM logs")["n"][0])


def test_directory_glob_and_file_paths(tmp_path):
    (tmp_path / "d" / "date=2026-11-01").mkdir(parents=True)
    pq.write_table(rows(5), tmp_path / "d" / "date=2026-11-01" / "part-0.parquet")
    (tmp_path / "d" / "README.md").write_text("not a log")
    assert len(resolve_paths(str(tmp_path / "d"))) == 1
    assert len(resolve_paths(str(tmp_path / "d" / "**" / "*.parquet"))) == 1
    ws = ws_for(tmp_path / "d")
    assert ws.source.hive and valid_count(ws) == 5
    # A Hive partition key is not a feature.
    assert [f.name for f in ws.source.features] == ["color"]
    with pytest.raises(LogSourceError, match="no such file"):
        resolve_paths(str(tmp_path / "missing"))
    with pytest.raises(LogSourceError, match="no files match"):
        resolve_paths(str(tmp_path / "*.nothing"))


def test_not_parquet_and_truncated_files_are_named_and_others_load(tmp_path):
    pq.write_table(rows(10), tmp_path / "good.parquet")
    (tmp_path / "text.parquet").write_text("request_id,timestamp\nx,y\n")
    data = (tmp_path / "good.parquet").read_bytes()
    (tmp_path / "truncated.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty-bytes.parquet").write_bytes(b"")
    ws = ws_for(tmp_path)
    bad = {b.path.rsplit("/", 1)[-1]: b.reason for b in ws.source.bad_files}
    assert set(bad) == {"text.parquet", "truncated.parquet", "empty-bytes.parquet"}
    assert all("Parquet" in r for r in bad.values())
    assert valid_count(ws) == 10


def test_only_broken_files_is_one_clear_error(tmp_path):
    (tmp_path / "x.parquet").write_text("nope")
    with pytest.raises(LogSourceError, match="no readable log files"):
        ws_for(tmp_path)


def test_a_log_without_latency_opens_and_says_what_is_missing(tmp_path):
    pq.write_table(rows(3, latency_ms=None), tmp_path / "a.parquet")
    ws = ws_for(tmp_path)
    assert valid_count(ws) == 3
    sentence = ws.source.missing("latency_ms")
    assert "latency_ms" in sentence and "[columns]" in sentence
    assert ws.source.missing("status", "timestamp") is None


def test_missing_required_column_in_one_file_counts_its_rows_invalid(tmp_path):
    pq.write_table(rows(4), tmp_path / "a.parquet")
    pq.write_table(rows(3, start=10, latency_ms=None), tmp_path / "b.parquet")
    ws = ws_for(tmp_path)
    assert any("latency_ms" in w and "b.parquet" in w for w in ws.source.warnings)
    h = check_health(ws.source, ws.con)
    assert h.total_rows == 7 and h.valid_rows == 4
    assert h.invalid == {"missing_latency": 3}


def test_wrong_type_file_is_named(tmp_path):
    pq.write_table(rows(4), tmp_path / "a.parquet")
    pq.write_table(rows(2, start=10, latency_ms=pa.array([[1], [2]])), tmp_path / "b.parquet")
    ws = ws_for(tmp_path)
    assert [b.path.endswith("b.parquet") for b in ws.source.bad_files] == [True]
    assert "latency_ms" in ws.source.bad_files[0].reason
    assert valid_count(ws) == 4


def test_latency_as_text_reads_numbers_and_counts_the_rest(tmp_path):
    pq.write_table(rows(3, latency_ms=["12.5", "abc", "7"]), tmp_path / "a.parquet")
    ws = ws_for(tmp_path)
    assert valid_count(ws) == 2
    assert check_health(ws.source, ws.con).invalid == {"missing_latency": 1}


def test_bad_latencies_and_timestamps_counted_by_reason(tmp_path):
    lat = [100.0, float("nan"), -5.0, float("inf"), None, 50.0, 60.0]
    ts = [T0 + timedelta(minutes=i) for i in range(7)]
    ts[5] = None
    rid = [f"r{i}" for i in range(7)]
    rid[6] = None
    pq.write_table(rows(7, latency_ms=pa.array(lat, pa.float64()),
                        timestamp=pa.array(ts, pa.timestamp("us")), request_id=rid), tmp_path / "a.parquet")
    ws = ws_for(tmp_path)
    h = check_health(ws.source, ws.con)
    assert h.invalid == {"missing_latency": 2, "negative_latency": 1, "infinite_latency": 1,
                         "missing_timestamp": 1, "missing_request_id": 1}
    assert h.valid_rows == 1 and h.total_rows == 7
    assert valid_count(ws) == 1


def test_naive_and_aware_timestamps_mix_across_files(tmp_path):
    pq.write_table(rows(1), tmp_path / "naive.parquet")
    aware = pa.array([datetime(2026, 11, 1, 17, 30, tzinfo=UTC).astimezone()], pa.timestamp("ms", tz="Asia/Kolkata"))
    pq.write_table(rows(1, start=5, timestamp=aware), tmp_path / "aware.parquet")
    ws = ws_for(tmp_path)
    ext = extent(ws.source, ws.con)
    assert ext.first == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert ext.last == datetime(2026, 11, 1, 17, 30, tzinfo=UTC)


def test_empty_file_and_single_row(tmp_path):
    pq.write_table(rows(0), tmp_path / "empty.parquet")
    pq.write_table(rows(1), tmp_path / "one.parquet")
    ws = ws_for(tmp_path)
    assert ws.source.bad_files == [] and valid_count(ws) == 1


def test_duplicate_request_ids_are_counted_once_and_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("MONITORING_DATA_DIR", str(tmp_path / "data"))
    tmp_path = tmp_path / "logs"
    tmp_path.mkdir()
    pq.write_table(rows(5), tmp_path / "a.parquet")
    pq.write_table(rows(3, start=3), tmp_path / "b.parquet")  # r3, r4 again, r5 new
    pq.write_table(rows(2, start=3), tmp_path / "c.parquet")  # r3, r4 a third time
    ws = ws_for(tmp_path)
    assert ws.duplicates == 4
    assert valid_count(ws) == 6
    h = check_health(ws.source, ws.con)
    assert h.invalid_rows["duplicate_request_id"] == 4
    assert h.valid_rows == 6
    # A second open of the same files takes the check from the cache, with the same result.
    again = ws_for(tmp_path)
    assert again.duplicates == 4 and valid_count(again) == 6
    assert any(p.suffix == ".parquet" for p in (tmp_path.parent / "data" / "cache").glob("dups-*"))


def test_hostile_strings_are_data(tmp_path):
    hostile = ["<script>alert(1)</script>", "'; DROP TABLE logs; --", 'a"b', "$start", "ünï"]
    n = len(hostile)
    pq.write_table(rows(n, model_version=hostile, endpoint=hostile, color=hostile), tmp_path / "a.parquet")
    ws = ws_for(tmp_path)
    ext = extent(ws.source, ws.con)
    assert set(ext.model_versions) == set(hostile)
    from monitoring.metrics import service as metrics
    from monitoring.query.filters import Filters

    f = Filters(start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 11, 2, tzinfo=UTC),
                model_versions=("'; DROP TABLE logs; --",))
    s = metrics.summarize(ws.source, ws.con, f, "hour")
    assert s.window.requests == 1


def test_integer_http_status_codes(tmp_path):
    pq.write_table(rows(4, status=pa.array([200, 201, 404, 503], pa.int32())), tmp_path / "a.parquet")
    ws = ws_for(tmp_path)
    df = ws.source.query(ws.con, "SELECT count_if(is_error) AS e FROM logs")
    assert df["e"][0] == 2


def test_text_status_variants(tmp_path):
    pq.write_table(rows(5, status=["OK", "ok", " Ok ", "error", "500"]), tmp_path / "a.parquet")
    ws = ws_for(tmp_path)
    df = ws.source.query(ws.con, "SELECT count_if(is_error) AS e FROM logs")
    assert df["e"][0] == 2


def test_column_mapping_from_toml(tmp_path, monkeypatch):
    t = rows(3).rename_columns(["id", "when", "ver", "endpoint", "ms", "result", "prediction", "color"])
    pq.write_table(t, tmp_path / "a.parquet")
    toml = tmp_path / "monitoring.toml"
    toml.write_text('[columns]\nrequest_id = "id"\ntimestamp = "when"\nmodel_version = "ver"\n'
                    'latency_ms = "ms"\nstatus = "result"\n')
    monkeypatch.setenv("MONITORING_CONFIG", str(toml))
    ws = ws_for(tmp_path / "a.parquet")
    assert valid_count(ws) == 3
    assert [f.name for f in ws.source.features] == ["color"]


def test_struct_features_are_expanded(tmp_path):
    feats = pa.array([{"age": 30, "city": "x"}, {"age": 40, "city": "y"}])
    pq.write_table(rows(2, color=None).append_column("features", feats), tmp_path / "a.parquet")
    ws = ws_for(tmp_path)
    kinds = {f.name: f.kind for f in ws.source.features}
    assert kinds == {"age": "numeric", "city": "categorical"}
    df = ws.source.query(ws.con, 'SELECT sum("f:age") AS s FROM logs')
    assert df["s"][0] == 70


def test_files_differ_in_column_order_and_extra_columns(tmp_path):
    a = rows(2)
    b = rows(2, start=5).select(["status", "latency_ms", "timestamp", "request_id", "model_version",
                                "prediction", "endpoint"]).append_column("extra", pa.array([1.5, 2.5]))
    pq.write_table(a, tmp_path / "a.parquet")
    pq.write_table(b, tmp_path / "b.parquet")
    ws = ws_for(tmp_path)
    assert valid_count(ws) == 4
    assert {f.name for f in ws.source.features} == {"color", "extra"}


def test_reference_mode_needs_no_serving_columns(tmp_path, con):
    pq.write_table(pa.table({"income": np.arange(5.0), "device": ["a"] * 5}), tmp_path / "ref.parquet")
    src = open_source(str(tmp_path / "ref.parquet"), load_config(), con, reference=True)
    assert [f.name for f in src.features] == ["income", "device"]
    assert src.query(con, "SELECT count(*) AS n FROM raw_logs", raw=True)["n"][0] == 5


CONTRACT_CASES = [
    # (column, bad value, reason the health check must give)
    ("timestamp", pa.array([None], pa.timestamp("us")), "missing_timestamp"),
    ("timestamp", pa.array(["not a time"]), "unparsable_timestamp"),
    ("request_id", pa.array([None], pa.string()), "missing_request_id"),
    ("latency_ms", pa.array([None], pa.float64()), "missing_latency"),
    ("latency_ms", pa.array([float("nan")]), "missing_latency"),
    ("latency_ms", pa.array([float("-inf")]), "infinite_latency"),
    ("latency_ms", pa.array([-0.5]), "negative_latency"),
    ("status", pa.array([None], pa.string()), "missing_status"),
    ("model_version", pa.array([None], pa.string()), "missing_model_version"),
]


@pytest.mark.parametrize("column,bad,reason", CONTRACT_CASES)
def test_view_drops_exactly_the_rows_the_health_check_names(tmp_path, column, bad, reason):
    """One rule list: the `logs` view keeps a row exactly when the health check calls it valid."""
    good = rows(4)
    if column == "timestamp" and pa.types.is_string(bad.type):
        good = good.set_column(good.schema.get_field_index("timestamp"), "timestamp",
                               pa.array([str(t) for t in good["timestamp"].to_pylist()]))
    pq.write_table(good, tmp_path / "good.parquet")
    one = rows(1, start=10).to_pylist()[0]
    bad_row = {k: [v] for k, v in one.items()}
    bad_row[column] = bad
    bad_table = pa.table({k: (v if isinstance(v, pa.Array) else pa.array(v, good.schema.field(k).type))
                          for k, v in bad_row.items()})
    pq.write_table(bad_table, tmp_path / "bad.parquet")
    ws = ws_for(tmp_path)
    h = check_health(ws.source, ws.con)
    assert h.invalid == {reason: 1}
    assert h.valid_rows == valid_count(ws) == 4
    # Every rule has the sentence the pages and `stats` show for it.
    assert {r for r, _ in INVALID_REASONS} >= {r for r, _, _ in ws.source.contract_rules()}

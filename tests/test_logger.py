"""monitoring.logger: rows in the log contract, checked by the source itself and by hand counts."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.config import CANONICAL_COLUMNS, load_config
from monitoring.logger import PredictionLogger, current_request
from monitoring.logger.ids import id_millis, new_id
from monitoring.logger.schema import RESERVED
from monitoring.reports.stats import stats_report
from tests.logger_helpers import health_of, read_rows, visible_files

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


def quiet_logger(path, **kw) -> PredictionLogger:
    """A logger that writes only when asked (flush/close), so tests decide the files."""
    kw.setdefault("flush_rows", 10**9)
    kw.setdefault("flush_seconds", 10**6)
    return PredictionLogger(path, "credit", "v1", install_signal_handler=False, **kw)


# -- the log contract ----------------------------------------------------------------------

# (endpoint, status, latency ms) per request: a table a person can count by hand.
REQUESTS = ([("/v1/predict", "ok", 10.0 + i) for i in range(40)]
            + [("/v1/predict", "error", 500.0)] * 3
            + [("/v2/predict", "ok", 100.0 + 2 * i) for i in range(17)]
            + [("/v2/predict", "error", 1.0)] * 2)


def write_known_requests(path) -> None:
    with quiet_logger(path) as lg:
        for i, (endpoint, status, latency) in enumerate(REQUESTS):
            # Two hours around midnight: the rows land in two date partitions.
            lg.log(prediction=i % 2, score=0.25 + (i % 3) / 10, latency_ms=latency, status=status,
                   endpoint=endpoint, error_type=None if status == "ok" else "timeout",
                   features={"age": 20 + i % 50, "income": 1000.5 * i, "region": "abc"[i % 3]},
                   timestamp=T0 + timedelta(minutes=2 * i))
            if i == 30:
                lg.flush()


def test_written_logs_pass_the_source_checks_with_no_invalid_row(tmp_path):
    write_known_requests(tmp_path / "logs")
    ws, health = health_of(tmp_path / "logs", tmp_path / "data")
    assert health.total_rows == len(REQUESTS)
    assert health.valid_rows == len(REQUESTS)
    assert health.invalid_rows == {}
    assert health.bad_files == [] and health.warnings == []
    assert {f.name for f in ws.source.features} == {"age", "income", "region"}
    days = {Path(f).parent.name for f in ws.source.files}
    assert days == {"date=2026-11-30", "date=2026-12-01"}


def test_stats_equal_the_counts_the_test_made(tmp_path):
    write_known_requests(tmp_path / "logs")
    cfg = load_config(overrides={"logs": str(tmp_path / "logs"), "data_dir": str(tmp_path / "data")})
    report = stats_report(cfg)
    ok = [lat for _, status, lat in REQUESTS if status == "ok"]
    errors = sum(status == "error" for _, status, _ in REQUESTS)
    assert report["rows"] == len(REQUESTS)
    assert report["errors"] == errors
    assert report["error_rate"] == pytest.approx(errors / len(REQUESTS))
    for q in (50, 95, 99):
        assert report["latency_ms"][f"p{q}"] == pytest.approx(np.percentile(ok, q))
    assert report["invalid_rows"] == {}
    per_endpoint = stats_report(cfg, endpoints=("/v2/predict",))
    assert per_endpoint["rows"] == sum(e == "/v2/predict" for e, _, _ in REQUESTS)


def test_columns_have_the_contract_types(tmp_path):
    write_known_requests(tmp_path / "logs")
    for f in visible_files(tmp_path / "logs"):
        schema = pq.read_schema(f)
        assert schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
        for name in ("request_id", "model_name", "model_version", "endpoint", "status", "error_type"):
            assert schema.field(name).type == pa.string(), name
        assert schema.field("latency_ms").type == pa.float64()
        assert schema.field("score").type == pa.float64()
        # Each file is sorted by time and lies in the partition of its own day.
        ts = pq.read_table(f, columns=["timestamp"])["timestamp"].to_pylist()
        assert ts == sorted(ts)
        assert {t.strftime("date=%Y-%m-%d") for t in ts} == {Path(f).parent.name}


def test_request_block_records_latency_status_and_the_exception_class(tmp_path):
    lg = quiet_logger(tmp_path)
    with lg.request(endpoint="/p", features={"x": 1}) as r:
        r.prediction, r.score = "yes", 0.9
        assert current_request() is r
    with pytest.raises(ZeroDivisionError), lg.request(endpoint="/p", features={"x": 2}) as r2:
        r2.prediction = "no"
        1 / 0  # noqa: B018
    assert current_request() is None
    lg.close()
    rows = sorted(read_rows(tmp_path).to_pylist(), key=lambda r: r["x"])
    assert [(r["status"], r["error_type"], r["prediction"]) for r in rows] == [
        ("ok", None, "yes"), ("error", "ZeroDivisionError", "no")]
    assert rows[0]["request_id"] == r.request_id and rows[1]["request_id"] == r2.request_id
    assert all(row["latency_ms"] >= 0 for row in rows)


def test_decorator_logs_calls_of_a_plain_function(tmp_path):
    lg = quiet_logger(tmp_path)

    @lg.logged(endpoint="score", score=lambda out: out[1], prediction=lambda out: out[0])
    def predict(row):
        if row["x"] < 0:
            raise ValueError("negative")
        return ("high" if row["x"] > 5 else "low"), row["x"] / 10

    @lg.logged()
    def plain(a, b):
        current_request().score = 0.5
        return a + b

    assert predict({"x": 7}) == ("high", 0.7)
    with pytest.raises(ValueError):
        predict({"x": -1})
    assert plain(a=1, b=2) == 3
    lg.close()
    rows = read_rows(tmp_path).to_pylist()
    by = {(r["endpoint"], r.get("x"), r.get("a")): r for r in rows}
    assert by[("score", 7, None)]["prediction"] == "high" and by[("score", 7, None)]["score"] == 0.7
    assert by[("score", -1, None)]["error_type"] == "ValueError"
    assert by[("score", -1, None)]["prediction"] is None
    plain_row = by[(plain.__wrapped__.__qualname__, None, 1)]
    assert plain_row["b"] == 2 and plain_row["score"] == 0.5


def test_features_are_copied_when_logged(tmp_path):
    lg = quiet_logger(tmp_path)
    feats = {"x": 1}
    with lg.request(features=feats) as r:
        r.prediction = 1
    feats["x"] = 99
    lg.close()
    assert read_rows(tmp_path)["x"].to_pylist() == [1]


# -- type changes: coerced or reported, never raised -------------------------------------------

# (values across three files, expected column type at the end, values read back, coerced counts)
TYPE_CHANGES = [
    ([1, 2, 3], pa.int64(), [1, 2, 3], {}),
    ([1, 2.5, 3], pa.float64(), [1.0, 2.5, 3.0], {"f:widened_to_float64": 1}),
    ([1.5, 2, "3.5"], pa.float64(), [1.5, 2.0, 3.5], {}),
    ([1.5, "abc", None], pa.float64(), [1.5, None, None], {"f:not_a_number": 1}),
    (["a", 2, True], pa.string(), ["a", "2", "True"], {}),
    ([True, "false", "maybe"], pa.bool_(), [True, False, None], {"f:not_a_bool": 1}),
    ([None, 4, 5], pa.int64(), [None, 4, 5], {}),
    ([{"a": 1}, [1, 2], 3], pa.string(), ['{"a": 1}', "[1, 2]", "3"], {}),
    ([np.int64(3), np.float64(0.5), 1], pa.float64(), [3.0, 0.5, 1.0], {"f:widened_to_float64": 1}),
]


@pytest.mark.parametrize(("values", "final_type", "expected", "coerced"), TYPE_CHANGES)
def test_a_feature_whose_type_changes_is_coerced_never_raised(tmp_path, values, final_type,
                                                              expected, coerced):
    lg = quiet_logger(tmp_path)
    for i, v in enumerate(values):
        lg.log(prediction=1, latency_ms=1.0, features={"f": v, "i": i},
               timestamp=T0 + timedelta(seconds=i))
        lg.flush()   # one file per value: the type is fixed by the first file
    lg.close()
    files = visible_files(tmp_path)
    last = [f for f in files if "f" in pq.read_schema(f).names][-1]
    assert pq.read_schema(last).field("f").type == final_type
    rows = sorted(read_rows(tmp_path).to_pylist(), key=lambda r: r["i"])
    got = [r["f"] for r in rows]
    assert [float(g) if isinstance(g, int) and not isinstance(g, bool) and final_type == pa.float64()
            else g for g in got] == expected
    assert lg.stats()["coerced"] == coerced
    recorded = Counter()
    for f in files:
        recorded.update(json.loads(pq.read_schema(f).metadata[b"modelwatch.coerced"]))
    assert dict(recorded) == coerced


class Model:   # a pydantic-like object
    def model_dump(self):
        return {"x": 5}


class Unprintable:
    def __str__(self):
        raise RuntimeError("no text for you")

    __repr__ = __str__


@pytest.mark.parametrize(("features", "expected"), [
    ({"x": 1}, 1), (Model(), 5), ([("x", 2)], 2), ((("x", 3),), 3), (None, None), ({}, None),
    ("not features", None), (42, None), (["x"], None),
])
def test_features_of_any_shape_never_raise(tmp_path, features, expected):
    lg = quiet_logger(tmp_path)
    with lg.request(features=features) as r:
        r.prediction = 1
    with lg.request() as r2:   # set later by the serving code, to whatever it has
        r2.prediction, r2.features = 2, features
    lg.log(prediction=3, latency_ms=1.0, features=features)
    lg.close()
    rows = read_rows(tmp_path).to_pylist()
    assert len(rows) == 3 and lg.stats()["failed"] == 0
    assert [r.get("x") for r in sorted(rows, key=lambda r: r["prediction"])] == [expected] * 3


def test_a_row_that_cannot_be_written_is_counted_and_the_writer_goes_on(tmp_path, caplog):
    lg = quiet_logger(tmp_path)
    lg.log(prediction=1, latency_ms=1.0, features={"x": "fine"}, timestamp=T0)
    lg.log(prediction=2, latency_ms=1.0, features={"x": Unprintable()}, timestamp=T0)
    with caplog.at_level(logging.ERROR, logger="monitoring.logger"):
        assert lg.flush()
    lg.log(prediction=3, latency_ms=1.0, features={"x": "fine"}, timestamp=T0)
    lg.close()
    assert lg.stats()["failed"] == 1 and "1 row(s) could not be written" in caplog.text
    assert sorted(read_rows(tmp_path)["prediction"].to_pylist()) == [1, 3]


@pytest.mark.parametrize(("kwargs", "column", "expected", "coerced"), [
    ({"latency_ms": "12.5"}, "latency_ms", 12.5, {}),
    ({"latency_ms": "slow"}, "latency_ms", None, {"latency_ms:not_a_number": 1}),
    ({"latency_ms": 3, "request_id": 12345}, "request_id", "12345", {}),
    ({"latency_ms": 3, "status": 503}, "status", "503", {}),
    ({"latency_ms": 3, "score": "0.25"}, "score", 0.25, {}),
    ({"latency_ms": 3, "score": "high"}, "score", None, {"score:not_a_number": 1}),
])
def test_contract_columns_given_odd_values_are_coerced_never_raised(tmp_path, kwargs, column,
                                                                     expected, coerced):
    lg = quiet_logger(tmp_path)
    lg.log(prediction=1, **kwargs)
    lg.close()
    assert read_rows(tmp_path)[column].to_pylist() == [expected]
    assert lg.stats()["coerced"] == coerced and lg.stats()["failed"] == 0


def test_a_feature_named_like_a_contract_column_is_renamed(tmp_path):
    assert set(CANONICAL_COLUMNS) <= RESERVED
    lg = quiet_logger(tmp_path)
    lg.log(prediction=1, latency_ms=2.0, features={"status": "gold", "timestamp": 5, "date": "x"})
    lg.close()
    row = read_rows(tmp_path).to_pylist()[0]
    assert (row["status"], row["feature_status"], row["feature_timestamp"], row["feature_date"]) == (
        "ok", "gold", 5, "x")


# -- bounded queue ---------------------------------------------------------------------------

@pytest.mark.parametrize(("max_queue", "logged"), [(5, 5), (5, 8), (1, 4), (100, 3)])
def test_a_full_queue_drops_counts_and_reports_in_the_next_file(tmp_path, caplog, max_queue, logged):
    lg = quiet_logger(tmp_path, max_queue_rows=max_queue)
    for i in range(logged):
        lg.log(prediction=i, latency_ms=1.0)
    dropped = max(0, logged - max_queue)
    assert lg.stats()["dropped"] == dropped and lg.stats()["queued"] == logged - dropped
    with caplog.at_level(logging.WARNING, logger="monitoring.logger"):
        lg.close()
    (f,) = visible_files(tmp_path)
    assert pq.read_metadata(f).num_rows == logged - dropped
    assert pq.read_schema(f).metadata[b"modelwatch.dropped_rows"] == str(dropped).encode()
    assert (f"{dropped} row(s) dropped" in caplog.text) == bool(dropped)
    # The rows kept are the first ones, in order.
    assert sorted(read_rows(tmp_path)["prediction"].to_pylist()) == list(range(logged - dropped))


def test_rows_after_close_are_dropped_and_counted(tmp_path):
    lg = quiet_logger(tmp_path)
    lg.log(prediction=1, latency_ms=1.0)
    lg.close()
    lg.log(prediction=2, latency_ms=1.0)
    st = lg.stats()
    assert st.pop("write_cpu_seconds") > 0
    assert st == {"written": 1, "files": 1, "queued": 0, "dropped": 1, "failed": 0, "coerced": {}}


def test_a_failed_write_keeps_the_rows_for_the_next_flush(tmp_path):
    target = tmp_path / "logs"
    lg = quiet_logger(target)
    lg.log(prediction=1, latency_ms=1.0, timestamp=T0)
    blocker = target / "date=2026-11-30"
    blocker.write_text("a file where the day folder should go")   # mkdir fails, even for root
    assert lg.flush()
    assert lg.stats()["written"] == 0 and visible_files(target) == []
    blocker.unlink()
    lg.close()
    assert read_rows(target)["prediction"].to_pylist() == [1]


def test_rows_of_a_failing_disk_stay_within_the_bound(tmp_path):
    target = tmp_path / "logs"
    lg = quiet_logger(target, max_queue_rows=5)
    blocker = target / "date=2026-11-30"
    blocker.write_text("a file where the day folder should go")
    logged = 0
    for batch in (3, 5, 3):
        for _ in range(batch):
            lg.log(prediction=logged, latency_ms=1.0, timestamp=T0)
            logged += 1
        lg.flush()
        held = len(lg._pending) + len(lg._queue)
        assert held <= 2 * 5
    assert lg.stats()["dropped"] == 1 and lg.stats()["written"] == 0
    blocker.unlink()
    lg.close()
    assert lg.stats()["written"] == logged - 1
    assert sorted(read_rows(target)["prediction"].to_pylist()) == list(range(logged - 1))


def test_rows_arriving_during_a_write_wait_for_the_next_flush(tmp_path):
    class Busy(PredictionLogger):
        def _write_file(self, rows, dropped):   # a request lands while each file is written
            self.log(prediction=-1, latency_ms=1.0, timestamp=T0)
            super()._write_file(rows, dropped)

    lg = Busy(tmp_path, "credit", "v1", flush_rows=10**9, flush_seconds=10**6,
              install_signal_handler=False)
    for i in range(5):
        lg.log(prediction=i, latency_ms=1.0, timestamp=T0)
    lg.flush()
    assert (lg.stats()["files"], lg.stats()["written"], lg.stats()["queued"]) == (1, 5, 1)
    lg.close()   # writes the rest; what arrives while it writes is dropped and counted
    assert (lg.stats()["written"], lg.stats()["dropped"], lg.stats()["queued"]) == (6, 1, 0)


def test_bad_arguments_say_what_is_wrong(tmp_path):
    for kwargs, words in [({"flush_rows": 0}, "positive"), ({"max_queue_rows": -1}, "positive"),
                          ({"types": {"x": "complex"}}, "unknown column type")]:
        with pytest.raises(ValueError, match=words):
            PredictionLogger(tmp_path, "m", "v", install_signal_handler=False, **kwargs)
    with pytest.raises(ValueError, match="non-empty"):
        PredictionLogger(tmp_path, "", "v", install_signal_handler=False)


def test_fixed_types_hold_from_the_first_file(tmp_path):
    lg = quiet_logger(tmp_path, types={"age": "float", "prediction": "string"})
    lg.log(prediction=1, latency_ms=1.0, features={"age": 3})
    lg.close()
    schema = pq.read_schema(visible_files(tmp_path)[0])
    assert schema.field("age").type == pa.float64() and schema.field("prediction").type == pa.string()


# -- request ids ---------------------------------------------------------------------------

def test_ids_increase_in_one_process_and_carry_their_millisecond():
    # µs, later than any id made so far in this process; the clock steps back at the end.
    base = time.time_ns() // 1000 + 60_000_000
    ts = [base + d for d in (0, 0, 5, 999, 1000, 1000, 500)]
    ids = [new_id(t) for t in ts]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [id_millis(i) for i in ids][:5] == [t // 1000 for t in ts[:5]]
    for i in ids:
        assert len(i) == 36 and i[14] == "7" and i[19] in "89ab"   # UUID version 7, RFC variant


def test_ids_of_forked_children_differ():
    import os

    base = time.time_ns() // 1000 + 120_000_000
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # child: one id, written to the pipe
        os.write(w, new_id(base).encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    child = os.read(r, 64).decode()
    mine = new_id(base)
    assert child[:8] == mine[:8] and child[24:] != mine[24:]


# -- import weight ---------------------------------------------------------------------------

def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return {m.split(".")[0] for m in out.stdout.split()}


def test_importing_the_logger_loads_pyarrow_and_nothing_heavier():
    baseline = _modules_after("import pyarrow, pyarrow.parquet")
    logger = _modules_after("import monitoring.logger")
    assert {m for m in logger - baseline if m not in sys.stdlib_module_names} == {"monitoring"}
    for heavy in ("duckdb", "polars", "streamlit", "plotly", "scipy", "sqlalchemy", "pandas"):
        assert heavy not in logger


def test_a_forked_child_writes_its_own_rows_only(tmp_path):
    import os

    lg = quiet_logger(tmp_path)
    for i in range(3):
        lg.log(prediction=i, latency_ms=1.0, features={"who": "parent"})
    pid = os.fork()
    if pid == 0:   # the child: the parent's three queued rows are not its to write
        try:
            lg.log(prediction=9, latency_ms=1.0, features={"who": "child"})
            lg.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    lg.log(prediction=3, latency_ms=1.0, features={"who": "parent"})
    lg.close()
    rows = read_rows(tmp_path).to_pylist()
    assert sorted((r["who"], r["prediction"]) for r in rows) == [
        ("child", 9), ("parent", 0), ("parent", 1), ("parent", 2), ("parent", 3)]
    assert len({r["request_id"] for r in rows}) == 5

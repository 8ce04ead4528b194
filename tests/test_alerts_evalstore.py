"""Alert evaluations kept on disk (monitoring/alerts/evalstore.py): what is read back equals a
fresh `engine.evaluate` of the same logs, labels and settings (the oracle); a change of the
logs, the labels or a rule's setting is another file (evaluated again); what cannot be read
or written is a miss, never an error; labels that could not be seen are never kept."""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from monitoring.alerts import engine, evalstore, evaluate_kept
from monitoring.alerts.engine import Episode
from monitoring.alerts.evalstore import EvalStore
from monitoring.config import load_config
from monitoring.logs.workspace import open_workspace
from monitoring.quality.marks import UNAVAILABLE, labels_mark
from tests.test_database_failures import broken_db


@pytest.fixture(scope="module")
def logs(generated_logs, tmp_path_factory):
    """A copy of the generated logs (every documented incident) this module may touch."""
    out = tmp_path_factory.mktemp("evalstore") / "logs"
    shutil.copytree(generated_logs, out)
    return out


def _ws(logs, data, toml: str = "", db_url: str | None = None, labels: str | None = None):
    path = data.parent / f"{data.name}-{abs(hash(toml))}.toml"
    path.write_text(toml)
    cfg = load_config(str(path), {"logs": str(logs), "labels": labels})
    return open_workspace(replace(cfg, data_dir=str(data), db_url=db_url or f"sqlite:///{data.parent / 'db.sqlite'}"))


@pytest.fixture(scope="module")
def oracle(logs, tmp_path_factory):
    """A fresh evaluation of the logs with default settings and no reviewer's verdict."""
    ws = _ws(logs, tmp_path_factory.mktemp("oracle") / "data")
    return engine.evaluate(ws)


@pytest.fixture
def evaluations(monkeypatch):
    """The workspaces evaluated (not read from the store)."""
    seen = []

    def counted(ws, at=None, step_minutes=engine.DEFAULT_STEP_MINUTES):
        seen.append(at)
        return engine.evaluate(ws, at=at, step_minutes=step_minutes)

    monkeypatch.setattr(evalstore, "evaluate", counted)
    return seen


def _plain(episodes: list[Episode], digits: int | None = None) -> list[tuple]:
    """Comparable rows: nan as a marker (nan != nan), each time with its UTC offset; floats
    to `digits` significant digits when given (None: exactly)."""
    def v(x):
        if isinstance(x, float) and math.isnan(x):
            return "nan"
        if isinstance(x, float) and digits is not None and math.isfinite(x):
            return float(f"{x:.{digits}g}")
        if isinstance(x, datetime):
            return (x, x.utcoffset())
        return x
    return [tuple((k, v(x)) for k, x in e.as_dict().items()) for e in episodes]


def _like(a: list[Episode], b: list[Episode]) -> bool:
    """Equal to an independent evaluation: the drift scores' float sums follow DuckDB's
    threads, so two evaluations of the same logs may differ in the last bits (seen: 0.7340326717536918
    and ...36936); everything else exactly."""
    return _plain(a, 10) == _plain(b, 10)


def _kept_files(ws) -> list:
    folder = evalstore.for_folder(ws.config.data_dir).folder
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def test_episodes_read_back_equal_a_fresh_evaluation(logs, tmp_path, oracle, evaluations, monkeypatch):
    ws = _ws(logs, tmp_path / "data")
    assert {e.rule for e in oracle} >= {"error_rate", "latency_p95", "gap", "drift", "accuracy_floor"}
    first = evaluate_kept(ws)
    assert evaluations == [None] and _like(first, oracle)
    assert len(_kept_files(ws)) == 1
    # Read back from the file: nothing is evaluated (a restarted server, the app after the CLI)
    monkeypatch.setattr(evalstore, "evaluate", lambda *a, **k: pytest.fail("evaluated again"))
    again = evaluate_kept(_ws(logs, tmp_path / "data"))
    assert _plain(again) == _plain(first) and again is not first   # bit for bit what was evaluated


def test_an_evaluation_time_is_its_own_file(logs, tmp_path, evaluations):
    ws = _ws(logs, tmp_path / "data")
    at = datetime(2026, 11, 5, 15, tzinfo=UTC)
    want = engine.evaluate(ws, at=at)
    assert _like(evaluate_kept(ws, at=at), want)
    assert _like(evaluate_kept(ws, at=at), want) and evaluations == [at]
    assert len(_kept_files(ws)) == 1 and want
    evaluate_kept(ws)   # the whole history: another file
    assert evaluations == [at, None] and len(_kept_files(ws)) == 2


def test_values_round_trip_exactly(tmp_path):
    """Hand-made episodes with what JSON does not hold by itself: nan and infinities, numpy
    floats, an int threshold, microseconds, a non-UTC offset, an open end."""
    t = datetime(2026, 11, 5, 14, 5, 0, 123456, tzinfo=UTC)
    base = dict(rule="r", subject="v3 vs v2", area="Errors", title="T", page="Errors", unit="%",
                message="déjà 29.0% — over")
    eps = [Episode(**base, start=t, end=None, peak=float("nan"), threshold=1, ),
           Episode(**base, start=t, end=t + timedelta(minutes=5), peak=float("inf"), threshold=-math.inf),
           Episode(**base, start=t.astimezone(timezone(timedelta(hours=-5))), end=None,
                   peak=np.float64(0.1) + np.float64(0.2), threshold=1e-300)]
    store = EvalStore(tmp_path)
    store.write("d", eps)
    back = store.read("d")
    assert _plain(back) == _plain(eps)
    assert back[2].peak == 0.30000000000000004 and type(back[0].threshold) is int
    assert back[2].start.utcoffset() == timedelta(hours=-5) and back[1].threshold == -math.inf
    assert store.read("other") is None and EvalStore(tmp_path / "none").read("d") is None
    store.write("empty", [])
    assert store.read("empty") == []   # nothing fired is an answer too, not a miss
    assert not list(tmp_path.glob("*.tmp"))


def test_touched_logs_are_evaluated_again(generated_logs, tmp_path, oracle, evaluations):
    mine = tmp_path / "logs"
    shutil.copytree(generated_logs, mine)
    ws = _ws(mine, tmp_path / "data")
    evaluate_kept(ws)
    f = sorted(mine.rglob("*.parquet"))[0]
    st = os.stat(f)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    ws2 = _ws(mine, tmp_path / "data")
    assert ws2.fingerprint != ws.fingerprint
    assert _like(evaluate_kept(ws2), oracle)
    assert evaluations == [None, None] and len(_kept_files(ws)) == 2


def test_a_reviewers_verdict_is_evaluated_again(logs, tmp_path, oracle, evaluations):
    from monitoring.labelling import db, queues
    from monitoring.labelling.sampling import QueueSpec

    ws = _ws(logs, tmp_path / "data")
    assert _like(evaluate_kept(ws), oracle)
    before = labels_mark(ws.config)
    eng = db.open_db(ws.config.database_url)
    q = queues.create_queue(eng, ws.source, ws.con, QueueSpec(size=5, seed=2))
    for verdict in ("correct", "wrong", "correct"):
        queues.answer(eng, queues.claim_next(eng, q, "ana"), "ana", verdict)
    eng.dispose()
    assert labels_mark(ws.config) != before
    got = evaluate_kept(ws)
    assert evaluations == [None, None] and _like(got, engine.evaluate(ws))
    assert len(_kept_files(ws)) == 2
    evaluate_kept(ws)
    assert len(evaluations) == 2   # the new labels' evaluation is read back


def test_a_labels_file_is_evaluated_again(logs, tmp_path, evaluations):
    labels = tmp_path / "labels.parquet"
    ws = _ws(logs, tmp_path / "data", labels=str(labels))
    rows = ws.source.query(ws.con, "SELECT request_id, prediction FROM logs "
                           "ORDER BY request_id LIMIT 5000")
    rows.select("request_id", label=rows["prediction"] + "-wrong").write_parquet(labels)
    first = evaluate_kept(ws)
    assert _like(first, engine.evaluate(ws))
    rows.select("request_id", label="prediction").write_parquet(labels)
    st = os.stat(labels)
    os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    second = evaluate_kept(ws)
    assert evaluations == [None, None] and len(_kept_files(ws)) == 2
    assert _like(second, engine.evaluate(ws)) and not _like(second, first)


def test_a_rule_setting_is_evaluated_again(logs, tmp_path, oracle, evaluations):
    evaluate_kept(_ws(logs, tmp_path / "data"))
    ws = _ws(logs, tmp_path / "data", "[alerts.rules.latency_p95]\nenabled = false\n")
    got = evaluate_kept(ws)
    assert evaluations == [None, None]
    assert _like(got, [e for e in oracle if e.rule != "latency_p95"]) and not _like(got, oracle)
    ws = _ws(logs, tmp_path / "data", "[alerts.rules.latency_p95]\nwindow_minutes = 240\n")
    assert _like(evaluate_kept(ws), engine.evaluate(ws)) and len(evaluations) == 3


@pytest.mark.parametrize("text", ["", "{", "[]", "null", '{"format": 1, "digest": "other", "episodes": []}',
                                  '{"format": 99, "digest": "DIGEST", "episodes": []}',
                                  '{"format": 1, "digest": "DIGEST", "episodes": [{"rule": "x"}]}',
                                  '{"format": 1, "digest": "DIGEST", "episodes": 5}'])
def test_a_corrupt_or_foreign_file_is_a_miss(logs, tmp_path, oracle, evaluations, text):
    ws = _ws(logs, tmp_path / "data")
    key = evalstore.digest(ws, labels_mark(ws.config))
    store = evalstore.for_folder(ws.config.data_dir)
    store.folder.mkdir(parents=True)
    (store.folder / f"{key}.json").write_text(text.replace("DIGEST", key))
    got = evaluate_kept(ws)
    assert _like(got, oracle) and evaluations == [None]
    assert _plain(store.read(key)) == _plain(got)   # rewritten whole


def test_an_unreadable_file_and_an_unwritable_folder_are_misses(logs, tmp_path, oracle, evaluations):
    ws = _ws(logs, tmp_path / "data")
    store = evalstore.for_folder(ws.config.data_dir)
    # A folder where the file should be: it can be neither read nor replaced.
    (store.folder / f"{evalstore.digest(ws, labels_mark(ws.config))}.json").mkdir(parents=True)
    assert _like(evaluate_kept(ws), oracle)
    # A file where the folder should be: nothing can be kept, every call evaluates.
    ws = _ws(logs, tmp_path / "other")
    folder = evalstore.for_folder(ws.config.data_dir).folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder")
    assert _like(evaluate_kept(ws), oracle) and _like(evaluate_kept(ws), oracle)
    assert evaluations == [None] * 3 and not list(tmp_path.rglob("*.tmp"))


def test_a_read_only_data_folder_reads_what_is_kept(logs, tmp_path, oracle, evaluations):
    ws = _ws(logs, tmp_path / "data")
    evaluate_kept(ws)
    folder = evalstore.for_folder(ws.config.data_dir).folder
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root): the test above covers it")
        assert _like(evaluate_kept(ws), oracle) and evaluations == [None]
        other = _ws(logs, tmp_path / "data", "[alerts]\nmerge_minutes = 0\n")
        assert _like(evaluate_kept(other), engine.evaluate(other))
        assert len(_kept_files(ws)) == 1
    finally:
        folder.chmod(0o700)


def test_unseen_labels_are_never_kept_nor_read(logs, tmp_path, evaluations):
    ws = _ws(logs, tmp_path / "data", db_url=broken_db("corrupt", tmp_path))
    mark = labels_mark(ws.config)
    assert mark.endswith(UNAVAILABLE)
    store = evalstore.for_folder(ws.config.data_dir)
    store.write(evalstore.digest(ws, mark), [])   # planted: must not be served
    got = evaluate_kept(ws)
    assert evaluations == [None] and got and _like(got, engine.evaluate(ws))
    assert len(_kept_files(ws)) == 1   # only the planted one


def test_labels_that_moved_during_the_evaluation_are_not_kept(logs, tmp_path, evaluations):
    ws = _ws(logs, tmp_path / "data")
    stale = labels_mark(ws.config).replace("events=", "events=9")   # the caller's mark, read before
    evaluate_kept(ws, mark=stale)
    assert evaluations == [None] and _kept_files(ws) == []


def test_the_oldest_files_go_beyond_max_files(tmp_path, monkeypatch):
    monkeypatch.setattr(evalstore, "MAX_FILES", 3)
    store = EvalStore(tmp_path)
    for i in range(5):
        store.write(f"d{i}", [])
        os.utime(tmp_path / f"d{i}.json", (1_000 + i, 1_000 + i))
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == ["d2", "d3", "d4"]
    assert evalstore.for_folder(None) is None and evalstore.for_folder("") is None


def test_the_code_hash_covers_the_evaluations_modules():
    h = evalstore.code_hash()
    assert h == evalstore.code_hash() and len(h) == 64
    files = sorted(p.relative_to(evalstore._PACKAGE).as_posix() for p in evalstore._PACKAGE.rglob("*.py"))
    for module in ("alerts/engine.py", "alerts/rules.py", "drift/overtime.py", "metrics/anomalies.py",
                   "quality/ground_truth.py", "rollup/read.py", "logs/source.py", "query/filters.py",
                   "compare/report.py", "config.py"):
        assert module in files
    assert json.loads(json.dumps(evalstore._versions()))


def test_a_reference_file_edited_in_place_is_evaluated_again(logs, tmp_path, evaluations):
    """The reference's path is in the configuration, its content is not: the file's size and
    mtime are in the key, so a training sample rewritten under the same name is evaluated anew."""
    import pyarrow.parquet as pq

    days = sorted(logs.rglob("*.parquet"))
    ref = tmp_path / "reference.parquet"

    def ws_with(day, ns):
        pq.write_table(pq.read_table(day), ref)
        os.utime(ref, ns=(ns, ns))
        cfg = load_config(None, {"logs": str(logs), "reference": str(ref)})
        return open_workspace(replace(cfg, data_dir=str(tmp_path / "data"),
                                      db_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))

    first = evaluate_kept(ws_with(days[0], 10**18))
    assert _like(evaluate_kept(ws_with(days[0], 10**18)), first) and len(evaluations) == 1   # the same file
    assert _like(evaluate_kept(ws_with(days[0], 2 * 10**18)), first) and len(evaluations) == 2  # touched
    ws = ws_with(days[-1], 3 * 10**18)   # another day's rows under the same name
    got = evaluate_kept(ws)
    assert len(evaluations) == 3 and _like(got, engine.evaluate(ws))
    assert not _like(got, first)   # a different reference: other drift episodes

"""Accuracy per bucket when the logs' own labels are the only source (quality/accuracy.py: the
stored pairs counted first, compared after) equals the general path (every row coerced and
joined, ground_truth.truth_sql) and a hand count, on messy label and prediction forms; a
labels file or reviewed answers take the general path."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.config import load_config
from monitoring.logs.workspace import open_workspace
from monitoring.quality import accuracy
from monitoring.quality import ground_truth as gt
from monitoring.query.filters import Filters

T0 = datetime(2026, 11, 2, tzinfo=UTC)
OK, FAIL = "ok", "500"

# (prediction, label, status, verdict by hand: True correct, False wrong, None not labelled)
CASES = {
    "int predictions, text labels": (pa.int64(), pa.string(), [
        (1, "1", OK, True), (1, " 1.0 ", OK, True), (0, "0", OK, True), (0, "1", OK, False),
        (1, "", OK, None), (0, None, OK, None), (1, "x", OK, False), (1, "1", FAIL, None),
        (None, "1", OK, None), (0, "0.0", OK, True)]),
    "text with spaces and case": (pa.string(), pa.string(), [
        (" yes ", "yes", OK, True), ("no", " no", OK, True), ("yes", "no", OK, False),
        ("YES", "yes", OK, False), (None, "yes", OK, None), ("no", None, OK, None),
        ("no", "no ", OK, True), ("yes", "yes", FAIL, None), ("  ", "yes", OK, None), ("yes", "yes", OK, True)]),
    "booleans against true/false text": (pa.bool_(), pa.string(), [
        (True, "true", OK, True), (False, " FALSE ", OK, True), (True, "True", OK, True),
        (False, "true", OK, False), (True, "1", OK, False), (None, "false", OK, None),
        (True, None, OK, None), (False, "false", OK, True), (True, "true", FAIL, None), (False, "false", OK, True)]),
    "text predictions, float labels": (pa.string(), pa.float64(), [
        ("1", 1.0, OK, True), ("2", 2.0, OK, True), (" 3 ", 3.0, OK, True), ("2.5", 2.5, OK, True),
        ("1", None, OK, None), ("a", 1.0, OK, False), ("0", -0.0, OK, True), ("1", 2.0, OK, False),
        ("2", 2.0, FAIL, None), ("1.0", 1.0, OK, True)]),
}


def _ws(tmp_path: Path, ptype, ltype, rows, *, labels_file: dict | None = None, repeat: int = 3):
    rows = rows * repeat        # the same pairs in several buckets and versions
    n = len(rows)
    table = pa.table({
        "request_id": [f"r{i}" for i in range(n)],
        "timestamp": pa.array([T0 + timedelta(minutes=17 * i) for i in range(n)], pa.timestamp("us", "UTC")),
        "model_version": [("v1", "v2", "v2")[i % 3] for i in range(n)],
        "status": [r[2] for r in rows],
        "latency_ms": [10.0] * n,
        "prediction": pa.array([r[0] for r in rows], ptype),
        "label": pa.array([r[1] for r in rows], ltype),
    })
    pq.write_table(table, tmp_path / "logs.parquet")
    text = f'logs = "{tmp_path / "logs.parquet"}"\ndata_dir = "{tmp_path / "data"}"\n'
    if labels_file is not None:
        pq.write_table(pa.table(labels_file), tmp_path / "labels.parquet")
        text += f'[labels]\npath = "{tmp_path / "labels.parquet"}"\n'
    (tmp_path / "monitoring.toml").write_text(text)
    return open_workspace(load_config(str(tmp_path / "monitoring.toml"))), rows


def _hand_count(rows, verdicts, bucket_s: int, by_version: bool, keep=lambda i: True) -> pl.DataFrame:
    """bucket[, v], labelled, correct from the verdicts written above, row by row."""
    labelled, correct = Counter(), Counter()
    for i, verdict in enumerate(verdicts):
        if verdict is None or not keep(i):
            continue
        t = int((T0 + timedelta(minutes=17 * i)).timestamp())
        key = (t // bucket_s,) + ((("v1", "v2", "v2")[i % 3],) if by_version else ())
        labelled[key] += 1
        correct[key] += bool(verdict)
    keys = sorted(labelled)
    cols = {"bucket": [k[0] for k in keys]}
    if by_version:
        cols["v"] = [k[1] for k in keys]
    return pl.DataFrame({**cols, "labelled": [labelled[k] for k in keys], "correct": [correct[k] for k in keys]},
                        schema={"bucket": pl.Int64, **({"v": pl.String} if by_version else {}),
                                "labelled": pl.Int64, "correct": pl.Int64})


# A reviewed answer for a request that is not in the logs changes no count but is a second
# label source: it takes the general path (every row coerced, then joined).
NOBODY = pl.DataFrame({"request_id": ["not-a-request"], "correct": [True]})


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("bucket_s,by_version", [(3600, True), (7200, False), (300, True), (86400, True)])
def test_counting_stored_pairs_first_equals_the_general_path_and_a_hand_count(tmp_path, monkeypatch, case,
                                                                              bucket_s, by_version):
    ptype, ltype, spec = CASES[case]
    ws, rows = _ws(tmp_path, ptype, ltype, spec)
    calls = []
    grouped = accuracy.grouped_sql
    monkeypatch.setattr(accuracy, "grouped_sql", lambda *a: calls.append(a) or grouped(*a))
    fast = gt.accuracy_by_bucket(ws, bucket_s, by_version=by_version)
    assert len(calls) == 1                                         # the logs' labels alone: the fast path
    general = gt.accuracy_by_bucket(ws, bucket_s, reviewed=NOBODY, by_version=by_version)
    assert len(calls) == 1                                         # a second source: the general path
    want = _hand_count(rows, [r[3] for r in rows], bucket_s, by_version)
    assert fast.equals(want) and general.equals(want)
    assert fast.height > 1 and int(fast["correct"].sum()) > 0


def test_filters_and_the_windowed_accuracy_take_the_fast_path_with_the_same_counts(tmp_path):
    ptype, ltype, spec = CASES["text with spaces and case"]
    ws, rows = _ws(tmp_path, ptype, ltype, spec)
    start, end = T0 + timedelta(hours=2), T0 + timedelta(hours=6)
    f = Filters(start=start, end=end, model_versions=("v2",))
    inside = {i for i in range(len(rows)) if start <= T0 + timedelta(minutes=17 * i) < end and i % 3 != 0}
    want = _hand_count(rows, [r[3] for r in rows], 3600, True, keep=inside.__contains__)
    assert want.height and gt.accuracy_by_bucket(ws, 3600, f, by_version=True).equals(want)
    assert gt.accuracy_by_bucket(ws, 3600, f, NOBODY, by_version=True).equals(want)
    day = gt.window_accuracy(ws, T0, T0 + timedelta(days=1))
    verdicts = [r[3] for r in rows if r[3] is not None]
    assert (day["labelled"], day["correct"]) == (len(verdicts), sum(verdicts))


def test_a_labels_file_takes_the_general_path_and_wins_over_the_logs(tmp_path, monkeypatch):
    ptype, ltype, spec = CASES["int predictions, text labels"]
    # the file relabels r0 (logs: correct) as wrong, r3 (logs: wrong) as right, labels r5 (logs: none)
    file = {"request_id": ["r0", " r3 ", "r5"], "label": ["0", "0", " 0"]}
    ws, rows = _ws(tmp_path, ptype, ltype, spec, labels_file=file)
    monkeypatch.setattr(accuracy, "grouped_sql", lambda *a: pytest.fail("a labels file joins by request id"))
    verdicts = [r[3] for r in rows]
    verdicts[0], verdicts[3], verdicts[5] = False, True, True
    got = gt.accuracy_by_bucket(ws, 3600, by_version=True)
    assert got.equals(_hand_count(rows, verdicts, 3600, True))


def test_a_broken_labels_file_still_says_so_in_one_sentence(tmp_path):
    ptype, ltype, spec = CASES["int predictions, text labels"]
    ws, _ = _ws(tmp_path, ptype, ltype, spec, labels_file={"rid": ["r0"], "label": ["1"]})
    with pytest.raises(gt.LabelsError, match="no column 'request_id'"):
        gt.accuracy_by_bucket(ws, 3600, by_version=True)

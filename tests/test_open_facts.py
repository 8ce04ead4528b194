"""The open's facts (duplicates, extent, health) from one grouped scan and the duplicate check,
against the old three passes (find_duplicates, then extent over the `logs` view and
check_health over the raw rows, each its own SQL) and a hand count (the duplicates, invalid
rows by reason, valid rows, first and last time, versions), on logs with duplicates within
and across files, invalid rows of every reason, empty files, a copy at a group's edge, and
files added, changed or removed between opens."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime, timedelta

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.config import load_config
from monitoring.logs.health import check_health, find_duplicates
from monitoring.logs.source import connect, open_source
from monitoring.logs.workspace import open_workspace
from monitoring.query.filters import extent

T0 = datetime(2026, 11, 1, 12, 0)
NAN, INF = float("nan"), float("inf")


def table(rows: list[tuple], *, drop: tuple[str, ...] = ()) -> pa.Table:
    """rows of (request_id, minute or None or 'bad', version, endpoint, latency, status)."""
    rid, ts, ver, ep, lat, st = (list(c) for c in zip(*rows, strict=True)) if rows else ([],) * 6
    as_text = any(isinstance(t, str) for t in ts)
    times = [None if t is None else (t if isinstance(t, str) else T0 + timedelta(minutes=t)) for t in ts]
    if as_text:
        times = [None if t is None else (t if isinstance(t, str) else t.isoformat()) for t in times]
    cols = {
        "request_id": pa.array(rid, pa.string()),
        "timestamp": pa.array(times, pa.string() if as_text else pa.timestamp("us")),
        "model_version": pa.array(ver, pa.string()),
        "endpoint": pa.array(ep, pa.string()),
        "latency_ms": pa.array(lat, pa.float64()),
        "status": pa.array(st, pa.string()),
        "prediction": pa.array(["a"] * len(rid), pa.string()),
    }
    return pa.table({k: v for k, v in cols.items() if k not in drop})


def ok(rid, minute, ver="v1", ep="/p", lat=10.0):
    return (rid, minute, ver, ep, lat, "ok")


EVERY_REASON = [
    ("n1", None, "v1", "/p", 1.0, "ok"),          # missing_timestamp
    ("n2", "not a time", "v1", "/p", 1.0, "ok"),  # unparsable_timestamp
    (None, 3, "v1", "/p", 1.0, "ok"),             # missing_request_id
    ("n4", 4, "v1", "/p", NAN, "ok"),             # missing_latency
    ("n5", 5, "v1", "/p", None, "ok"),            # missing_latency
    ("n6", 6, "v1", "/p", INF, "ok"),             # infinite_latency
    ("n7", 7, "v1", "/p", -1.0, "ok"),            # negative_latency
    ("n8", 8, "v1", "/p", 1.0, None),             # missing_status
    ("n9", 9, None, "/p", 1.0, "ok"),             # missing_model_version
]

# name -> (files {name: rows}, duplicates, invalid by reason, valid rows, first/last minute, versions)
CASES = {
    "dups within one file": (
        {"a": [ok("r1", 0), ok("r2", 1), ok("r1", 2), ok("r1", 3)]}, 2, {}, 2, (0, 1), ("v1",)),
    "dups across files": (
        {"a": [ok("r1", 0), ok("r2", 1)], "b": [ok("r2", 5), ok("r3", 6)]}, 1, {}, 3, (0, 6), ("v1",)),
    "every invalid reason": (
        {"a": [ok("r1", 0), *EVERY_REASON, ok("r1", 20)]},
        1, {"missing_timestamp": 1, "unparsable_timestamp": 1, "missing_request_id": 1,
            "missing_latency": 2, "infinite_latency": 1, "negative_latency": 1,
            "missing_status": 1, "missing_model_version": 1}, 1, (0, 0), ("v1",)),
    "invalid copy never counts as the first": (
        {"a": [("r1", 0, "v1", "/p", -5.0, "ok"), ok("r1", 4)]}, 0, {"negative_latency": 1}, 1, (4, 4), ("v1",)),
    "empty file beside others": (
        {"a": [], "b": [ok("r1", 0), ok("r1", 1)], "c": []}, 1, {}, 1, (0, 0), ("v1",)),
    "copy is the last of its version": (
        {"a": [ok("r1", 0, "v1"), ok("r2", 1, "v2"), ok("r3", 2, "v2")], "b": [ok("r3", 9, "v2")]},
        1, {}, 3, (0, 2), ("v1", "v2")),
    "copy is the only row of a version and endpoint": (
        {"a": [ok("r1", 0, "v1"), ok("r2", 1, "v1")], "b": [ok("r1", 7, "v3", "/q")]},
        1, {}, 2, (0, 1), ("v1",)),
    "copy is the first of its version, kept copy earlier elsewhere": (
        {"a": [ok("r1", 0, "v1"), ok("r2", 2, "v2"), ok("r3", 3, "v2")], "b": [ok("r1", 1, "v2")]},
        1, {}, 3, (0, 3), ("v1", "v2")),
    "same time copies: file then row decide": (
        {"a": [ok("r1", 5), ok("r1", 5)], "b": [ok("r1", 5), ok("r2", 6)]}, 2, {}, 2, (5, 6), ("v1",)),
    "no duplicates at all": (
        {"a": [ok(f"r{i}", i) for i in range(5)], "b": [ok(f"s{i}", 10 + i, "v2") for i in range(3)]},
        0, {}, 8, (0, 12), ("v1", "v2")),
}


def write(folder, files: dict[str, list[tuple]], **kw) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        pq.write_table(table(rows, **kw), folder / f"{name}.parquet")


def three_passes(folder, cfg):
    """The old open: find_duplicates, then extent and check_health, on a source of its own."""
    con = connect(cfg)
    src = open_source(str(folder), cfg, con)
    n = find_duplicates(src, con)
    return n, extent(src, con), check_health(src, con)


def config(tmp_path):
    return replace(load_config(), data_dir=str(tmp_path / "data"))


def assert_same(ws, oracle) -> None:
    n, ext, h = oracle
    assert ws.duplicates == n
    assert ws.extent == ext
    assert (ws.health.total_rows, ws.health.valid_rows, ws.health.invalid, ws.health.duplicates) == (
        h.total_rows, h.valid_rows, h.invalid, h.duplicates)


@pytest.mark.parametrize("name", list(CASES))
def test_open_equals_three_passes_and_hand_count(tmp_path, name):
    files, dups, invalid, valid, (first, last), versions = CASES[name]
    write(tmp_path / "logs", files)
    cfg = config(tmp_path)
    ws = open_workspace(cfg, logs=str(tmp_path / "logs"))
    assert_same(ws, three_passes(tmp_path / "logs", cfg))
    assert (ws.duplicates, ws.health.invalid, ws.extent.rows) == (dups, invalid, valid)
    assert ws.health.total_rows == sum(len(r) for r in files.values())
    assert (ws.extent.first, ws.extent.last) == (T0.replace(tzinfo=ws.extent.first.tzinfo) + timedelta(minutes=first),
                                                 T0.replace(tzinfo=ws.extent.first.tzinfo) + timedelta(minutes=last))
    assert ws.extent.model_versions == versions
    # The logs view agrees with the extent: the copies are dropped.
    assert int(ws.source.query(ws.con, "SELECT count(*) AS n FROM logs")["n"][0]) == valid
    # Per file, the grouped rows add up to the row count in each file's Parquet footer.
    from monitoring.logs import facts

    g = facts.file_facts(ws.source, ws.con, ws.source.files[::-1])
    assert dict(g.group_by("file").agg(n=pl.col("n").sum()).iter_rows()) == {
        f: n for f, n in ws.source.file_rows.items() if n}
    # A second open reads the cache: the same facts, no scan needed.
    again = open_workspace(cfg, logs=str(tmp_path / "logs"))
    assert_same(again, three_passes(tmp_path / "logs", cfg))


@pytest.mark.parametrize("drop", [("request_id",), ("timestamp",), ("endpoint",), ("model_version",),
                                  ("latency_ms", "status")])
def test_columns_absent(tmp_path, drop):
    files = {"a": [ok("r1", 0), ok("r2", 1, "v2", "/q"), ok("r1", 2)], "b": [ok("r2", 3), ok("r4", 4)]}
    write(tmp_path / "logs", files, drop=drop)
    cfg = config(tmp_path)
    assert_same(open_workspace(cfg, logs=str(tmp_path / "logs")), three_passes(tmp_path / "logs", cfg))


def _touch(path) -> None:
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


# change -> (files after the first open are changed this way), duplicates after, hand count
CHANGES = {
    "one file added, copy of an old id": (lambda d: write(d, {"c": [ok("r2", 30), ok("n1", 31)]}), 2),
    "one file added, copies within it": (lambda d: write(d, {"c": [ok("x", 30), ok("x", 31)]}), 2),
    "one file added, no copy": (lambda d: write(d, {"c": [ok("y", 30)]}), 1),
    "one file added, empty": (lambda d: write(d, {"c": []}), 1),
    "a file rewritten": (lambda d: (write(d, {"b": [ok("r1", 40), ok("r1", 41)]}), _touch(d / "b.parquet")), 2),
    "a file removed": (lambda d: os.remove(d / "b.parquet"), 0),
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_changed_files_reuse_per_file_facts_and_stay_exact(tmp_path, name, monkeypatch):
    change, dups = CHANGES[name]
    logs = tmp_path / "logs"
    write(logs, {"a": [ok("r1", 0), ok("r2", 1)], "b": [ok("r1", 5), ok("r3", 6)]})
    cfg = config(tmp_path)
    assert open_workspace(cfg, logs=str(logs)).duplicates == 1
    change(logs)
    from monitoring.logs import facts

    scanned: list[list[str]] = []
    real = facts.file_facts
    monkeypatch.setattr(facts, "file_facts", lambda s, c, files: scanned.append(files) or real(s, c, files))
    ws = open_workspace(cfg, logs=str(logs))
    assert_same(ws, three_passes(logs, cfg))
    assert ws.duplicates == dups
    # Only the new or changed files were scanned for the grouped facts.
    assert [os.path.basename(f) for f in scanned[0]] == {
        "a file rewritten": ["b.parquet"], "a file removed": []}.get(name, ["c.parquet"])


def test_mixed_column_types_across_files_added_later(tmp_path):
    """A file added later with integer latencies and text timestamps: the union's types change,
    so every file is grouped again (per-file facts are keyed by the schema) and all stays exact."""
    logs = tmp_path / "logs"
    write(logs, {"a": [ok("r1", 0), ok("r2", 1)]})
    cfg = config(tmp_path)
    open_workspace(cfg, logs=str(logs))
    t = table([ok("r2", 7), ("r5", "bad", "v1", "/p", 3.0, "ok")])
    t = t.set_column(4, "latency_ms", pa.array([5, 3], pa.int64()))
    pq.write_table(t, logs / "b.parquet")
    assert_same(open_workspace(cfg, logs=str(logs)), three_passes(logs, cfg))


def test_background_check_marks_figures_until_exact(tmp_path, monkeypatch):
    from monitoring.logs import workspace

    monkeypatch.setattr(workspace, "BACKGROUND_ROWS", 1)
    write(tmp_path / "logs", {"a": [ok("r1", 0), ok("r2", 1)], "b": [ok("r2", 5), ok("r3", 6)]})
    cfg = config(tmp_path)
    ws = open_workspace(cfg, logs=str(tmp_path / "logs"), background=True)
    assert ws.checking is not None
    assert "4 rows for duplicate request ids" in ws.checking.text
    assert ws.wait(60)
    assert ws.fingerprint == f"{ws.source.fingerprint}+{ws.settings}"     # the mark is gone
    assert "figures are exact" in ws.checking.text
    assert_same(ws, three_passes(tmp_path / "logs", cfg))
    # The CLI's open (no background) is exact when it returns, from the cache here.
    cli = open_workspace(cfg, logs=str(tmp_path / "logs"))
    assert cli.checking is None and cli.exact and cli.duplicates == 1


@pytest.mark.parametrize("exc, says", [(OSError("disk gone"), "The duplicate check failed (disk gone)"),
                                       (KeyError("x"), "The duplicate check stopped unexpectedly")])
def test_background_check_failure_is_one_sentence_and_figures_stay_marked(tmp_path, monkeypatch, exc, says):
    from monitoring.logs import facts, workspace

    monkeypatch.setattr(workspace, "BACKGROUND_ROWS", 1)

    def broken(*a, **k):
        raise exc

    monkeypatch.setattr(facts, "candidate_hashes", broken)
    write(tmp_path / "logs", {"a": [ok("r1", 0), ok("r1", 1)]})
    ws = open_workspace(config(tmp_path), logs=str(tmp_path / "logs"), background=True)
    assert not ws.wait(60)
    assert ws.fingerprint.endswith("~unchecked")
    assert ws.checking.text.startswith(says)
    assert "\n" not in ws.checking.text


@pytest.mark.parametrize("name", ["dups within one file", "dups across files", "every invalid reason",
                                  "copy is the last of its version", "same time copies: file then row decide",
                                  "no duplicates at all"])
def test_covering_rollup_store_gives_the_duplicates_without_reading_ids(tmp_path, name, monkeypatch):
    import shutil

    from monitoring.logs import facts
    from monitoring.rollup import build

    files = CASES[name][0]
    logs = tmp_path / "logs"
    write(logs, files)
    cfg = replace(config(tmp_path), logs=str(logs))
    build.build(cfg)
    shutil.rmtree(tmp_path / "data" / "cache", ignore_errors=True)

    def no_scan(*a, **k):
        raise AssertionError("the ids were read although the store covers the files")

    monkeypatch.setattr(facts, "candidate_hashes", no_scan)
    monkeypatch.setattr(facts, "confirm_duplicates", no_scan)
    ws = open_workspace(cfg, logs=str(logs), background=True)
    assert ws.source.rollups is not None and ws.exact
    assert_same(ws, three_passes(logs, cfg))
    assert ws.duplicates == CASES[name][1]
    assert int(ws.source.query(ws.con, "SELECT count(*) AS n FROM logs")["n"][0]) == CASES[name][3]
    # A file added later: the store no longer covers the logs; the per-file facts and the
    # hashes the store named keep the check incremental and exact.
    monkeypatch.undo()
    write(logs, {"z": [ok("r1", 50), ok("zz", 51)]})
    assert_same(open_workspace(cfg, logs=str(logs)), three_passes(logs, cfg))


@pytest.mark.parametrize("added, dups", [
    ({"z": [ok("r1", 50), ok("zz", 51)]}, 2),             # a copy of a covered id in the new file
    ({"z": [ok("q", 50), ok("q", 51)]}, 2),               # copies within the new file only
    ({"z": [ok("fresh", 50)]}, 1),                        # no copy (r2 twice in the covered files)
])
def test_partial_rollup_store_never_gives_the_duplicates(tmp_path, monkeypatch, added, dups):
    """A store that covers only some files cannot rank copies (an uncovered file may repeat a
    covered id): the open reads the ids, and the count stays exact."""
    from monitoring.rollup import build, partial

    monkeypatch.setattr(partial, "MIN_COVERED_ROWS", 0)
    logs = tmp_path / "logs"
    write(logs, {"a": [ok("r1", 0), ok("r2", 1)], "b": [ok("r2", 5), ok("r3", 6)]})
    cfg = replace(config(tmp_path), logs=str(logs))
    build.build(cfg)
    write(logs, added)
    ws = open_workspace(cfg, logs=str(logs))
    assert ws.source.rollups is not None and not ws.source.rollups.complete
    assert_same(ws, three_passes(logs, cfg))
    assert ws.duplicates == dups
    assert ws.extent.rows == 4 + len(added["z"]) - dups

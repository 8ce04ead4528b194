"""Compaction: one sorted file per past day, and readers see every day once at every step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from monitoring.logger import PredictionLogger, compact
from monitoring.logger.compaction import _compact_day, drop_superseded, parse_duration
from tests.logger_helpers import health_of, read_rows, visible_files

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 10, 6, 0, tzinfo=UTC)
DAYS = [datetime(2026, 11, d, tzinfo=UTC) for d in (7, 8, 9, 10)]   # the 9th ended 6 h ago


def write_days(path: Path, per_flush: int = 37, flushes: int = 5, dropped: int = 0) -> Counter:
    """Several small files a day, rows out of order across files; returns rows per day."""
    lg = PredictionLogger(path, "m", "v1", flush_rows=10**9, flush_seconds=10**6,
                          max_queue_rows=per_flush, install_signal_handler=False)
    counts: Counter = Counter()
    k = 0
    for f in range(flushes):
        for day in DAYS:
            for i in range(per_flush):
                # Later flushes hold earlier times: compaction has to sort.
                ts = day + timedelta(hours=23 - f * 4, seconds=i * 7 % per_flush)
                lg.log(prediction=k % 2, latency_ms=float(k % 50), features={"k": k}, timestamp=ts)
                counts[ts.date().isoformat()] += 1
                k += 1
            if dropped and f == 0 and day == DAYS[0]:
                for _ in range(dropped):
                    lg.log(prediction=0, latency_ms=1.0, timestamp=day)   # queue full: dropped
            lg.flush()
    lg.close()
    return counts


def files_of(path: Path, day: str) -> list[str]:
    return [f for f in visible_files(path) if f"date={day}" in f]


@pytest.mark.parametrize(("older_than", "compacted"), [
    ("1d", ["2026-11-07", "2026-11-08"]),        # the 9th ended 6 h ago: kept as it is
    ("6h", ["2026-11-07", "2026-11-08", "2026-11-09"]),
    ("0", ["2026-11-07", "2026-11-08", "2026-11-09"]),   # the 10th has not ended
    ("4d", []),
])
def test_past_days_become_one_sorted_file_with_every_row(tmp_path, older_than, compacted):
    counts = write_days(tmp_path)
    before = read_rows(tmp_path).sort_by("request_id")
    results = compact(tmp_path, parse_duration(older_than), now=NOW, row_group_size=50)
    assert sorted(r.day for r in results if r.action == "compacted") == compacted
    for day, n in counts.items():
        files = files_of(tmp_path, day)
        if day in compacted:
            (f,) = files
            assert Path(f).name.startswith("compacted-")
            meta = pq.read_metadata(f)
            assert meta.num_rows == n
            assert all(meta.row_group(i).num_rows <= 50 for i in range(meta.num_row_groups))
            assert meta.num_row_groups == -(-n // 50)
            ts = pq.read_table(f, columns=["timestamp"])["timestamp"].to_pylist()
            assert ts == sorted(ts)
        else:
            assert len(files) == 5
    after = read_rows(tmp_path).sort_by("request_id")
    assert after.num_rows == before.num_rows == sum(counts.values())
    for col in ("request_id", "timestamp", "latency_ms", "prediction", "k", "status"):
        assert after[col].to_pylist() == before[col].to_pylist(), col


def test_compacted_logs_pass_the_source_checks(tmp_path):
    counts = write_days(tmp_path)
    compact(tmp_path, timedelta(0), now=NOW)
    ws, health = health_of(tmp_path, tmp_path.parent / f"{tmp_path.name}-data")
    assert health.total_rows == health.valid_rows == sum(counts.values())
    assert health.invalid_rows == {} and ws.duplicates == 0 and health.warnings == []


def test_metadata_of_the_merged_files_is_kept(tmp_path):
    write_days(tmp_path, dropped=3)
    sources = files_of(tmp_path, "2026-11-07")
    (r,) = [r for r in compact(tmp_path, timedelta(days=1), now=NOW) if r.day == "2026-11-07"]
    meta = pq.read_schema(r.output).metadata
    assert json.loads(meta[b"modelwatch.supersedes"]) == sorted(Path(f).name for f in sources)
    assert meta[b"modelwatch.dropped_rows"] == b"3"


# -- atomic for readers -----------------------------------------------------------------------

class Crash(Exception):
    pass


@pytest.mark.parametrize("crash_after", ["merged", "renamed", "removed"])
def test_readers_see_each_day_once_whatever_step_a_crash_interrupts(tmp_path, crash_after):
    counts = write_days(tmp_path)
    seen = {}

    def step(name: str, folder: Path) -> None:
        # What a reader scanning right now gets: every row of the day, once.
        rows = read_rows(tmp_path)
        day = folder.name.removeprefix("date=")
        seen[name] = Counter(t.date().isoformat() for t in rows["timestamp"].to_pylist())[day]
        assert len(set(rows["request_id"].to_pylist())) == rows.num_rows
        if name == "renamed":
            # The source applies the discovery rule: no copy, every row once.
            ws, health = health_of(tmp_path, tmp_path.parent / f"{tmp_path.name}-data")
            assert ws.duplicates == 0
            assert health.valid_rows == health.total_rows == sum(counts.values())
        if name == crash_after:
            raise Crash

    folder = tmp_path / "date=2026-11-07"
    with pytest.raises(Crash):
        _compact_day(DAYS[0].date(), folder, timedelta(days=1), 1_000_000, False, step)
    assert set(seen.values()) == {counts["2026-11-07"]}
    # The next run finishes the job: one file, every row once.
    compact(tmp_path, timedelta(days=1), now=NOW)
    (f,) = files_of(tmp_path, "2026-11-07")
    assert pq.read_metadata(f).num_rows == counts["2026-11-07"]
    assert [p.name for p in folder.iterdir() if p.name.endswith(".parquet")] == [Path(f).name]
    rows = read_rows(tmp_path)
    assert rows.num_rows == sum(counts.values()) == len(set(rows["request_id"].to_pylist()))


def test_a_file_arriving_after_compaction_is_merged_next_time(tmp_path):
    counts = write_days(tmp_path)
    compact(tmp_path, timedelta(days=1), now=NOW)
    with PredictionLogger(tmp_path, "m", "v1", install_signal_handler=False) as lg:   # a late flush
        lg.log(prediction=1, latency_ms=1.0, features={"k": -1}, timestamp=DAYS[0] + timedelta(hours=5))
    assert len(files_of(tmp_path, "2026-11-07")) == 2
    assert read_rows(tmp_path).num_rows == sum(counts.values()) + 1
    (r,) = [r for r in compact(tmp_path, timedelta(days=1), now=NOW) if r.day == "2026-11-07"]
    assert (r.files, r.rows) == (2, counts["2026-11-07"] + 1)
    assert len(files_of(tmp_path, "2026-11-07")) == 1


def test_with_a_grace_period_replaced_files_stay_hidden_until_a_later_run_removes_them(tmp_path):
    counts = write_days(tmp_path)
    folder = tmp_path / "date=2026-11-07"
    on_disk = lambda: sorted(p.name for p in folder.iterdir() if p.suffix == ".parquet")  # noqa: E731
    rows_of_day = lambda: sum(pq.read_metadata(f).num_rows for f in files_of(tmp_path, "2026-11-07"))  # noqa: E731
    small = on_disk()
    compact(tmp_path, timedelta(days=1), now=NOW, grace=timedelta(hours=1))
    (first,) = files_of(tmp_path, "2026-11-07")
    assert len(on_disk()) == len(small) + 1 and rows_of_day() == counts["2026-11-07"]
    # A late file, merged with the compacted one: the small files it hid stay hidden.
    with PredictionLogger(tmp_path, "m", "v1", install_signal_handler=False) as lg:
        lg.log(prediction=1, latency_ms=1.0, features={"k": -1}, timestamp=DAYS[0] + timedelta(hours=5))
    compact(tmp_path, timedelta(days=1), now=NOW, grace=timedelta(hours=1))
    (second,) = files_of(tmp_path, "2026-11-07")
    assert second != first and len(on_disk()) == len(small) + 3
    assert rows_of_day() == counts["2026-11-07"] + 1
    assert read_rows(tmp_path).num_rows == sum(counts.values()) + 1
    # Once hidden for longer than the grace period, a run removes them.
    old = time.time() - 2 * 3600
    for name in on_disk():
        os.utime(folder / name, (old, old))
    compact(tmp_path, timedelta(days=1), now=NOW, grace=timedelta(hours=1))
    assert on_disk() == [Path(second).name] and rows_of_day() == counts["2026-11-07"] + 1


def test_superseded_files_are_hidden_only_by_a_compacted_file_of_their_folder(tmp_path):
    write_days(tmp_path)
    c = compact(tmp_path, timedelta(days=1), now=NOW)[0].output
    d7, d9 = tmp_path / "date=2026-11-07", tmp_path / "date=2026-11-09"
    stale = d7 / "part-old.parquet"
    stale.write_bytes(b"x")
    other = d9 / "part-old.parquet"
    other.write_bytes(b"x")
    # A compacted file naming these two: only the one beside it is replaced.
    meta = pq.read_schema(c).metadata | {b"modelwatch.supersedes": json.dumps(["part-old.parquet"]).encode()}
    pq.write_table(pq.read_table(c).replace_schema_metadata(meta), c)
    files = [c, str(stale), str(other)]
    assert drop_superseded(files) == [c, str(other)]
    assert drop_superseded([str(stale), str(other)]) == [str(stale), str(other)]   # no compacted file


def test_a_second_compaction_of_the_same_day_waits_its_turn(tmp_path):
    import fcntl

    write_days(tmp_path)
    folder = tmp_path / "date=2026-11-07"
    with open(folder / ".compact.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        (r,) = [r for r in compact(tmp_path, timedelta(days=1), now=NOW) if r.day == "2026-11-07"]
    assert (r.action, r.reason) == ("skipped", "another compaction holds this day")
    assert len(files_of(tmp_path, "2026-11-07")) == 5


def test_unreadable_and_temporary_files_are_left_out(tmp_path):
    counts = write_days(tmp_path)
    folder = tmp_path / "date=2026-11-07"
    (folder / "part-broken.parquet").write_bytes(b"PAR1 not really")
    fresh, stale = folder / ".part-a.parquet.tmp", folder / ".part-b.parquet.tmp"
    fresh.write_bytes(b"half")
    stale.write_bytes(b"half")
    old = time.time() - 3 * 86400
    os.utime(stale, (old, old))
    (r,) = [r for r in compact(tmp_path, timedelta(days=1), now=NOW) if r.day == "2026-11-07"]
    assert r.rows == counts["2026-11-07"] and r.unreadable == (str(folder / "part-broken.parquet"),)
    assert (folder / "part-broken.parquet").exists() and fresh.exists() and not stale.exists()


# -- command line ---------------------------------------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitoring", "compact", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_compacts_and_says_what_it_did(tmp_path):
    write_days(tmp_path)   # 2026-11: long over by the real clock
    dry = cli("--logs", str(tmp_path), "--older-than", "1d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "2026-11-07: would merge 5 files" in dry.stdout
    assert all(len(files_of(tmp_path, d.date().isoformat())) == 5 for d in DAYS)
    out = cli("--logs", str(tmp_path), "--older-than", "1d")
    assert out.returncode == 0, out.stderr
    assert "compacted 4 of 4 day(s)" in out.stdout
    assert "2026-11-07: 5 files, 185 rows -> compacted-20261107-" in out.stdout
    assert all(len(files_of(tmp_path, d.date().isoformat())) == 1 for d in DAYS)


@pytest.mark.parametrize(("args", "message"), [
    (["--older-than", "yesterday"], "--older-than must look like 1d"),
    (["--older-than", "1d", "--row-group-size", "0"], "--row-group-size must be positive"),
    (["--grace", "soon"], "--grace must look like 1d"),
    (["--logs", "{missing}"], "must be a folder"),
    (["--logs", "{file}"], "must be a folder"),
])
def test_cli_bad_input_is_one_sentence(tmp_path, args, message):
    (tmp_path / "f.parquet").write_bytes(b"x")
    args = [a.format(missing=tmp_path / "nope", file=tmp_path / "f.parquet") for a in args]
    if "--logs" not in args:
        args += ["--logs", str(tmp_path)]
    out = cli(*args)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(("text", "seconds"), [("1d", 86400), ("12h", 43200), ("30m", 1800),
                                               ("2w", 1209600), ("90", 90), ("1.5h", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_the_source_sees_no_copy_between_rename_and_remove(tmp_path):
    """discover.resolve_paths applies drop_superseded: readers see each day exactly once."""
    counts = write_days(tmp_path)
    checked = []

    def step(name: str, folder: Path) -> None:
        if name == "renamed":
            ws, health = health_of(tmp_path, tmp_path.parent / f"{tmp_path.name}-data-{name}")
            assert ws.duplicates == 0 and health.invalid_rows == {}
            assert health.total_rows == health.valid_rows == sum(counts.values())
            checked.append(name)

    _compact_day(DAYS[0].date(), tmp_path / "date=2026-11-07", timedelta(days=1), 1_000_000, False, step)
    assert checked == ["renamed"]

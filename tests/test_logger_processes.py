"""The logger across processes: kill -9 mid-stream, 8 writers at once, exit and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from monitoring.logs.source import resolve_paths
from tests.logger_helpers import health_of, read_rows, visible_files

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.xdist_group("logger-processes")   # keeps the spawning tests on one worker


def worker(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.logger_worker", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.parametrize("files_before_kill", [1, 4, 9])
def test_kill_9_mid_stream_leaves_readable_files_and_loses_only_unflushed_rows(tmp_path, files_before_kill):
    logs = tmp_path / "logs"
    p = worker("stream", str(logs))
    reported = []
    try:
        for line in p.stdout:
            reported.append(int(line.split()[1]))
            if len(reported) >= files_before_kill:
                break
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == -signal.SIGKILL
    assert reported, p.stderr.read()

    # Every file a reader finds is complete (temporary files are hidden and skipped).
    files = visible_files(logs)
    assert files and set(resolve_paths(str(logs))) == set(files)
    for f in files:
        pq.read_table(f)
    seqs = sorted(read_rows(logs)["seq"].to_pylist())
    # One producer, files written in order: the rows on disk are exactly rows 0..n-1, i.e.
    # every flush that completed is there, in full, and only later rows are missing.
    assert seqs == list(range(len(seqs)))
    assert len(seqs) >= reported[-1]
    assert len(seqs) == sum(pq.read_metadata(f).num_rows for f in files)
    ws, health = health_of(logs, tmp_path / "data")
    assert health.invalid_rows == {} and health.bad_files == [] and health.total_rows == len(seqs)


def test_eight_processes_writing_at_once_lose_and_duplicate_nothing(tmp_path):
    logs, go, n = tmp_path / "logs", tmp_path / "go", 3000
    procs = [worker("burst", str(logs), f"w{k}", str(n), str(go)) for k in range(8)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        go.touch()   # all eight are running: they now write at the same time
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.split() == ["done", str(n), "0"]

    rows = read_rows(logs)
    pairs = Counter(zip(rows["writer"].to_pylist(), rows["seq"].to_pylist(), strict=True))
    assert set(pairs) == {(f"w{k}", s) for k in range(8) for s in range(n)}
    assert max(pairs.values()) == 1
    ids = rows["request_id"].to_pylist()
    assert len(set(ids)) == len(ids) == 8 * n
    files = visible_files(logs)
    writers = {json.loads(pq.read_schema(f).metadata[b"modelwatch.writer"])["pid"] for f in files}
    assert writers == {p.pid for p in procs}
    assert len(files) >= 8

    ws, health = health_of(logs, tmp_path / "data")
    assert health.total_rows == health.valid_rows == 8 * n
    assert health.invalid_rows == {} and ws.duplicates == 0


def test_rows_still_queued_at_exit_are_written(tmp_path):
    p = worker("exit", str(tmp_path), "250")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert sorted(read_rows(tmp_path)["seq"].to_pylist()) == list(range(250))


@pytest.mark.parametrize(("previous", "returncode", "marker"), [
    ("default", -signal.SIGTERM, ""),                  # flushed, then SIGTERM's own ending
    ("python", 0, "previous handler ran"),             # flushed, then the app's handler
    ("ignore", None, ""),                              # flushed, and the process lives on
])
def test_sigterm_writes_what_is_queued_then_runs_the_previous_handler(tmp_path, previous,
                                                                      returncode, marker):
    p = worker("sigterm", str(tmp_path), "300", previous, stdin=subprocess.PIPE)
    try:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
        os.kill(p.pid, signal.SIGTERM)
        if returncode is None:
            p.stdin.write("stats\n")
            p.stdin.flush()
            assert p.stdout.readline().strip() == "written 300"
            p.stdin.close()
            assert p.wait(timeout=60) == 0, p.stderr.read()
        else:
            out, err = p.communicate(timeout=60)
            assert p.returncode == returncode, err
            assert out.strip() == marker
    finally:
        if p.poll() is None:
            p.kill()
    assert sorted(read_rows(tmp_path)["seq"].to_pylist()) == list(range(300))

"""DuckDB spills under the data folder, one folder per process, not into the working
directory's `.tmp/` (DuckDB's default for in-memory connections)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from monitoring.config import load_config
from monitoring.logs.sql import connect

# 8M groups of a hash aggregate under a 60 MB limit: DuckDB has to spill to finish
SPILLS = ("SELECT count(*), sum(c) FROM (SELECT range % 8000000 AS g, count(*) AS c, max(repeat('v', 10)) AS m "
          "FROM range(16000000) GROUP BY g)")


@pytest.mark.parametrize("data_dir", ["data", "with 'quote", "nested/deeper"])
def test_a_query_over_the_memory_limit_spills_under_the_data_folder(tmp_path, monkeypatch, data_dir):
    monkeypatch.chdir(tmp_path)
    cfg = replace(load_config(overrides={}), data_dir=str(tmp_path / data_dir), duckdb_memory_limit="60MB")
    con = connect(cfg)
    spill = (tmp_path / data_dir).resolve() / "spill" / str(os.getpid())
    assert Path(con.execute("SELECT current_setting('temp_directory')").fetchone()[0]) == spill
    assert con.execute(SPILLS).fetchone() == (8_000_000, 16_000_000)
    assert any(spill.iterdir())                 # it did spill, there
    con.close()
    assert not spill.exists()                   # and DuckDB removed its folder on close
    assert not (tmp_path / ".tmp").exists()


def test_a_data_folder_that_cannot_be_made_keeps_duckdbs_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("not a folder")
    cfg = replace(load_config(overrides={}), data_dir=str(tmp_path / "file" / "data"))
    con = connect(cfg)                          # no error: spilling keeps DuckDB's own folder
    assert "file" not in con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    con.close()


# A child process that spills, says so, and then waits to be killed (SIGKILL: DuckDB cannot
# remove its folder). Run with the data folder as its only argument.
_CHILD = f"""
import sys, time
from dataclasses import replace
from monitoring.config import load_config
from monitoring.logs.sql import connect
con = connect(replace(load_config(overrides={{}}), data_dir=sys.argv[1], duckdb_memory_limit="60MB"))
assert con.execute({SPILLS!r}).fetchone() == (8_000_000, 16_000_000)
print("spilled", flush=True)   # its files stay until the connection closes
time.sleep(600)
"""


def test_opening_a_workspace_removes_the_spill_folders_of_dead_processes_only(tmp_path, sample_logs):
    import signal
    import subprocess
    import sys

    from monitoring.logs.workspace import open_workspace

    data = tmp_path / "data"
    root = Path(__file__).resolve().parents[1]
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(data)], cwd=root, stdout=subprocess.PIPE,
                             text=True, env=os.environ | {"PYTHONPATH": str(root)})
    try:
        assert child.stdout.readline().strip() == "spilled"
        dead = data.resolve() / "spill" / str(child.pid)
        assert any(dead.iterdir())                  # the child's spill files
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert any(dead.iterdir())                      # killed: nobody removed them
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        kept = data.resolve() / "spill" / str(alive.pid)
        kept.mkdir()
        (kept / "file").write_text("in use")
        other = data.resolve() / "spill" / "notes"  # not a pid: not ours to judge
        other.mkdir()
        cfg = replace(load_config(overrides={}), data_dir=str(data), logs=str(sample_logs))
        ws = open_workspace(cfg)
        assert ws.extent.rows > 0
        assert not dead.exists()                    # the dead process's folder is gone
        assert (kept / "file").read_text() == "in use"   # a live process's is untouched
        assert other.is_dir()
        ws.con.close()
    finally:
        alive.kill()
        alive.wait()

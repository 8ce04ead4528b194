"""scripts/bench_browser.py --data-dir: the given data folder's rollup store is checked (one
sentence when it cannot be used), its facts cache written once, and the server's data folder
links only the store and that cache; the server CPU it reports is the kernel's figure. The
browser timings themselves are `make bench`'s."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import duckdb
import pytest

from monitoring.config import load_config
from monitoring.rollup.build import build

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_browser", ROOT / "scripts" / "bench_browser.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.fixture(scope="module")
def logs_copy(generated_logs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench-logs") / "logs"
    shutil.copytree(generated_logs, out)
    return out


@pytest.fixture(scope="module")
def built(logs_copy, tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("bench-data")
    build(load_config(overrides={"logs": str(logs_copy), "data_dir": str(data)}))
    return data


def _rows(logs: Path) -> int:
    return duckdb.sql(f"select count(*) from read_parquet('{logs}/**/*.parquet')").fetchall()[0][0]


@pytest.mark.parametrize("case, says", [
    ("empty folder", "holds no rollup store for"),
    ("a file added since the build", "holds a store out of date (0 stale, 1 new, 0 removed file(s)"),
])
def test_an_unusable_store_is_one_sentence(case, says, logs_copy, built, tmp_path):
    logs, data = logs_copy, tmp_path / "data"
    if case == "empty folder":
        data.mkdir()
    else:
        logs = tmp_path / "logs"
        shutil.copytree(logs_copy, logs)
        build(load_config(overrides={"logs": str(logs), "data_dir": str(data)}))
        day = sorted(p for p in logs.iterdir() if p.is_dir())[-1]
        shutil.copytree(day, logs / "date=2099-01-01")
    with pytest.raises(SystemExit) as exc:
        bench.prepare(str(logs), str(data))
    text = str(exc.value)
    assert says in text and "python -m monitoring rollup build --logs" in text and "\n" not in text


def test_a_built_store_is_described_and_its_facts_cache_written_once(logs_copy, built):
    files = len(list(logs_copy.rglob("*.parquet")))
    rows = _rows(logs_copy)
    first = bench.prepare(str(logs_copy), str(built))
    assert f"({files} files, {rows:,} rows, built " in first
    assert "a workspace facts cache written first" in first
    assert any((built / "cache").iterdir())
    again = bench.prepare(str(logs_copy), str(built))
    assert "and its workspace facts cache;" in again


@pytest.mark.parametrize("with_built", [False, True])
def test_the_server_folder_links_only_the_store_and_the_facts_cache(with_built, logs_copy, built, tmp_path):
    """The store and the workspace facts are linked; the results a server keeps (chance bands,
    alert evaluations) are not, so a first visit computes them as a new user's would."""
    built = Path(shutil.copytree(built, tmp_path / "built"))   # the module's store stays as it is
    bench.prepare(str(logs_copy), str(built))                   # its workspace facts cache
    facts = {p.name for p in (built / "cache").iterdir()} - set(bench.KEPT_RESULTS)
    for kept in bench.KEPT_RESULTS:   # what an earlier server left in the built folder
        (built / "cache" / kept).mkdir(exist_ok=True)
        (built / "cache" / kept / "x.json").write_text("{}")
    server = tmp_path / "server"
    server.mkdir()
    folder = Path(bench._data_folder(str(server), str(built) if with_built else None))
    if not with_built:
        assert not any(folder.iterdir())
        return
    assert {p.name for p in folder.iterdir()} == {"rollups", "cache"}
    assert (folder / "rollups").is_symlink() and (folder / "rollups").resolve() == (built / "rollups").resolve()
    assert not (folder / "cache").is_symlink()
    assert facts and {p.name for p in (folder / "cache").iterdir()} == facts
    for name in facts:
        assert (folder / "cache" / name).resolve() == (built / "cache" / name).resolve()


def test_a_timed_out_visit_is_reported_as_such_and_the_rest_as_measured():
    import math
    rows = bench.table({"A": [1.234, 0.3, 0.4], "Drift": [math.inf, 0.5, 0.7], "B": [2.0], "C": [0.9, math.inf]})
    lines = rows.splitlines()[2:]
    assert lines == ["| A | 1.23 | 0.35 |", "| Drift | > 180 (timed out) | 0.60 |", "| B | 2.00 | – |",
                     "| C | 0.90 | > 180 (timed out) |"]


def test_server_cpu_reads_the_process_cpu_seconds_from_proc():
    import os

    spent = 0.0
    for i in range(300_000):   # some CPU of this process's own, so the figure is not zero
        spent += i ** 0.5
    t = os.times()
    got = bench.server_cpu(os.getpid())
    tick = 1 / os.sysconf("SC_CLK_TCK")
    # The oracle: the kernel's own figures for this process through os.times (same clock ticks).
    assert got > 0
    assert t.user + t.system - 2 * tick <= got <= t.user + t.system + 0.5


def test_the_table_gives_the_server_cpu_of_a_first_visit_and_the_median_switch():
    rows = bench.table({"A": [1.234, 0.3, 0.4, 0.9], "B": [2.0]},
                       {"A": [0.5, 0.02, 0.06, 0.04], "B": [1.7]})
    head, _, *lines = rows.splitlines()
    assert head.endswith("| server CPU, first visit (s) | server CPU, switch (s) |")
    assert lines == ["| A | 1.23 | 0.40 | 0.50 | 0.04 |", "| B | 2.00 | – | 1.70 | – |"]

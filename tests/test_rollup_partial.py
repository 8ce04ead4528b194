"""Partial coverage: a store built before a file was added, changed or removed answers for
the files it still covers, the raw logs for the rest, and every figure equals the raw path
(the oracle: the same call with no store attached), duplicates across files included.

Each scenario copies generated logs with every incident plus a file of duplicate copies
(tests.test_rollup.add_duplicates: copies of days 3 and 4, some earlier than their first
copy, a request repeated in the file, invalid rows), builds a store, then changes the logs
so that copies and their first copies fall on both sides of covered and uncovered files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring import sample
from monitoring.config import load_config
from monitoring.logs.workspace import open_workspace
from monitoring.metrics import anomalies, sketch
from monitoring.metrics import service as metrics
from monitoring.query.filters import BUCKETS, Filters
from monitoring.rollup import build, partial, read
from tests.test_rollup import add_duplicates

ROOT = Path(__file__).resolve().parent.parent
START = sample.DEFAULT_START
INC = {i.name: i for i in sample.incidents(START, 30)}
COPIES = "date=2026-10-28/part-1.parquet"     # add_duplicates' file
FIRSTS = "date=2026-10-27/part-0.parquet"     # holds the first copies of 50 of its rows


def _hold_out(logs: Path, rel: str, away: Path) -> None:
    away.mkdir(parents=True, exist_ok=True)
    shutil.move(logs / rel, away / rel.replace("/", "__"))


def _bring_back(logs: Path, rel: str, away: Path) -> None:
    shutil.move(away / rel.replace("/", "__"), logs / rel)


def _rewrite(path: Path, keep: slice) -> None:
    t = pq.read_table(path)
    pq.write_table(t.slice(keep.start, (keep.stop or t.num_rows) - keep.start), path)


def _extra_column(logs: Path) -> None:
    t = pq.read_table(logs / "date=2026-11-22" / "part-0.parquet")
    t = t.append_column("queue_depth", pa.array(np.arange(t.num_rows, dtype=np.int64)))
    pq.write_table(t, logs / "date=2026-11-22" / "part-1.parquet")


# name -> (before the build, after it); `away` is a folder outside the logs
SCENARIOS = {
    # new file: copies whose first copy is covered, and earlier copies whose later (extra)
    # copy is in a covered file
    "added: the copies' file": (lambda logs, away: _hold_out(logs, COPIES, away),
                                lambda logs, away: _bring_back(logs, COPIES, away)),
    "added: a new day": (lambda logs, away: _hold_out(logs, "date=2026-11-22/part-0.parquet", away),
                         lambda logs, away: _bring_back(logs, "date=2026-11-22/part-0.parquet", away)),
    # the copies' file loses its invalid rows: its copies are now uncovered
    "changed: the copies' file": (None, lambda logs, away: _rewrite(logs / COPIES, slice(0, 85))),
    # 20 first copies disappear, so their covered copies become first copies
    "changed: a file of first copies": (None, lambda logs, away: _rewrite(logs / FIRSTS, slice(20, None))),
    "removed: a file of first copies": (None, lambda logs, away: (logs / FIRSTS).unlink()),
    "removed: the copies' file": (None, lambda logs, away: (logs / COPIES).unlink()),
}


@pytest.fixture(scope="module", params=list(SCENARIOS))
def scenario(request, generated_logs, tmp_path_factory):
    """(name, workspace with the partial store attached, raw source: the oracle)."""
    name = request.param
    before, after = SCENARIOS[name]
    d = tmp_path_factory.mktemp("partial")
    logs, away = d / "logs", d / "away"
    shutil.copytree(generated_logs, logs)
    add_duplicates(logs)
    if before:
        before(logs, away)
    cfg = replace(load_config(overrides={"logs": str(logs)}), data_dir=str(d / "data"))
    build.build(cfg)
    after(logs, away)
    ws = open_workspace(cfg)
    raw = replace(ws.source, rollups=None)
    ws.source.rollups = partial.cover(read.open_store(cfg), ws.source, min_rows=0)
    return name, ws, raw


WINDOWS = [
    ("whole", None, None, ("hour", "day")),
    ("error burst", INC["error_burst"].start - timedelta(hours=3), INC["error_burst"].end + timedelta(minutes=47),
     ("minute", "hour")),
    ("spike, unaligned", INC["traffic_spike"].start - timedelta(minutes=37),
     INC["traffic_spike"].end + timedelta(minutes=13), ("minute", "15min")),
    ("gap", INC["downtime_gap"].start - timedelta(hours=1), INC["downtime_gap"].end + timedelta(hours=1),
     ("minute", "hour")),
    ("duplicates' days", START + timedelta(days=3), START + timedelta(days=5), ("hour", "day")),
]
FILTERS = [{}, {"model_versions": ("v3",)}, {"endpoints": ("/v2/predict",)}]


def _built_copy(generated_logs: Path, tmp_path: Path):
    """A copy of the generated logs with its store built: (logs folder, config)."""
    logs = tmp_path / "logs"
    shutil.copytree(generated_logs, logs)
    cfg = replace(load_config(overrides={"logs": str(logs)}), data_dir=str(tmp_path / "data"))
    build.build(cfg)
    return logs, cfg


def _window(ws, start, end, extra) -> Filters:
    if start is None:
        start = ws.extent.first.replace(second=0, microsecond=0)
        end = ws.extent.last.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return Filters(start=start, end=end, **extra)


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(df.columns, nulls_last=True)


def window_figures(src, con, f: Filters) -> dict:
    """The figures of one window that no bucket enters: per dimension, minute counts, gaps."""
    out = {}
    for exact in (0, 2_000_000):
        for dim in metrics.DIMENSIONS:
            out[f"{dim} {exact}"] = metrics.by_dimension(src, con, f, dim, exact_max_rows=exact)
    counts = anomalies.minute_counts(src, con, f)
    out["minute counts"] = counts
    out["gaps"] = anomalies.find_gaps(counts, f, load_config().slo)
    return out


def bucket_figures(src, con, f: Filters, bucket: str, counts: pl.DataFrame) -> dict:
    """The figures of one window and bucket (`counts`: the window's minute counts)."""
    b = BUCKETS[bucket]
    out = {
        "rollup": _sorted(metrics.rollup(src, con, f, b, True)),
        "rollup, previous total": _sorted(metrics.rollup(src, con, f, b, True, previous_total=True)),
        "error types": metrics.error_types(src, con, f, bucket),
    }
    for exact in (0, 2_000_000):
        s = metrics.summarize(src, con, f, bucket, with_previous=True, exact_max_rows=exact)
        out[f"KPIs {exact}"] = (s.window, s.previous)
        out[f"buckets {exact}"] = s.buckets
        out[f"histogram {exact}"] = s.hist
    frame, spikes = anomalies.find_spikes(counts, f, bucket, load_config().slo)
    out["spikes"] = (frame, spikes)
    return out


def figures(src, con, f: Filters, *buckets: str) -> dict:
    """Every figure of `metrics` and `anomalies` for one window and each bucket (the
    bucket-free ones asked once: the same call with the same arguments)."""
    out = window_figures(src, con, f)
    for bucket in buckets:
        out |= {(bucket, k): v for k, v in bucket_figures(src, con, f, bucket, out["minute counts"]).items()}
    return out


def _same(a, b) -> bool:
    if isinstance(a, pl.DataFrame):
        return a.equals(b)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


# scenario -> (files read raw, extra copies inside covered files)
SHAPES = {
    "added: the copies' file": (1, True),         # the earlier copies' originals are covered
    "added: a new day": (1, True),
    "changed: the copies' file": (1, True),
    "changed: a file of first copies": (1, True),
    "removed: a file of first copies": (0, True),  # copies repeated in the copies' file
    "removed: the copies' file": (0, False),       # no duplicates left at all
}


def test_the_store_is_partial_and_copies_fall_on_both_sides(scenario):
    name, ws, raw = scenario
    store = ws.source.rollups
    assert not store.complete and store.covered_files
    mix = partial.mix_of(ws.source, ws.con)
    rest, copies = SHAPES[name]
    assert len(store.rest_files) == rest and (mix.rest is None) == (rest == 0)
    assert (mix.copies is not None) == copies == (ws.duplicates > 0)
    if copies:   # every copy the workspace drops inside a covered file, and no other
        d = ws.con.sql(f"SELECT file, row_number AS row FROM {ws.source.dedupe_table}").pl()
        inside = d.filter(pl.col("file").is_in(list(store.covered_files)))
        assert _sorted(mix.copies.frame.select("file", "row")).equals(_sorted(inside.cast(mix.copies.frame.select("file", "row").schema)))


CASES = [(*w, {}) for w in WINDOWS] + [(*WINDOWS[0], FILTERS[1]), (*WINDOWS[4], FILTERS[2]),
                                        (*WINDOWS[1], FILTERS[1])]
# The windows that hold the changed files (the whole range, the duplicates' days) in every
# scenario; the incident windows, whose minutes and edges lie in files every scenario covers
# (5-13 November), in the scenario with a file read raw and copies across it.
EDGES_IN = ("added: the copies' file",)


def test_every_figure_equals_the_raw_answer(scenario):
    name, ws, raw = scenario
    cases = [c for c in CASES if c[0] in ("whole", "duplicates' days") or name in EDGES_IN]
    assert len(cases) == (len(CASES) if name in EDGES_IN else 4)
    for label, start, end, buckets, extra in cases:
        f = _window(ws, start, end, extra)
        got, want = figures(ws.source, ws.con, f, *buckets), figures(raw, ws.con, f, *buckets)
        assert len(want) == 10 + 10 * len(buckets)
        for k in want:
            assert _same(got[k], want[k]), (name, label, extra, k)


def _valid_rows(ws) -> pl.DataFrame:
    """Every valid row of the files as they are (pyarrow, the contract by hand), ranked among
    the copies of its request id by (time, file, row): k = 1 is the copy kept."""
    rows = []
    for path in ws.source.files:
        t = pl.from_arrow(pq.read_table(path)).with_row_index("row").with_columns(pl.lit(path).alias("file"))
        rows.append(t.select("request_id", "timestamp", "latency_ms", "file", "row", "status", "model_version"))
    df = pl.concat(rows).filter(pl.col("latency_ms").is_not_null() & pl.col("latency_ms").is_finite()
                                & (pl.col("latency_ms") >= 0) & pl.col("timestamp").is_not_null()
                                & pl.col("request_id").is_not_null() & pl.col("status").is_not_null()
                                & pl.col("model_version").is_not_null())
    return df.sort("timestamp", "file", "row").with_columns(
        pl.int_range(pl.len()).over("request_id").alias("k") + 1,
        pl.col("file").first().over("request_id").alias("first_file"))


def test_counts_are_exact_against_a_count_of_the_files(scenario):
    """An oracle outside the code: requests per day from pyarrow, duplicates removed by the
    rule (first copy by time, file, row), invalid rows left out."""
    name, ws, raw = scenario
    df = _valid_rows(ws).filter(pl.col("k") == 1)
    want = df.group_by(pl.col("timestamp").dt.truncate("1d").alias("day")).len().sort("day")
    f = Filters(start=START, end=START + timedelta(days=31))
    got = metrics.summarize(ws.source, ws.con, f, "day", exact_max_rows=0).buckets.select("time", "requests")
    assert got["requests"].sum() == df.height == ws.extent.rows
    assert got["requests"].to_list() == want["len"].to_list()


# scenario -> extra copies (in a covered file with an uncovered first copy, the reverse),
# counted from add_duplicates: 40 copies of day 27's rows 0-39, 30 + 5 of day 28's rows
# 100-129, 10 of day 27's rows 200-209 an hour earlier (the copy is the first), in COPIES
ACROSS = {
    "added: the copies' file": (10, 40 + 30 + 5),     # COPIES uncovered: the 10 covered originals are extra
    "changed: the copies' file": (10, 40 + 30 + 5),   # the same rows, its invalid ones gone
    # FIRSTS uncovered, without rows 0-19: copies of rows 20-39 are covered extras, the 10
    # originals of the earlier copies uncovered extras (copies of rows 0-19 are no copies now)
    "changed: a file of first copies": (20, 10),
    "added: a new day": (0, 0),                       # no copies in the new day
    "removed: a file of first copies": (0, 0),        # nothing uncovered
    "removed: the copies' file": (0, 0),
}


def test_copies_across_covered_and_uncovered_files(scenario):
    """The cases the store's correction cannot know, counted by hand: a copy in a covered
    file whose first copy is in an uncovered one (an earlier retry in the new file), and the
    reverse. The figures above equal the raw ones with them in place."""
    name, ws, raw = scenario
    covered = set(ws.source.rollups.covered_files)
    extra = _valid_rows(ws).filter(pl.col("k") > 1)
    into_covered = extra.filter(pl.col("file").is_in(covered) & ~pl.col("first_file").is_in(covered)).height
    into_rest = extra.filter(~pl.col("file").is_in(covered) & pl.col("first_file").is_in(covered)).height
    assert (into_covered, into_rest) == ACROSS[name]


def test_percentiles_within_the_sketch_bound(scenario):
    name, ws, raw = scenario
    f = _window(ws, INC["latency_regression"].start - timedelta(days=1), INC["latency_regression"].end, {})
    s = metrics.summarize(ws.source, ws.con, f, "6hour", exact_max_rows=0)
    cond, params = f.where()
    v = raw.query(ws.con, f"SELECT latency_ms FROM logs WHERE {cond} AND NOT is_error", params)["latency_ms"].to_numpy()
    for q in (50, 95, 99):
        want = np.percentile(v, q)
        assert abs(getattr(s.window, f"p{q}") - want) <= sketch.RELATIVE_ERROR * want + 1e-9


def test_a_schema_change_reads_the_raw_logs(generated_logs, tmp_path):
    logs, cfg = _built_copy(generated_logs, tmp_path)
    _extra_column(logs)
    ws = open_workspace(cfg)
    with pytest.raises(read.NotCovered, match="columns changed"):
        partial.cover(read.open_store(cfg), ws.source, min_rows=0)
    assert ws.source.rollups is None
    f = _window(ws, None, None, {})
    raw = replace(ws.source, rollups=None)
    got, want = figures(ws.source, ws.con, f, "day"), figures(raw, ws.con, f, "day")
    assert all(_same(got[k], want[k]) for k in want)


@pytest.mark.parametrize(("min_rows", "attached"), [(0, "partial"), (10**9, None)])
def test_few_covered_rows_read_the_raw_logs(generated_logs, tmp_path, min_rows, attached):
    logs, cfg = _built_copy(generated_logs, tmp_path)
    _rewrite(logs / FIRSTS, slice(5, None))
    ws = open_workspace(cfg)
    store = read.open_store(cfg)
    if attached is None:
        with pytest.raises(read.NotCovered, match="cheaper than the raw logs"):
            partial.cover(store, ws.source, min_rows=min_rows)
    else:
        assert not partial.cover(store, ws.source, min_rows=min_rows).complete
    # the workspace uses the measured default: these logs (45k rows) are below it
    assert ws.source.rollups is None and partial.MIN_COVERED_ROWS > ws.extent.rows


def test_a_partial_store_refuses_readers_that_cannot_add_the_rest(scenario):
    """Drift tables (features.py) read `relation` without `partial`: a partial store says
    so in one sentence, and those readers fall back to the raw logs."""
    name, ws, raw = scenario
    with pytest.raises(read.NotCovered, match=r"cover \d+ of \d+ log files"):
        ws.source.rollups.relation("numeric")


OTHER_ZONE_SCRIPT = """
import sys
from tests.test_rollup_partial import check_in_process
check_in_process(sys.argv[1], sys.argv[2])
print("same")
"""


def check_in_process(generated: str, tmp: str) -> None:
    """One scenario end to end (the copies' file added after the build), every figure of the
    windows bucketed by day (where a zone could move a row: the minute windows' buckets are
    the same in every zone)."""
    from tests.test_rollup_partial import SCENARIOS as S

    logs, away = Path(tmp) / "logs", Path(tmp) / "away"
    shutil.copytree(generated, logs)
    add_duplicates(logs)
    before, after = S["added: the copies' file"]
    before(logs, away)
    cfg = replace(load_config(overrides={"logs": str(logs)}), data_dir=str(Path(tmp) / "data"))
    build.build(cfg)
    after(logs, away)
    ws = open_workspace(cfg)
    raw = replace(ws.source, rollups=None)
    ws.source.rollups = partial.cover(read.open_store(cfg), ws.source, min_rows=0)
    assert not ws.source.rollups.complete
    for _, start, end, buckets in (w for w in WINDOWS if "day" in w[3]):
        f = _window(ws, start, end, {})
        got, want = figures(ws.source, ws.con, f, *buckets), figures(raw, ws.con, f, *buckets)
        bad = [k for k in want if not _same(got[k], want[k])]
        assert not bad, bad


def test_in_the_other_zone(generated_logs, tmp_path):
    """The scenario above in a process of another zone: UTC from New York, where `make test`
    runs this module, New York from anywhere else."""
    zone = "UTC" if os.environ.get("TZ") == "America/New_York" else "America/New_York"
    env = os.environ | {"TZ": zone, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", OTHER_ZONE_SCRIPT, str(generated_logs), str(tmp_path)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().endswith("same"), r.stderr[-3000:]


def test_the_workspace_attaches_a_partial_store(generated_logs, tmp_path, monkeypatch):
    """The path every page, `stats`, `summary` and `alerts` take: open_workspace covers the
    store (here with the row threshold lowered to these small logs)."""
    monkeypatch.setattr(partial, "MIN_COVERED_ROWS", 0)
    logs, cfg = _built_copy(generated_logs, tmp_path)
    add_duplicates(logs)
    ws = open_workspace(cfg)
    store = ws.source.rollups
    assert store is not None and not store.complete
    assert store.rest_files == (str(logs / COPIES),)
    f = _window(ws, *WINDOWS[4][1:3], {})
    raw = replace(ws.source, rollups=None)
    got, want = figures(ws.source, ws.con, f, "hour"), figures(raw, ws.con, f, "hour")
    assert all(_same(got[k], want[k]) for k in want)

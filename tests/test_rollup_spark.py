"""The Spark engine writes the same rollup files as the DuckDB engine: same parts, same
bins, same counts (sums of floats to 1e-9), on generated logs with incidents and duplicates.

Needs PySpark (`pip install .[spark]`, installed by `make test`) and Java 17+."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from monitoring.config import load_config
from monitoring.rollup import build, read
from monitoring.rollup import store as st
from monitoring.rollup.tables import TABLES
from tests.test_rollup import add_duplicates

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]


@pytest.fixture(scope="session")
def spark():
    """One local[2] session for the whole test session (starting one takes ~15 s)."""
    pytest.importorskip("pyspark", reason="the [spark] extra is not installed (make test installs it)")
    if shutil.which("java") is None:
        pytest.fail("Java 17+ is needed for Spark: scripts/system-deps.sh installs openjdk-17-jre-headless")
    from monitoring.rollup import spark as spark_engine

    s = spark_engine.session("local[2]")
    yield s
    s.stop()
    spark_engine._SESSION = None


def parts_of(root: Path) -> dict[str, pl.DataFrame]:
    """Every table part by part (the files as written), sorted."""
    out = {}
    for name, t in TABLES.items():
        if st.has_table(root, name):
            df = duckdb.sql(f"SELECT * FROM read_parquet('{st.glob_of(root, name)}', hive_partitioning=true)").pl()
            out[name] = df.select("part", *t.columns).sort(["part", *t.keys], nulls_last=True)
    return out


# The first 13 days of the generated logs: the duplicates' days (27-28 October), the income
# drift from 3 November and the error burst of the 5th. Spark runs jobs file by file (about a
# second each on local[2]), so the other 17 days would double the test, not its reach.
DAYS = 13


def test_spark_rollups_equal_duckdb_rollups(spark, generated_logs, tmp_path):
    logs = tmp_path / "logs"
    days = sorted(p for p in generated_logs.iterdir() if p.name.startswith("date="))[:DAYS]
    assert days[0].name == "date=2026-10-24" and days[-1].name == "date=2026-11-05"
    for day in days:
        shutil.copytree(day, logs / day.name)
    add_duplicates(logs)
    cfg = load_config(overrides={"logs": str(logs)})
    d = build.build(replace(cfg, data_dir=str(tmp_path / "duck")))
    s = build.build(replace(cfg, data_dir=str(tmp_path / "spark")), engine="spark", spark=spark)
    assert (s.rolled, s.duplicates) == (d.rolled, d.duplicates) and d.duplicates > 0
    a, b = parts_of(d.root), parts_of(s.root)
    assert a.keys() == b.keys() and {"traffic/minute", "numeric", "categorical", "outcomes", "ids"} <= a.keys()
    for name in a:
        x, y = a[name], b[name]
        assert x.schema == y.schema, name
        assert x.height == y.height > 0, name
        exact = [c for c in x.columns if c not in ("sum", "sum2")]
        assert x.select(exact).equals(y.select(exact)), name
        for c in ("sum", "sum2"):
            if c in x.columns:
                ok = x[c].is_not_null()
                np.testing.assert_allclose(x.filter(ok)[c].to_numpy(), y.filter(ok)[c].to_numpy(), rtol=1e-9)
    # and a reader over the Spark store answers like the DuckDB one
    con = duckdb.connect()
    f = read.Filters()
    ha = read.latency_hist(read.open_store(replace(cfg, data_dir=str(tmp_path / "duck"))), con, f, 3600)
    hb = read.latency_hist(read.open_store(replace(cfg, data_dir=str(tmp_path / "spark"))), con, f, 3600)
    k = ["period", "bucket", "is_error", "bin"]
    assert ha.sort(k).equals(hb.sort(k))

"""Log-histogram quantiles against numpy: always within the stated relative error."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from monitoring.metrics import sketch


def _hist(values: np.ndarray, groups: np.ndarray | None = None) -> pl.DataFrame:
    frame = {"bin": sketch.bin_of(values), "n": np.ones(len(values), dtype=np.int64)}
    if groups is not None:
        frame["g"] = groups
    df = pl.DataFrame(frame)
    keys = ["g", "bin"] if groups is not None else ["bin"]
    return df.group_by(keys).agg(pl.col("n").sum())


@pytest.mark.parametrize(("name", "values"), [
    ("lognormal", np.random.default_rng(1).lognormal(5, 1, 20_000)),
    ("single", np.array([123.4])),
    ("two", np.array([10.0, 1000.0])),
    ("ties", np.array([5.0] * 50 + [7.0] * 3)),
    ("with zeros", np.concatenate([np.zeros(10), np.random.default_rng(2).exponential(50, 500)])),
    ("wide", np.random.default_rng(3).uniform(0.01, 1e6, 5000)),
])
def test_quantiles_within_bound(name, values):
    q = sketch.quantiles(_hist(values), (0.5, 0.95, 0.99, 0.0, 1.0))
    assert q["n"][0] == len(values)
    for col, p in (("p50", 50), ("p95", 95), ("p99", 99), ("p0", 0), ("p100", 100)):
        exact = np.percentile(values, p)
        assert abs(q[col][0] - exact) <= sketch.RELATIVE_ERROR * exact + 1e-12, (name, col)


def test_grouped_quantiles_match_each_group():
    rng = np.random.default_rng(4)
    values = rng.lognormal(4, 0.8, 9000)
    groups = rng.integers(0, 7, 9000)
    q = sketch.quantiles(_hist(values, groups), (0.5, 0.99), by="g").sort("g")
    for row in q.iter_rows(named=True):
        sel = values[groups == row["g"]]
        assert row["n"] == len(sel)
        for col, p in (("p50", 50), ("p99", 99)):
            exact = np.percentile(sel, p)
            assert abs(row[col] - exact) <= sketch.RELATIVE_ERROR * exact


def test_histograms_merge_by_adding_counts():
    rng = np.random.default_rng(5)
    a, b = rng.lognormal(5, 1, 3000), rng.lognormal(6, 0.5, 2000)
    merged = pl.concat([_hist(a), _hist(b)])
    q = sketch.quantiles(merged, (0.95,))
    exact = np.percentile(np.concatenate([a, b]), 95)
    assert abs(q["p95"][0] - exact) <= sketch.RELATIVE_ERROR * exact


def test_sql_bins_equal_numpy_bins(con):
    values = [0.0, 1e-3, 0.5, 1.0, 1.0001, 99.9, 2000.0, 123456.7]
    got = con.execute(
        f"SELECT {sketch.bin_sql('x')} AS b FROM (SELECT unnest($v) AS x)", {"v": values}).fetchall()
    assert [g[0] for g in got] == sketch.bin_of(np.array(values)).tolist()


def test_empty_histogram():
    assert sketch.quantiles(pl.DataFrame({"bin": [], "n": []}, schema={"bin": pl.Int64, "n": pl.Int64})).height == 0


@pytest.mark.parametrize("values", [
    np.random.default_rng(6).lognormal(5, 1, 5000),
    np.array([42.0]),
    np.array([3.0, 3.0, 3.0, 9.0]),
    np.concatenate([np.zeros(7), np.arange(1.0, 30.0)]),
])
def test_two_pass_exact_quantiles_equal_numpy(values):
    groups = np.arange(len(values)) % 3
    hist = _hist(values, groups)
    targets = sketch.rank_targets(hist, ["g"], (0.0, 0.5, 0.95, 0.99, 1.0))
    fetched = pl.DataFrame({"g": groups, "bin": sketch.bin_of(values), "value": values}).join(
        targets.select("g", "bin").unique(), on=["g", "bin"])
    # Only the bins holding the needed order statistics are fetched.
    assert fetched.height <= len(values)
    got = sketch.exact_from_values(targets, fetched, ["g"]).sort("g")
    for row in got.iter_rows(named=True):
        sel = values[groups == row["g"]]
        for col, p in (("p0", 0), ("p50", 50), ("p95", 95), ("p99", 99), ("p100", 100)):
            assert row[col] == pytest.approx(np.percentile(sel, p), rel=1e-12, abs=1e-12)

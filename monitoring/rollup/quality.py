"""Reading the quality tables of a rollup store per UTC day and version: prediction x label
counts (`outcomes`) and score bins of 1/1000 by label (`scores`), for quality/fromstore.py.

    outcome_counts(store, con, f, value)   # day, version, pred, truth, n
    score_counts(store, con, f, value)     # day, version, truth, bin, n

`value(col)` is the SQL that turns a stored text value into the form the quality engine
compares (`ground_truth.canon`), so 1, "1" and " 1 " are one class here as in a raw scan.
Both sum the parts and the duplicate correction, so duplicates count once; windows must be
whole UTC days and carry no endpoint filter (NotCovered otherwise).
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from ..logs.source import run
from ..query.filters import Filters
from .features import _day_sql
from .read import Store


def outcome_counts(store: Store, con, f: Filters, value: Callable[[str], str]) -> pl.DataFrame:
    """day, version, pred, truth, n over the rows with a prediction (truth NULL: no label)."""
    sql, params = _day_sql(store, "outcomes", f, "CAST(sum(n) AS BIGINT) AS n",
                           f"model_version AS version, prediction IS NOT NULL AS served, {value('prediction')} AS pred, "
                           f"{value('label')} AS truth", True)
    if not sql:
        return pl.DataFrame(schema={"day": pl.Int64, "version": pl.String, "pred": pl.String,
                                    "truth": pl.String, "n": pl.Int64})
    df = run(con, sql + " ORDER BY ALL", params)
    return df.filter(pl.col("served")).select(pl.col("day").cast(pl.Int64), pl.col("version").cast(pl.String),
                                              pl.col("pred").cast(pl.String), pl.col("truth").cast(pl.String),
                                              pl.col("n").cast(pl.Int64))


def score_counts(store: Store, con, f: Filters, value: Callable[[str], str]) -> pl.DataFrame:
    """day, version, truth, bin, n over the labelled rows with a finite score; bin b holds
    scores in [b, b + 1) / 1000 (-1: below 0, 1000: 1 and above)."""
    sql, params = _day_sql(store, "scores", f, "CAST(sum(n) AS BIGINT) AS n",
                           f"model_version AS version, {value('label')} AS truth, bin", True)
    if not sql:
        return pl.DataFrame(schema={"day": pl.Int64, "version": pl.String, "truth": pl.String,
                                    "bin": pl.Int32, "n": pl.Int64})
    df = run(con, sql + " ORDER BY ALL", params)
    return df.filter(pl.col("truth").is_not_null()).select(
        pl.col("day").cast(pl.Int64), pl.col("version").cast(pl.String), pl.col("truth").cast(pl.String),
        pl.col("bin").cast(pl.Int32), pl.col("n").cast(pl.Int64))

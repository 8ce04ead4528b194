"""Reading the quality tables of a rollup store per UTC day and version, over the served
rows only (not failed, with a prediction: the rows the quality engine scores), for
quality/fromstore.py:

    outcome_counts(store, con, f, value)   # day, version, pred, truth, n
    score_counts(store, con, f, value)     # day, version, pred, truth, bin, cbin, n

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

SERVED = "NOT coalesce(is_error, false) AND prediction IS NOT NULL"


def outcome_counts(store: Store, con, f: Filters, value: Callable[[str], str]) -> pl.DataFrame:
    """day, version, pred, truth, n over the served rows (truth NULL: no label)."""
    sql, params = _day_sql(store, "outcomes", f, "CAST(sum(n) AS BIGINT) AS n",
                           f"model_version AS version, {value('prediction')} AS pred, {value('label')} AS truth",
                           True, SERVED)
    if not sql:
        return pl.DataFrame(schema={"day": pl.Int64, "version": pl.String, "pred": pl.String,
                                    "truth": pl.String, "n": pl.Int64})
    df = run(con, sql + " ORDER BY ALL", params)
    return df.select(pl.col("day").cast(pl.Int64), pl.col("version").cast(pl.String), pl.col("pred").cast(pl.String),
                     pl.col("truth").cast(pl.String), pl.col("n").cast(pl.Int64))


def score_counts(store: Store, con, f: Filters, value: Callable[[str], str]) -> pl.DataFrame:
    """day, version, pred, truth, bin, cbin, n over the served rows with a score (truth NULL:
    no label): bin is `tables.score_bin` of the score, cbin of 1 - score (b in 0..999 holds
    [b, b + 1) / 1000, -1 below 0, 1000 exactly 1, 1001 above 1), bin -2 (cbin NULL) a
    score that is not a finite number."""
    sql, params = _day_sql(store, "scores", f, "CAST(sum(n) AS BIGINT) AS n",
                           f"model_version AS version, {value('prediction')} AS pred, {value('label')} AS truth, "
                           "bin, cbin", True, SERVED)
    schema = {"day": pl.Int64, "version": pl.String, "pred": pl.String, "truth": pl.String, "bin": pl.Int32,
              "cbin": pl.Int32, "n": pl.Int64}
    if not sql:
        return pl.DataFrame(schema=schema)
    df = run(con, sql + " ORDER BY ALL", params)
    return df.select(*(pl.col(k).cast(t) for k, t in schema.items()))

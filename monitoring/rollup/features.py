"""Reading the drift tables of a rollup store: feature bins and categories, prediction x
label counts and score bins, per UTC day and version (see docs/rollups.md).

    bins = numeric_bins(store, con, Filters(start=day0, end=day7))      # role, feature, sign, bin, n, ...
    numeric_quantiles(bins)                                             # p10, p50, p90 within ±0.5%
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from ..logs.source import run
from ..metrics import sketch
from ..query.filters import Filters
from .read import NotCovered, Store, minutes, whole_window
from .tables import DAY_US, SCORE_BINS

# -- drift tables (per UTC day and version) ---------------------------------------------------------

def _day_sql(store: Store, table: str, f: Filters, select: str, group: str,
             by_day: bool, where: str = "TRUE") -> tuple[str, dict[str, Any]]:
    lo, hi = whole_window(f, DAY_US, "UTC day")
    rel, params = store.relation(table)
    if not rel:
        return "", {}
    conds = [where]
    if lo is not None:
        conds.append(f"day >= {lo // DAY_US}")
    if hi is not None:
        conds.append(f"day < {hi // DAY_US}")
    cond, p = f.where(time=False)
    if f.endpoints:
        raise NotCovered("drift rollups are per version, not per endpoint")
    keys = ("day, " if by_day else "") + group
    return (f"SELECT {keys}, {select} FROM {rel} WHERE {' AND '.join(conds)} AND {cond} "
            f"GROUP BY ALL HAVING sum(n) <> 0", params | p)


def numeric_bins(store: Store, con, f: Filters, *, by_day: bool = False) -> pl.DataFrame:
    """[day,] role, feature, sign, bin, n, min, max, sum, sum2 over whole UTC days of `f`.

    Values lie in (GAMMA^(bin-1), GAMMA^bin] in absolute value, with `sign`; `representative`
    gives a value within ±0.5% of each."""
    sql, params = _day_sql(store, "numeric", f,
                           "CAST(sum(n) AS BIGINT) AS n, min(min) AS min, max(max) AS max, "
                           "sum(sum) AS sum, sum(sum2) AS sum2", "role, feature, sign, bin", by_day)
    if not sql:
        return pl.DataFrame(schema={"role": pl.String, "feature": pl.String, "sign": pl.Int32,
                                    "bin": pl.Int32, "n": pl.Int64})
    return run(con, sql + " ORDER BY ALL", params)


def categories(store: Store, con, f: Filters, *, by_day: bool = False) -> pl.DataFrame:
    """[day,] role, feature, value, n (nulls are not listed: rows - sum(n))."""
    sql, params = _day_sql(store, "categorical", f, "CAST(sum(n) AS BIGINT) AS n", "role, feature, value", by_day)
    if not sql:
        return pl.DataFrame(schema={"role": pl.String, "feature": pl.String, "value": pl.String, "n": pl.Int64})
    return run(con, sql + " ORDER BY ALL", params)


def outcomes(store: Store, con, f: Filters, *, by_day: bool = False) -> pl.DataFrame:
    """[day,] prediction, label, n: the confusion counts (label NULL: not labelled)."""
    sql, params = _day_sql(store, "outcomes", f, "CAST(sum(n) AS BIGINT) AS n", "prediction, label", by_day)
    if not sql:
        return pl.DataFrame(schema={"prediction": pl.String, "label": pl.String, "n": pl.Int64})
    return run(con, sql + " ORDER BY ALL", params)


def score_bins(store: Store, con, f: Filters, *, by_day: bool = False) -> pl.DataFrame:
    """[day,] label, bin, n: finite scores in [bin, bin + 1) / 1000 per label (-1: below 0,
    1000: exactly 1, 1001: above 1; `tables.score_bin`)."""
    sql, params = _day_sql(store, "scores", f, "CAST(sum(n) AS BIGINT) AS n", "label, bin", by_day, "bin >= -1")
    if not sql:
        return pl.DataFrame(schema={"label": pl.String, "bin": pl.Int32, "n": pl.Int64})
    return run(con, sql + " ORDER BY ALL", params)


def day_rows(store: Store, con, f: Filters) -> pl.DataFrame:
    """day, rows: valid requests per UTC day (the denominators of null shares)."""
    whole_window(f, DAY_US, "UTC day")
    g = Filters(start=f.start, end=f.end, model_name=f.model_name, model_versions=f.model_versions)
    df = minutes(store, con, g, "day")
    return df.group_by("time").agg(pl.col("requests").sum().alias("rows")).sort("time")


def representative(sign: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """A value within ±0.5% of every value of each signed bin."""
    return np.asarray(sign) * sketch.representative(bins)


def numeric_quantiles(bins: pl.DataFrame, qs: tuple[float, ...] = (0.1, 0.5, 0.9)) -> pl.DataFrame:
    """Per (role, feature): quantiles from signed bins, each within ±0.5% of exact (in
    absolute value), interpolated like numpy's default."""
    rows = []
    for (role, feature), g in bins.group_by(["role", "feature"], maintain_order=True):
        v = representative(g["sign"].to_numpy(), g["bin"].to_numpy())
        order = np.argsort(v, kind="stable")
        v, n = v[order], g["n"].to_numpy()[order]
        cum = np.cumsum(n)
        total = int(cum[-1]) if len(cum) else 0
        row = {"role": role, "feature": feature, "n": total}
        for q in qs:
            if total == 0:
                row[sketch._qname(q)] = None
                continue
            h = q * (total - 1)
            lo, hi = int(np.floor(h)), int(np.ceil(h))
            a = v[np.searchsorted(cum, lo, side="right")]
            b = v[np.searchsorted(cum, hi, side="right")]
            row[sketch._qname(q)] = float(a + (h - lo) * (b - a))
        rows.append(row)
    return pl.DataFrame(rows)


def score_edges() -> np.ndarray:
    """Lower edge of each score bin -1..SCORE_BINS + 1 (bin b holds [b, b+1) / SCORE_BINS;
    SCORE_BINS exactly 1, SCORE_BINS + 1 above 1)."""
    return np.arange(-1, SCORE_BINS + 2) / SCORE_BINS

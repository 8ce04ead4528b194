"""The rollup store's drift tables as the engine's counts: per column and UTC day, the
signed 1% log bins of a numeric column in the shape of the engine's fine bins (`fine`),
and the exact category counts of a categorical one.

    tables = read(store, con, columns, Filters(start=day0, end=day7))   # raises NotCovered
    tables.rows            # day -> valid rows (the denominators of null shares)
    tables.numeric[name]   # day, b, n, lo, hi, mean, var   (b: the bin's rank in value order)
    tables.categories[name]  # day, value, n

A store bin holds the values of one sign whose absolute value lies in (GAMMA^(bin-1),
GAMMA^bin]: a relative width of 1%, with the count, min, max, sum and sum of squares of
its values. `b` numbers the bins in value order (negative values below 0, zero at 0), so
they feed `fine._align`, `_fine_distances`, `_fine_deciles` and `_moments` unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from ..query.filters import Filters
from ..rollup.features import categories, day_rows, numeric_bins, outcomes
from ..rollup.read import NotCovered, Store
from ..rollup.tables import DAY_US
from .sql import Column

# |bin| of a finite double is below 36,000 (ln(1.8e308) / ln(GAMMA) ~ 35,500): this offset
# keeps every non-zero bin's rank away from zero, negative values below it.
_OFFSET = 40_000
_ROLES = {"feature", "prediction", "score", "label"}


@dataclass(frozen=True)
class Tables:
    rows: pl.DataFrame                        # day, rows
    numeric: dict[str, pl.DataFrame]          # column name -> day, b, n, lo, hi, mean, var
    categories: dict[str, pl.DataFrame]       # column name -> day, value, n


def day_range(f: Filters) -> tuple[int, int]:
    """[first day, last day + 1) of a window on whole UTC days."""
    return int(f.start.timestamp() * 1e6) // DAY_US, int(f.end.timestamp() * 1e6) // DAY_US


def read(store: Store, con, columns: Sequence[Column], f: Filters) -> Tables:
    """Every column's per-day counts over `f` (whole UTC days); NotCovered for a column the
    store does not keep (per-class probabilities, a label without class predictions)."""
    for c in columns:
        if c.role not in _ROLES:
            raise NotCovered(f"{c.name} ({c.role}) is not kept in the rollups")
    rows = day_rows(store, con, f)
    rows = rows.select(((pl.col("time").dt.epoch("us")) // DAY_US).alias("day"),
                       pl.col("rows").cast(pl.Int64))
    num = numeric_bins(store, con, f, by_day=True)
    cat = categories(store, con, f, by_day=True)
    need_label = any(c.role == "label" for c in columns)
    out_num: dict[str, pl.DataFrame] = {}
    out_cat: dict[str, pl.DataFrame] = {}
    kept_num = set(zip(num["role"].to_list(), num["feature"].to_list(), strict=True)) if num.height else set()
    kept_cat = set(zip(cat["role"].to_list(), cat["feature"].to_list(), strict=True)) if cat.height else set()
    for c in columns:
        key = ("feature", c.name) if c.role == "feature" else (c.role, c.role)
        if c.role == "label":
            continue
        if key in kept_num:
            out_num[c.name] = _ranked(num.filter((pl.col("role") == key[0]) & (pl.col("feature") == key[1])))
        elif key in kept_cat:
            g = cat.filter((pl.col("role") == key[0]) & (pl.col("feature") == key[1]))
            out_cat[c.name] = g.select("day", "value", "n")
        else:  # no value in the window, or a column the store does not know
            out_cat[c.name] = pl.DataFrame(schema={"day": pl.Int64, "value": pl.String, "n": pl.Int64})
            if c.kind == "numeric":
                out_num[c.name] = _ranked(num.clear())
    if need_label:
        if not _has_outcomes(store):
            raise NotCovered("labels are kept in the rollups only with class predictions")
        oc = outcomes(store, con, f, by_day=True)
        lab = oc.filter(pl.col("label").is_not_null()).group_by("day", "label").agg(pl.col("n").sum())
        out_cat["label"] = lab.rename({"label": "value"}).select("day", "value", pl.col("n").cast(pl.Int64))
    return Tables(rows, out_num, out_cat)


def _has_outcomes(store: Store) -> bool:
    rel, _ = store.relation("outcomes")
    return bool(rel)


def _ranked(df: pl.DataFrame) -> pl.DataFrame:
    """day, b, n, lo, hi, mean, var from the store's (day, sign, bin, n, min, max, sum, sum2)."""
    n = pl.col("n").cast(pl.Float64)
    mean = pl.col("sum") / n
    b = (pl.when(pl.col("sign") == 0).then(0)
         .otherwise(pl.col("sign").cast(pl.Int64) * (pl.col("bin").cast(pl.Int64) + _OFFSET)))
    return df.select(pl.col("day").cast(pl.Int64), b.alias("b"), pl.col("n").cast(pl.Int64),
                     pl.col("min").cast(pl.Float64).alias("lo"), pl.col("max").cast(pl.Float64).alias("hi"),
                     mean.alias("mean"), (pl.col("sum2") / n - mean * mean).clip(lower_bound=0.0).alias("var"))


def collapse(df: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Bins (or categories) summed over days, grouped by `keys`: counts add, min and max
    combine, means and variances combine exactly (Chan et al.)."""
    if "b" not in df.columns:
        return df.group_by(list(keys)).agg(pl.col("n").sum()).sort(list(keys))
    w = pl.col("n").cast(pl.Float64)
    g = df.group_by(list(keys)).agg(
        pl.col("n").sum().alias("n"), pl.col("lo").min(), pl.col("hi").max(),
        ((w * pl.col("mean")).sum() / w.sum()).alias("mean"),
        (w * (pl.col("var") + pl.col("mean") * pl.col("mean"))).sum().alias("s2"), w.sum().alias("w"))
    return g.select(*keys, "n", "lo", "hi", "mean",
                    (pl.col("s2") / pl.col("w") - pl.col("mean") ** 2).clip(lower_bound=0.0).alias("var")
                    ).sort(list(keys))


def exact_values(bins: pl.DataFrame) -> pl.DataFrame | None:
    """value (as integer text), n from bins that each hold one distinct value (min = max:
    integers up to about 100 in the 1% bins), else None (the values are not known)."""
    if bins.height and not (bins["lo"] == bins["hi"]).all():
        return None
    return bins.select(pl.col("day"), pl.col("lo").cast(pl.Int64).cast(pl.String).alias("value"), pl.col("n"))

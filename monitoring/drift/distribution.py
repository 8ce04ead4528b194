"""Distributions for charts: shares of reference and current per bin, for one column."""

from __future__ import annotations

import duckdb
import polars as pl

from .engine import FeatureDrift
from .sql import Side, _params, _q, _value, _with


def distribution(con: duckdb.DuckDBPyConnection, reference: Side, current: Side, f: FeatureDrift,
                 bins: int = 40, top: int = 25) -> pl.DataFrame:
    """Shares of reference and current per bin, for overlaid histograms or bars.

    Numeric: `bins` equal-width bins between the 0.5% and 99.5% quantiles of both sides
    together (values beyond are counted in the outer bins). Categorical: the `top` most
    common categories of either side, the rest summed as "(other)". Returns columns
    bin (label), x (bin centre; numeric only), reference, current (shares).
    """
    if f.reference is None or f.current is None:
        return pl.DataFrame(schema={"bin": pl.String, "x": pl.Float64, "reference": pl.Float64,
                                    "current": pl.Float64})
    if f.kind == "categorical":
        ref, cur = f.reference.counts, f.current.counts
        nr, nc = max(sum(ref), 1), max(sum(cur), 1)
        rows = [(lbl, r / nr, c / nc) for lbl, r, c in zip(f.labels, ref, cur, strict=True)]
        rows.sort(key=lambda t: -max(t[1], t[2]))
        keep, rest = rows[:top], rows[top:]
        if rest:
            keep.append(("(other)", sum(t[1] for t in rest), sum(t[2] for t in rest)))
        return pl.DataFrame({"bin": [t[0] for t in keep], "x": [None] * len(keep),
                             "reference": [t[1] for t in keep], "current": [t[2] for t in keep]},
                            schema={"bin": pl.String, "x": pl.Float64, "reference": pl.Float64,
                                    "current": pl.Float64})
    rv = _value(reference.exprs[f.name], "numeric")
    cv = _value(current.exprs[f.name], "numeric")
    union = f"SELECT 0 AS s, {rv} AS x FROM {reference.rows_sql} UNION ALL SELECT 1, {cv} FROM {current.rows_sql}"
    rng = _q(con, _with((reference, current)) + f"SELECT quantile_cont(x, [0.005, 0.995]) AS q FROM ({union})",
             _params(reference, current))["q"][0]
    lo, hi = (rng[0], rng[1]) if rng is not None else (0.0, 0.0)
    if hi <= lo:
        lo, hi = (lo - 0.5, lo + 0.5) if lo is not None else (0.0, 1.0)
    width = (hi - lo) / bins
    df = _q(con, _with((reference, current)) +
            "SELECT s, least(greatest(floor((x - $lo) / $width), 0), $last)::INTEGER AS b, count(*) AS n "
            f"FROM ({union}) WHERE x IS NOT NULL GROUP BY ALL",
            _params(reference, current, lo=lo, width=width, last=bins - 1))
    full = pl.DataFrame({"b": list(range(bins))}, schema={"b": pl.Int32})
    out = full
    for s, name in ((0, "reference"), (1, "current")):
        side = df.filter(pl.col("s") == s).select(pl.col("b").cast(pl.Int32), pl.col("n").alias(name))
        out = out.join(side, on="b", how="left")
    out = out.fill_null(0).with_columns(
        (pl.col("reference") / max(int(out["reference"].sum()), 1)),
        (pl.col("current") / max(int(out["current"].sum()), 1)),
        (lo + (pl.col("b") + 0.5) * width).alias("x"))
    return out.select(
        pl.format("[{}, {})", (lo + pl.col("b") * width).round_sig_figs(4),
                  (lo + (pl.col("b") + 1) * width).round_sig_figs(4)).alias("bin"),
        "x", "reference", "current")

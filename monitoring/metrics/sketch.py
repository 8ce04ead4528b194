"""Log-bucketed latency histograms: mergeable, and quantiles within a stated relative error.

A latency x > 0 falls in bin i = ceil(log_gamma(x)), gamma = (1 + a) / (1 - a), which covers
(gamma^(i-1), gamma^i]. The bin's representative 2 gamma^i / (gamma + 1) is within a relative
error `a` of every value in the bin (the DDSketch construction). A quantile interpolated
linearly between two order statistics, each replaced by its bin's representative, is a
convex combination of values each within `a`, so it is within `a` of the exact
interpolated quantile too. Zero latencies get their own bin (ZERO_BIN) represented by 0.

Histograms are plain (bin, count) tables: they add up across time buckets, files, versions
and machines, which is what incremental rollups (DuckDB or Spark) store.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

RELATIVE_ERROR = 0.005
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
LOG_GAMMA = math.log(GAMMA)
ZERO_BIN = -(2**31)


def bin_sql(column: str) -> str:
    """SQL expression of the bin index of a non-negative latency column."""
    return (f"CASE WHEN {column} <= 0 THEN {ZERO_BIN} "
            f"ELSE CAST(ceil(ln({column}) / {LOG_GAMMA!r}) AS INTEGER) END")


def bin_of(values: np.ndarray) -> np.ndarray:
    """The same bin index in numpy (used by tests and by Python-side rollups)."""
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, ZERO_BIN, dtype=np.int64)
    pos = values > 0
    out[pos] = np.ceil(np.log(values[pos]) / LOG_GAMMA).astype(np.int64)
    return out


def representative(bins: np.ndarray) -> np.ndarray:
    bins = np.asarray(bins, dtype=np.int64)
    rep = 2.0 * np.power(GAMMA, bins.astype(float)) / (GAMMA + 1.0)
    return np.where(bins == ZERO_BIN, 0.0, rep)


def quantiles(hist: pl.DataFrame, qs: tuple[float, ...] = (0.5, 0.95, 0.99),
              by: str | None = None) -> pl.DataFrame:
    """Quantiles from a histogram frame with columns [by,] bin, n.

    Returns one row per group (or one row) with `n` and a column `p{100q}` per quantile
    (e.g. p50, p95, p99), interpolated between order statistics like numpy's default.
    """
    names = [_qname(q) for q in qs]
    hist = hist.filter(pl.col("bin").is_not_null())   # rows with no latency (batch logs)
    if hist.height == 0:
        schema = ({by: hist.schema[by]} if by else {}) | {"n": pl.Int64} | {c: pl.Float64 for c in names}
        return pl.DataFrame(schema=schema)
    keys = [by] if by else []
    h = hist.group_by([*keys, "bin"]).agg(pl.col("n").sum()).sort([*keys, "bin"])
    if by is None:
        h = h.with_columns(pl.lit(0).alias("__g"))
        by_col = "__g"
    else:
        by_col = by
    counts = h["n"].to_numpy().astype(np.int64)
    reps = representative(h["bin"].to_numpy())
    cum = np.cumsum(counts)
    groups = h.group_by(by_col, maintain_order=True).agg(pl.len().alias("rows"), pl.col("n").sum().alias("total"))
    rows = groups["rows"].to_numpy()
    totals = groups["total"].to_numpy().astype(np.int64)
    first_row = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)
    offset = np.where(first_row > 0, cum[first_row - 1], 0)  # elements before the group
    out = {by_col: groups[by_col], "n": totals}
    for q, name in zip(qs, names, strict=True):
        out[name] = interpolate(reps, cum, q, totals, offset)
    df = pl.DataFrame(out)
    return df.drop("__g") if by is None else df


def interpolate(reps: np.ndarray, cum: np.ndarray, q: float, totals, offset=0) -> np.ndarray:
    """The q-quantile, interpolated between order statistics like numpy's default, of each
    group of a histogram laid out as ascending bins: `reps` the bins' values, `cum` the
    running count over all groups, `totals` each group's count and `offset` the count
    before the group. The one rule every histogram quantile of the product follows."""
    totals = np.asarray(totals, dtype=np.int64)
    h_pos = q * (totals - 1)
    lo = np.floor(h_pos).astype(np.int64)
    hi = np.ceil(h_pos).astype(np.int64)
    v_lo = reps[np.searchsorted(cum, offset + lo, side="right")]
    v_hi = reps[np.searchsorted(cum, offset + hi, side="right")]
    return v_lo + (h_pos - lo) * (v_hi - v_lo)


def edges(bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each bin's lower and upper edge: (gamma^(b-1), gamma^b], and 0 for ZERO_BIN."""
    bins = np.asarray(bins, dtype=np.int64)
    zero, b = bins == ZERO_BIN, bins.astype(float)
    return np.where(zero, 0.0, np.power(GAMMA, b - 1)), np.where(zero, 0.0, np.power(GAMMA, b))


def _qname(q: float) -> str:
    return "p" + (f"{q * 100:g}").replace(".", "_")


# -- exact quantiles in two passes ---------------------------------------------------------------
# The histogram says which bin holds each order statistic a quantile needs; a second pass
# fetches only the values of those bins (a few per group), so exact percentiles cost one
# more scan and little memory, however large the window.

def rank_targets(hist: pl.DataFrame, keys: list[str], qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> pl.DataFrame:
    """Where each needed order statistic lies: columns keys..., q, side, bin, k, frac.

    For a group of n values and quantile q, h = q (n - 1); the two order statistics are
    lo = floor(h) and hi = ceil(h) (0-based). `bin` holds the statistic and `k` is its
    0-based rank inside the bin; `frac` = h - lo is the interpolation weight.
    """
    h = hist.group_by([*keys, "bin"]).agg(pl.col("n").sum()).sort([*keys, "bin"])
    h = h.with_columns(pl.col("n").cum_sum().over(keys).alias("cum"))
    totals = h.group_by(keys).agg(pl.col("n").sum().alias("total"))
    rows = []
    for q in qs:
        t = totals.with_columns((pl.lit(q) * (pl.col("total") - 1)).alias("h"))
        t = t.with_columns(pl.col("h").floor().cast(pl.Int64).alias("lo"), pl.col("h").ceil().cast(pl.Int64).alias("hi"),
                           (pl.col("h") - pl.col("h").floor()).alias("frac"))
        for side in ("lo", "hi"):
            rows.append(t.select(*keys, pl.lit(_qname(q)).alias("q"), pl.lit(side).alias("side"),
                                 pl.col(side).alias("rank"), "frac"))
    want = pl.concat(rows)
    # The bin holding rank r is the first whose cumulative count exceeds r.
    joined = want.join(h, on=keys, how="inner").filter(pl.col("cum") > pl.col("rank"))
    first = joined.sort([*keys, "q", "side", "cum"]).group_by([*keys, "q", "side"], maintain_order=True).first()
    return first.with_columns((pl.col("rank") - (pl.col("cum") - pl.col("n"))).alias("k")).select(
        *keys, "q", "side", "bin", "k", "frac")


def exact_from_values(targets: pl.DataFrame, values: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Exact quantiles from the fetched values of the target bins (columns keys..., bin, value).

    Returns keys... and one column per quantile name in `targets` (e.g. p50, p95, p99).
    """
    ranked = values.sort("value").with_columns(
        pl.int_range(pl.len()).over([*keys, "bin"]).alias("k"))
    picked = targets.join(ranked, on=[*keys, "bin", "k"], how="left")
    wide = picked.pivot(on="side", index=[*keys, "q", "frac"], values="value")
    for side in ("lo", "hi"):   # no value fetched for a side (e.g. no latency): a null quantile
        if side not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(side))
    wide = wide.with_columns((pl.col("lo") + pl.col("frac") * (pl.col("hi") - pl.col("lo"))).alias("v"))
    return wide.pivot(on="q", index=keys, values="v")

"""Step 2 of a comparison: the sorted merge of the two samples of a numeric column,
in DuckDB, returning only scalars (exact Wasserstein, exact KS, reference deciles), for
the whole window or per chunk of the current side."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .sql import Column, Side, _value, _with

DECILES = tuple(round(0.1 * i, 1) for i in range(1, 10))
# Over time, each chunk is merged with the whole reference: the reference is replaced by
# this many equally spaced quantiles when chunks x reference values would exceed
# MAX_MERGE_ROWS (then chunk scores are within 1/CHUNK_REFERENCE_POINTS of exact for KS).
MAX_MERGE_ROWS = 4_000_000
CHUNK_REFERENCE_POINTS = 20_000


def _merge_sql(ref: Side, cur: Side, column: Column, *, grouped: bool, key: str | None = None,
               compress: bool = False, bound_points: bool = False) -> str:
    """SQL returning the exact Wasserstein distance `wd` and KS statistic `ksd` of one
    numeric column (per chunk `k` when `key`, the SQL of a row's chunk, is given, else the reference deciles too).

    The union of both samples is walked in value order with running counts `cr`, `cc`
    (ROWS frames: within a run of equal values only the last row carries the complete
    counts, and every earlier row of the run has a zero gap to the next, so the integral
    and the supremum below are exact with ties):
        W  = sum |cr/nr - cc/nc| * (next x - x)        KS = max |cr/nr - cc/nc|
    Without chunks, nr and nc are bound ($nr, $nc, known from the profile) and the
    reference deciles (quantile_cont's linear interpolation) come from the same walk:
    order statistic i is the first value where cr > i ($t_lo_j, $t_hi_j).
    Filtered aggregates are written as CASE: DuckDB evaluates FILTER clauses one
    selection at a time, several times slower here.
    """
    rv = _value(ref.exprs[column.name], "numeric")
    cv = _value(cur.exprs[column.name], "numeric")
    if key is None:
        ctes = [f"rv AS (SELECT {rv} AS x FROM {ref.rows_sql})",
                f"cv AS (SELECT {cv} AS x FROM {cur.rows_sql})"]
        if grouped:
            ctes += ["u AS (SELECT x, sum(s) AS wr, count(*) - sum(s) AS wc FROM "
                     "(SELECT x, 1 AS s FROM rv UNION ALL SELECT x, 0 FROM cv) WHERE x IS NOT NULL GROUP BY x)",
                     "w AS (SELECT x, sum(wr) OVER o AS cr, sum(wc) OVER o AS cc, lead(x) OVER o AS nx "
                     "FROM u WINDOW o AS (ORDER BY x ROWS UNBOUNDED PRECEDING))"]
        else:
            ctes += ["u AS (SELECT x, 1 AS wr FROM rv WHERE x IS NOT NULL "
                     "UNION ALL SELECT x, 0 FROM cv WHERE x IS NOT NULL)",
                     "w AS (SELECT x, sum(wr) OVER o AS cr, row_number() OVER o - sum(wr) OVER o AS cc, "
                     "lead(x) OVER o AS nx FROM u WINDOW o AS (ORDER BY x ROWS UNBOUNDED PRECEDING))"]
        d = "abs(cr / $nr - cc / $nc)"
        cols = [f"sum({d} * (nx - x)) AS wd",
                f"max(CASE WHEN nx IS NULL OR nx > x THEN {d} END) AS ksd"]
        for j in range(len(DECILES)):
            cols += [f"min(CASE WHEN cr > $t_lo_{j} THEN x END) AS qlo{j}",
                     f"min(CASE WHEN cr > $t_hi_{j} THEN x END) AS qhi{j}"]
        return _with((ref, cur), ctes) + f"SELECT {', '.join(cols)} FROM w"
    ctes = [f"rv AS (SELECT {rv} AS x FROM {ref.rows_sql})",
            f"cv AS (SELECT {key} AS k, {cv} AS x FROM {cur.rows_sql})"]
    if bound_points:   # the reference's points, known already (`points_from_bins`): $rd_x, $rd_w
        ctes[0] = "rd AS (SELECT unnest($rd_x) AS x, unnest($rd_w) AS wr)"
    elif compress:
        # The order statistics at (j + 0.5) / P, j < P, as (value, how many j pick it): row r
        # of n is picked by ceil((r + 1) P / n - 0.5) - ceil(r P / n - 0.5) of them (j with
        # floor((j + 0.5) n / P) = r). One sort; quantile_disc with 20,000 fractions took 31 s
        # on 2.4M values where the sort takes 0.4 s.
        ctes.append(f"rd AS ({reference_points_sql('rv')})")
    else:
        ctes.append("rd AS (SELECT x, count(*) AS wr FROM rv WHERE x IS NOT NULL GROUP BY x)")
    ctes += [
        "ks AS (SELECT DISTINCT k FROM cv WHERE x IS NOT NULL)",
        "u AS (SELECT ks.k, rd.x, rd.wr, 0 AS wc FROM rd CROSS JOIN ks "
        "UNION ALL SELECT k, x, 0, 1 FROM cv WHERE x IS NOT NULL)",
        "n AS (SELECT k, sum(wr) AS nr, sum(wc) AS nc FROM u GROUP BY k)",
        "w AS (SELECT k, x, sum(wr) OVER o AS cr, sum(wc) OVER o AS cc, lead(x) OVER o AS nx "
        "FROM u WINDOW o AS (PARTITION BY k ORDER BY x ROWS UNBOUNDED PRECEDING))",
    ]
    d = "abs(cr / n.nr - cc / n.nc)"
    return (_with((ref, cur), ctes) +
            f"SELECT w.k, sum({d} * (nx - x)) AS wd, "
            f"max(CASE WHEN nx IS NULL OR nx > x THEN {d} END) AS ksd "
            "FROM w JOIN n ON w.k = n.k GROUP BY w.k ORDER BY w.k")


def reference_points_sql(table: str) -> str:
    """(x, wr): the order statistics of `table`.x at (j + 0.5) / $ref_points, j < $ref_points,
    each value with how many j pick it (nulls skipped)."""
    return ("SELECT x, wr FROM (SELECT x, CAST(ceil((r + 1) * $ref_points / n - 0.5) "
            "- ceil(r * $ref_points / n - 0.5) AS BIGINT) AS wr FROM (SELECT x, "
            f"row_number() OVER (ORDER BY x) - 1 AS r, count(*) OVER () AS n FROM {table} "
            "WHERE x IS NOT NULL)) WHERE wr > 0")


def chunk_merge(ref: Side, cur: Side, column: Column, key: str, compress: bool,
                points: tuple[list[float], list[int]] | None) -> tuple[str, dict[str, Any]]:
    """The SQL and extra parameters of one column's per-chunk merge: the reference whole, as
    CHUNK_REFERENCE_POINTS order statistics (`compress`), or as those points already known."""
    if compress and points is not None:
        return (_merge_sql(ref, cur, column, grouped=True, key=key, bound_points=True),
                {"rd_x": points[0], "rd_w": points[1]})
    return (_merge_sql(ref, cur, column, grouped=True, key=key, compress=compress),
            {"ref_points": CHUNK_REFERENCE_POINTS} if compress else {})


def points_from_bins(n: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                     points: int = CHUNK_REFERENCE_POINTS) -> tuple[list[float], list[int]]:
    """`reference_points_sql` from binned values (bins in value order: count, min, max): the
    order statistic of rank floor((j + 0.5) n / points) placed in its bin by linear
    interpolation between the bin's min and max (exact for a bin of one value; else within
    the bin), as distinct (x, how many j pick it)."""
    n = np.asarray(n, dtype=np.int64)
    keep = n > 0
    n, lo, hi = n[keep], np.asarray(lo, dtype=float)[keep], np.asarray(hi, dtype=float)[keep]
    total = int(n.sum())
    if total == 0:
        return [], []
    cum = np.cumsum(n)
    r = np.floor((np.arange(points) + 0.5) * total / points).astype(np.int64)
    j = np.searchsorted(cum, r, side="right")
    t = r - (cum[j] - n[j])
    x = lo[j] + (hi[j] - lo[j]) * np.where(n[j] > 1, t / np.maximum(n[j] - 1, 1), 0.0)
    x = np.maximum.accumulate(np.minimum(x, hi[j]))   # in order, never past its bin's max
    xs, w = np.unique(x, return_counts=True)
    return xs.tolist(), w.astype(np.int64).tolist()


def _merge_params(nr: int, nc: int) -> dict[str, Any]:
    """$nr, $nc and the order-statistic positions of the reference deciles."""
    out: dict[str, Any] = {"nr": float(nr), "nc": float(nc)}
    for j, q in enumerate(DECILES):
        lo = math.floor((nr - 1) * q)
        out[f"t_lo_{j}"], out[f"t_hi_{j}"] = lo, min(lo + 1, nr - 1)
    return out


def _edges(row: dict[str, Any], nr: int) -> tuple[float, ...]:
    """Interior bin edges from the reference deciles, duplicates dropped."""
    out: list[float] = []
    for j, q in enumerate(DECILES):
        h = (nr - 1) * q
        lo, hi = row[f"qlo{j}"], row[f"qhi{j}"]
        if lo is None:
            continue
        e = lo + (h - math.floor(h)) * ((hi if hi is not None else lo) - lo)
        if not out or e > out[-1]:
            out.append(float(e))
    return tuple(out)

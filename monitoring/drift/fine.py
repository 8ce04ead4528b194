"""Step 2 for large windows: numeric columns counted in fine bins (one scan of each side
for all of them), and the distances, moments and deciles that follow from those bins,
each distance with a rigorous bound on its error (see `_fine_distances`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from .merges import DECILES
from .sql import Side, _params, _Plan, _value, _with
from .stattests import Merge

# Above `exact_max_rows`, each numeric column is counted in this many equal-width bins over
# the reference's [min, max], plus at most as many again below and above it for current
# values outside that range (so out-of-range counts stay exact).
FINE_BINS = 4096


def _fine_grid(p: _Plan, bins: int = FINE_BINS) -> tuple[float, float, float, float, float]:
    """(lo, hi, width, width below lo, width above hi) of a column's fine bins.

    `bins` equal-width bins span the reference [lo, hi] (a constant reference: one bin);
    current values below lo or above hi fall in up to `bins` more bins on that side, as
    wide as the middle ones or wider when the current range is far larger.
    """
    lo, hi = float(p.lo), float(p.hi)
    width = (hi - lo) / bins
    if not width > 0:  # a constant reference (or a range too small to divide): one bin
        width = 1.0
    below = max(width, (lo - float(p.cur_lo)) / bins)
    above = max(width, (float(p.cur_hi) - hi) / bins)
    return lo, hi, width, below, above


def _fine_sql(side: Side, plans: Sequence[tuple[int, _Plan]], bins: int = FINE_BINS) -> tuple[str, dict[str, Any]]:
    """One scan of `side` for every (index, plan): per (column f, bin b) the count, min,
    max, mean and population variance of the values. Bins are numbered in value order:
    negative below the reference min, 0..bins-1 over the reference range, bins and up
    above its max. The grid is bound as values ($flo{i}, ...), like the decile edges."""
    params: dict[str, Any] = {}
    vals, keys = [], []
    last = bins - 1
    for i, p in plans:
        lo, hi, width, below, above = _fine_grid(p, bins)
        params |= {f"flo{i}": lo, f"fhi{i}": hi, f"fw{i}": width, f"fwb{i}": below, f"fwa{i}": above}
        c = f"c{i}"
        vals.append(f"{_value(side.exprs[p.column.name], 'numeric')} AS {c}")
        keys.append(f"CAST(CASE WHEN {c} < $flo{i} THEN -1 - least(floor(($flo{i} - {c}) / $fwb{i}), {last}) "
                    f"WHEN {c} > $fhi{i} THEN {bins} + least(floor(({c} - $fhi{i}) / $fwa{i}), {last}) "
                    f"ELSE least(floor(({c} - $flo{i}) / $fw{i}), {last}) END AS INTEGER)")
    ids = ", ".join(str(i) for i, _ in plans)
    cs = ", ".join(f"c{i}" for i, _ in plans)
    sql = (_with([side]) +
           "SELECT f, b, count(*) AS n, min(x) AS lo, max(x) AS hi, avg(x) AS mean, var_pop(x) AS var "
           f"FROM (SELECT unnest([{ids}]) AS f, unnest([{', '.join(keys)}]) AS b, unnest([{cs}]) AS x "
           f"FROM (SELECT {', '.join(vals)} FROM {side.rows_sql})) WHERE x IS NOT NULL GROUP BY f, b")
    return sql, _params(side, **params)


@dataclass(frozen=True)
class _Fine:
    """One column's fine bins on both sides, aligned and in value order."""

    r: np.ndarray  # reference count per bin
    c: np.ndarray  # current count per bin
    r_lo: np.ndarray  # reference min per bin (nan when the reference has none there)
    r_hi: np.ndarray
    lo: np.ndarray  # min and max over both sides per bin
    hi: np.ndarray
    b: np.ndarray  # bin numbers


def _align(ref: pl.DataFrame, cur: pl.DataFrame) -> _Fine:
    both = ref.join(cur, on="b", how="full", coalesce=True, suffix="_c").sort("b")
    r = both["n"].fill_null(0).to_numpy().astype(np.int64)
    c = both["n_c"].fill_null(0).to_numpy().astype(np.int64)
    r_lo, r_hi = (both[k].cast(pl.Float64).fill_null(np.nan).to_numpy() for k in ("lo", "hi"))
    c_lo, c_hi = (both[k].cast(pl.Float64).fill_null(np.nan).to_numpy() for k in ("lo_c", "hi_c"))
    return _Fine(r, c, r_lo, r_hi, np.fmin(r_lo, c_lo), np.fmax(r_hi, c_hi), both["b"].to_numpy())


def _fine_distances(fine: _Fine) -> Merge:
    """Wasserstein and KS from fine bins, each with a rigorous error bound.

    With bins j in value order, p_j and q_j the shares of the reference and current values
    in bin j, [m_j, M_j] the range of both sides' values in it and D_j = F_ref - F_cur
    just after it (D_{-1} = 0): between bins no value lies, so the difference is D_j there
    (exact), and inside bin j it stays within [D_{j-1} - q_j, D_{j-1} + p_j]. A bin holding
    one distinct value (M_j = m_j: integer or rounded data) is therefore exact as well.

    * KS is max |D_j|, a lower bound of the exact statistic; the exact one is at most
      max over bins with M_j > m_j of max(|D_{j-1} + p_j|, |D_{j-1} - q_j|), which gives
      `ks_error` <= the largest share of either side in one such bin.
    * Wasserstein takes both CDFs as linear inside each bin. Each CDF and its linear
      stand-in lie in the same band of height p_j (resp. q_j), so their difference is off by
      at most max(p_j, q_j) at every point: |W - exact| <= sum_j (M_j - m_j) max(p_j, q_j)
      = `wasserstein_error`, at most the bin width times (1 + the share moved).
    """
    nr, nc = fine.r.sum(), fine.c.sum()
    p, q = fine.r / nr, fine.c / nc
    d = np.cumsum(fine.r) / nr - np.cumsum(fine.c) / nc  # after each bin
    prev = np.concatenate(([0.0], d[:-1]))  # before each bin
    width = fine.hi - fine.lo
    gaps = fine.lo[1:] - fine.hi[:-1]
    a, b = prev, d
    # integral over [0, 1] of |a + (b - a) t|: the mean of |a| and |b|, unless it crosses 0
    same = a * b >= 0
    s = np.abs(a) + np.abs(b)
    inside = np.where(same, s / 2, np.divide(a * a + b * b, 2 * s, out=np.zeros_like(s), where=s > 0))
    w = float(np.sum(width * inside) + np.sum(np.abs(d[:-1]) * gaps))
    w_err = float(np.sum(width * np.maximum(p, q)))
    ks = float(np.max(np.abs(d))) if d.size else 0.0
    spread = width > 0
    upper = np.maximum(np.abs(prev + p), np.abs(prev - q))[spread]
    ks_err = max(float(upper.max()) - ks, 0.0) if upper.size else 0.0
    # A zero bound (every bin holding one distinct value) means exact: None, as from a merge.
    return Merge(wasserstein=w, ks=ks, wasserstein_error=w_err or None, ks_error=ks_err or None)


def _moments(df: pl.DataFrame) -> tuple[int, float | None, float | None, float | None, float | None]:
    """(n, mean, population std, min, max) of one side from its per-bin figures, combining
    the bins' means and variances exactly (Chan et al.): no sum of squares to cancel."""
    n_j = df["n"].to_numpy().astype(np.float64)
    n = int(n_j.sum())
    if n == 0:
        return 0, None, None, None, None
    mean_j, var_j = df["mean"].to_numpy(), df["var"].fill_null(0.0).to_numpy()
    mean = float(np.sum(n_j * mean_j) / n)
    m2 = float(np.sum(n_j * var_j) + np.sum(n_j * (mean_j - mean) ** 2))
    return n, mean, math.sqrt(max(m2 / n, 0.0)), float(df["lo"].min()), float(df["hi"].max())


def _fine_deciles(fine: _Fine) -> tuple[tuple[float, ...], list[int], list[int]]:
    """Reference deciles (interior bin edges, duplicates dropped) and, per edge, the number
    of reference and current values at or above it, exactly.

    An order statistic is placed by linear interpolation between the reference's min and
    max inside its fine bin (exact when that bin holds one distinct value), then combined
    like quantile_cont. An edge that falls inside a bin's [min, max] is moved to the
    nearer of that bin's min and the next bin's min, where the counts on each side are
    exact: the deciles are then within one fine bin of the reference's, and PSI is exact
    for the edges it reports."""
    nr = int(fine.r.sum())
    cum = np.cumsum(fine.r)

    def order_stat(k: int) -> float:
        j = int(np.searchsorted(cum, k, side="right"))
        t, n = k - (cum[j] - fine.r[j]), fine.r[j]
        lo, hi = fine.r_lo[j], fine.r_hi[j]
        return float(lo if n <= 1 else lo + (hi - lo) * t / (n - 1))

    tail_r = np.concatenate((np.cumsum(fine.r[::-1])[::-1], [0]))  # values in bins >= j
    tail_c = np.concatenate((np.cumsum(fine.c[::-1])[::-1], [0]))
    edges: list[float] = []
    ge_r: list[int] = []
    ge_c: list[int] = []
    for q in DECILES:
        h = (nr - 1) * q
        k = math.floor(h)
        x0, x1 = order_stat(k), order_stat(min(k + 1, nr - 1))
        e = x0 + (h - k) * (x1 - x0)
        j = max(int(np.searchsorted(fine.lo, e, side="right")) - 1, 0)  # last bin with min <= e
        first = j + 1 if e > fine.hi[j] else j  # first bin wholly at or above e
        if fine.lo[j] < e <= fine.hi[j]:  # inside a bin: counts not exact, move the edge
            up = j + 1 < fine.lo.size and fine.lo[j + 1] - e < e - fine.lo[j]
            e, first = (float(fine.lo[j + 1]), j + 1) if up else (float(fine.lo[j]), j)
        if not edges or e > edges[-1]:
            edges.append(float(e))
            ge_r.append(int(tail_r[first]))
            ge_c.append(int(tail_c[first]))
    return tuple(edges), ge_r, ge_c


def _from_fine(plans: Sequence[tuple[int, _Plan]], ref: pl.DataFrame, cur: pl.DataFrame,
               ) -> tuple[dict[str, Merge], dict[str, tuple[float, ...]], dict[int, dict], dict[int, dict]]:
    """Distances, edges and the per-side figures `_summary` reads (n, moments, decile
    counts, out-of-range), for every column counted in fine bins."""
    merges: dict[str, Merge] = {}
    edges: dict[str, tuple[float, ...]] = {}
    ref_rows: dict[int, dict] = {}
    cur_rows: dict[int, dict] = {}
    for i, p in plans:
        r, c = ref.filter(pl.col("f") == i), cur.filter(pl.col("f") == i)
        fine = _align(r.select("b", "n", "lo", "hi"), c.select("b", "n", "lo", "hi"))
        name = p.column.name
        merges[name] = _fine_distances(fine)
        edges[name], ge_r, ge_c = _fine_deciles(fine)
        for df, ge, out in ((r, ge_r, ref_rows), (c, ge_c, cur_rows)):
            n, mean, std, lo, hi = _moments(df)
            row = {f"n{i}": n, f"mean{i}": mean, f"std{i}": std, f"lo{i}": lo, f"hi{i}": hi}
            row |= {f"ge{i}_{j}": g for j, g in enumerate(ge)}
            row[f"out{i}"] = int(df.filter((pl.col("b") < 0) | (pl.col("b") >= FINE_BINS))["n"].sum())
            out[i] = row
    return merges, edges, ref_rows, cur_rows


"""Drift from the rollup store: the comparison and its calendar chunks counted from the
stored per-day bins instead of scans of the raw logs (docs/drift.md, "From rollups").

    result = compare_store(con, store, ref_f, cur_f, columns, settings, descriptions)
    ot = over_time_store(con, store, ref_f, cur_f, columns, result, spec)

Both raise `NotCovered` (one sentence) whenever the store cannot answer: the caller then
runs the raw engine, unchanged. Numeric columns go through the engine's fine-bin path
(`fine`) with the store's 1% log bins as the fine bins: Wasserstein and KS with their
rigorous error bounds, reference deciles moved to bin boundaries (exact counts on both
sides; each edge within one bin, ±0.5% relative, of the exact decile), moments combined
exactly from per-bin sums. Categories, nulls and row counts are exact. The chance bands'
reference quantiles are read from the bins too (each within its bin).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np
import polars as pl

from ..query.filters import Filters
from ..rollup.read import NotCovered, Store
from ..rollup.tables import DAY_US
from .bands import atom_probs
from .bandstore import BandStore
from .chunks import WEEK_OFFSET_US, ChunkSpec, choose
from .fine import _align, _fine_distances, _from_fine, _moments
from .merges import points_from_bins
from .results import DriftResult
from .settings import DriftSettings
from .sql import Column, _Plan, plans
from .storebins import Tables, collapse, exact_values, read

ORIGIN = "rollups"
STORE_UNITS = ("day", "week", "month")   # calendar chunks the per-day tables answer


def day_window(f: Filters, first: datetime | None, last: datetime | None) -> Filters:
    """`f` on whole UTC days: an edge off a day is moved to the day boundary when that
    moves no row in or out (a start at or before the first request, an end after the last);
    otherwise NotCovered. Needs both edges."""
    if f.start is None or f.end is None:
        raise NotCovered("drift from rollups needs a window with a start and an end")
    if f.endpoints:
        raise NotCovered("drift rollups are per version, not per endpoint")

    def us(dt: datetime) -> int:
        return int(round(dt.timestamp() * 1e6))

    lo, hi = us(f.start), us(f.end)
    if lo % DAY_US and first is not None and us(first) >= lo:
        lo -= lo % DAY_US
    if hi % DAY_US and last is not None and us(last) < hi:
        hi += DAY_US - hi % DAY_US
    if lo % DAY_US or hi % DAY_US:
        raise NotCovered("the window does not start and end on whole UTC days")
    to = lambda v: f.start.__class__.fromtimestamp(v / 1e6, tz=f.start.tzinfo)  # noqa: E731
    return replace(f, start=to(lo), end=to(hi))


# -- the comparison -----------------------------------------------------------------------------

def _categorical(tab: Tables, c: Column) -> pl.DataFrame | None:
    """day, value, n of a column counted as categories, or None when the store does not
    know its values exactly (an integer column whose bins hold several values)."""
    if c.name in tab.categories and c.name not in tab.numeric:
        return tab.categories[c.name]
    if c.integer and c.name in tab.numeric:
        return exact_values(tab.numeric[c.name])
    return None


def _side_profile(tab: Tables, columns: Sequence[Column], s: int) -> dict:
    """One side's row of `sql._profile`: rows, and per column n, lo, hi, mean, distinct."""
    row: dict = {"s": s, "rows": int(tab.rows["rows"].sum())}
    for i, c in enumerate(columns):
        if c.kind == "numeric" and c.name in tab.numeric:
            b = tab.numeric[c.name]
            n = int(b["n"].sum())
            exact = exact_values(b)
            d = exact["value"].n_unique() if exact is not None else collapse(b, ["b"]).height + 1
            mean = float((b["mean"] * b["n"]).sum() / n) if n else None
            row |= {f"n{i}": n, f"lo{i}": b["lo"].min(), f"hi{i}": b["hi"].max(), f"mean{i}": mean, f"d{i}": d}
        else:
            g = tab.categories.get(c.name)
            if g is None:
                raise NotCovered(f"{c.name} is not kept in the rollups")
            row |= {f"n{i}": int(g["n"].sum()), f"d{i}": g["value"].n_unique()}
            if c.kind == "numeric":  # an integer label or class prediction, kept as text
                v = g["value"].cast(pl.Float64, strict=False)
                ok = v.is_not_null()
                row |= {f"lo{i}": v.filter(ok).min(), f"hi{i}": v.filter(ok).max(),
                        f"mean{i}": float((v.filter(ok) * g["n"].filter(ok)).sum() / max(int(g["n"].sum()), 1))}
    return row


def _check_plans(planned: Sequence[_Plan], ref: Tables, cur: Tables, settings: DriftSettings) -> None:
    for p in planned:
        c = p.column
        if p.kind == "numeric" and c.name not in ref.numeric:
            raise NotCovered(f"{c.name} is kept as categories in the rollups, not as numbers")
        if p.kind == "categorical" and (_categorical(ref, c) is None or _categorical(cur, c) is None):
            raise NotCovered(f"the rollups do not hold {c.name}'s values one per bin")
        if p.kind == "categorical" and c.kind == "numeric" and not c.integer:
            raise NotCovered(f"{c.name} is numeric: its values as categories need the raw logs")
        # an integer column with few bins, one holding several values: its distinct count
        # (categorical or not) is not known from the bins
        if (c.kind == "numeric" and c.integer and settings.feature(c.name).kind is None
                and c.name in ref.numeric and exact_values(ref.numeric[c.name]) is None
                and p.distinct[0] - 1 <= settings.categorical_max_distinct):
            raise NotCovered(f"whether {c.name} has few distinct values needs the raw logs")


def _fine_frame(tab: Tables, planned: Sequence[tuple[int, _Plan]]) -> pl.DataFrame:
    frames = [collapse(tab.numeric[p.column.name], ["b"]).with_columns(pl.lit(i).alias("f"))
              for i, p in planned]
    return pl.concat(frames).select("f", "b", "n", "lo", "hi", "mean", "var") if frames else pl.DataFrame()


def _outside(bins: pl.DataFrame, lo: float | None, hi: float | None) -> int:
    """Values in bins wholly outside [lo, hi] (a lower bound of the values outside it)."""
    if lo is None or hi is None or not bins.height:
        return 0
    return int(bins.filter((pl.col("hi") < lo) | (pl.col("lo") > hi))["n"].sum())


def _atoms(ref: pl.DataFrame, fine: Sequence[tuple[int, _Plan]]) -> dict[str, list[float]]:
    """Each numeric column's reference quantiles at `atom_probs()`: the order statistic
    placed in its bin by linear interpolation between the bin's min and max."""
    out = {}
    probs = np.asarray(atom_probs())
    for i, p in fine:
        g = ref.filter(pl.col("f") == i).sort("b")
        n = g["n"].to_numpy()
        cum = np.cumsum(n)
        k = np.floor(probs * (cum[-1] - 1)).astype(np.int64)  # quantile_disc: the k-th value
        j = np.searchsorted(cum, k, side="right")
        t = k - (cum[j] - n[j])
        lo, hi = g["lo"].to_numpy()[j], g["hi"].to_numpy()[j]
        out[p.column.name] = (lo + (hi - lo) * np.where(n[j] > 1, t / np.maximum(n[j] - 1, 1), 0)).tolist()
    return out


def compare_store(con, store: Store, ref_f: Filters, cur_f: Filters, columns: Sequence[Column],
                  settings: DriftSettings, descriptions: tuple[str, str],
                  band_store: BandStore | None = None) -> tuple[DriftResult, Tables]:
    """The engine's `compare` from the store (windows on whole UTC days); the current
    window's per-day tables come back too, for its chunks."""
    from . import engine

    ref, cur = read(store, con, columns, ref_f), read(store, con, columns, cur_f)
    prof = pl.DataFrame([_side_profile(ref, columns, 0), _side_profile(cur, columns, 1)],
                        infer_schema_length=None)
    rows = (int(prof["rows"][0]), int(prof["rows"][1]))
    base = dict(reference=descriptions[0], current=descriptions[1], rows_reference=rows[0], rows_current=rows[1])
    if rows[0] == 0 or rows[1] == 0:
        raise NotCovered("a side has no rows: the raw engine says so")
    planned = plans(prof, columns, settings)
    _check_plans(planned, ref, cur, settings)
    fine = [(i, p) for i, p in enumerate(planned) if not p.skip and p.kind == "numeric" and min(p.n) > 0]
    ref_fine, cur_fine = _fine_frame(ref, fine), _fine_frame(cur, fine)
    merges, edges, ref_more, cur_more = _from_fine(fine, ref_fine, cur_fine) if fine else ({}, {}, {}, {})
    ref_row, cur_row = {"rows": rows[0]}, {"rows": rows[1]}
    for i, p in enumerate(planned):
        ref_row[f"n{i}"], cur_row[f"n{i}"] = p.n
        if p.kind == "categorical" and not p.skip:
            for row, tab in ((ref_row, ref), (cur_row, cur)):
                g = collapse(_categorical(tab, p.column), ["value"])
                row[f"h{i}"] = dict(zip(g["value"].to_list(), g["n"].to_list(), strict=True))
    for i, p in fine:
        ref_row |= ref_more[i]
        cur_row |= cur_more[i]
        cur_row[f"out{i}"] = _outside(cur_fine.filter(pl.col("f") == i), p.lo, p.hi)
    results = [engine._feature(p, i, ref_row, cur_row, edges, merges, {}) for i, p in enumerate(planned)]
    results, bands = engine.decide_all(results, _atoms(ref_fine, fine) if fine else {}, band_store)
    warnings = tuple(p.warning for p in planned if p.warning)
    warnings += ("counted from the rollup store's per-day bins (the joint distribution of the "
                 "features needs the raw logs: not scored)",)
    pick = lambda role: next((r for r in results if r.role == role), None)  # noqa: E731
    out = DriftResult(**base, features=tuple(r for r in results if r.role == "feature"),
                      prediction=pick("prediction"), score=pick("score"), label=pick("label"),
                      warnings=warnings, bands=bands, origin=ORIGIN)
    return out, cur


# -- chunks -------------------------------------------------------------------------------------

def chunk_of_day(days: np.ndarray, unit: str) -> np.ndarray:
    """Calendar chunk number (`chunks.key_sql`'s k) of each UTC day number."""
    days = np.asarray(days, dtype=np.int64)
    if unit == "day":
        return days
    if unit == "week":
        return np.floor_divide(days * DAY_US - WEEK_OFFSET_US, 7 * DAY_US)
    if unit == "month":
        return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    raise NotCovered(f"{unit} chunks are finer than the rollups' days")


def auto_spec(store: Store, con, cur_f: Filters, result: DriftResult) -> tuple[ChunkSpec, str, int]:
    """`auto`'s choice from the store's hourly traffic instead of a scan of the times."""
    from ..rollup.read import minutes
    from .overtime import needed_rows

    need, by, left_out = needed_rows(result, max(result.rows_current, 1))
    g = Filters(start=cur_f.start, end=cur_f.end, model_name=cur_f.model_name, model_versions=cur_f.model_versions)
    df = minutes(store, con, g, "hour").group_by("time").agg(pl.col("requests").sum()).sort("time")
    hours = np.column_stack([df["time"].dt.epoch("us").to_numpy() // 3_600_000_000,
                             df["requests"].to_numpy()]) if df.height else np.zeros((0, 2))
    choice = choose(need, by, result.rows_current, hours, left_out)
    if choice.spec.unit == "hour":   # the store keeps days: the finest unit it answers, if one holds enough
        coarser = choose(need, by, result.rows_current, hours, left_out, units=STORE_UNITS, why_units=(
            "; hours would hold enough rows too, but the rollup store keeps days (choose hour chunks "
            "to score them from the raw logs)"))
        if coarser.spec.unit in STORE_UNITS:
            choice = coarser
    return choice.spec, choice.reason, choice.needed


def chunk_rows(cur: Tables, result: DriftResult, plans_: Sequence[_Plan], unit: str) -> list[dict]:
    """The per-chunk rows `counts._summary` reads (k, rows, n{i}, moments, ge{i}_{j},
    h{i}), from the current window's days."""
    by_name = {(f.name, f.role): f for f in result.all}
    days = cur.rows
    k_of = lambda df: df.with_columns(pl.Series("k", chunk_of_day(df["day"].to_numpy(), unit)))  # noqa: E731
    rows = k_of(days).group_by("k").agg(pl.col("rows").sum()).sort("k")
    out = {int(k): {"k": int(k), "rows": int(r), "t0": None, "t1": None}
           for k, r in zip(rows["k"].to_list(), rows["rows"].to_list(), strict=True)}
    for i, p in enumerate(plans_):
        if p.skip:
            continue
        f = by_name[(p.column.name, p.column.role)]
        for row in out.values():
            row[f"n{i}"] = 0
        if p.kind == "categorical":
            per = collapse(k_of(_categorical(cur, p.column)), ["k", "value"])
            for (k,), g in per.group_by(["k"]):
                out[int(k)][f"h{i}"] = dict(zip(g["value"].to_list(), g["n"].to_list(), strict=True))
                out[int(k)][f"n{i}"] = int(g["n"].sum())
            continue
        per = collapse(k_of(cur.numeric[p.column.name]), ["k", "b"])
        for (k,), g in per.group_by(["k"]):
            row = out[int(k)]
            n, mean, std, lo, hi = _moments(g)
            row |= {f"n{i}": n, f"mean{i}": mean, f"std{i}": std, f"lo{i}": lo, f"hi{i}": hi}
            for j, e in enumerate(f.edges):  # bins whose values reach the edge (exact at a bin boundary)
                row[f"ge{i}_{j}"] = int(g.filter(pl.col("hi") >= e)["n"].sum())
    return [out[k] for k in sorted(out)]


def chunk_distances(ref_fine: dict[str, pl.DataFrame], cur: Tables, plans_: Sequence[_Plan],
                    unit: str) -> dict[tuple[str, int], object]:
    """Wasserstein and KS (with their bounds) of each chunk against the reference's bins."""
    out = {}
    for p in plans_:
        if p.skip or p.kind != "numeric" or p.column.name not in ref_fine:
            continue
        days = cur.numeric[p.column.name]
        per = collapse(days.with_columns(pl.Series("k", chunk_of_day(days["day"].to_numpy(), unit))), ["k", "b"])
        r = ref_fine[p.column.name]
        for (k,), g in per.group_by(["k"]):
            out[(p.column.name, int(k))] = _fine_distances(_align(r, g.select("b", "n", "lo", "hi")))
    return out


def reference_bins(store: Store, con, ref_f: Filters, columns: Sequence[Column]) -> dict[str, pl.DataFrame]:
    ref = read(store, con, columns, ref_f)
    return {name: collapse(b, ["b"]).select("b", "n", "lo", "hi") for name, b in ref.numeric.items()}


def reference_points(con, store: Store, ref_f: Filters, columns: Sequence[Column]) -> dict[str, tuple[list, list]]:
    """Each numeric column's `merges.CHUNK_REFERENCE_POINTS` order statistics of the reference,
    each placed in its store bin (`merges.points_from_bins`): what a merge per hour or per
    N rows compares its chunks with, without sorting the reference's values."""
    out = {}
    kept = [c for c in columns if c.kind == "numeric" and c.role in ("feature", "prediction", "score")]
    for name, b in reference_bins(store, con, ref_f, kept).items():
        b = b.sort("b")
        if b.height:
            out[name] = points_from_bins(b["n"].to_numpy(), b["lo"].to_numpy(), b["hi"].to_numpy())
    return out



def over_time_store(con, store: Store, ref_f: Filters, cur_f: Filters, columns: Sequence[Column],
                    result: DriftResult, spec: ChunkSpec):
    """`overtime.over_time` for day, week and month chunks of a result from the store."""
    from .overtime import OverTime, _chunk_frame, _chunk_plans, _records

    if result.origin != ORIGIN:
        raise NotCovered("the comparison did not come from the rollups (its edges are not on their bins)")
    requested, reason, needed = str(spec), "", None
    if spec.unit == "auto":
        spec, reason, needed = auto_spec(store, con, cur_f, result)
    if spec.unit not in STORE_UNITS:
        raise NotCovered(f"{spec} chunks need the raw logs (the rollups are per UTC day)")
    by_name = {(f.name, f.role): f for f in result.all}
    plans_ = _chunk_plans(columns, by_name)
    cur = read(store, con, columns, cur_f)
    counted = chunk_rows(cur, result, plans_, spec.unit)
    merges = chunk_distances(reference_bins(store, con, ref_f, columns), cur, plans_, spec.unit)
    records = _records(counted, plans_, by_name, merges, result.bands)
    frame = pl.DataFrame({"k": [r["k"] for r in counted], "rows": [r["rows"] for r in counted]},
                         schema={"k": pl.Int64, "rows": pl.Int64})
    return OverTime(chunk=str(spec), chunks=_chunk_frame(frame, spec), scores=records,
                    requested=requested, reason=reason, needed=needed, origin=ORIGIN)


# -- the chart of one numeric column -----------------------------------------------------------

def distribution_store(con, store: Store, ref_f: Filters, cur_f: Filters, column: Column,
                       bins: int = 40) -> pl.DataFrame:
    """`distribution.distribution` of a numeric column from the store's bins: the range is
    the 0.5% and 99.5% quantiles of both sides together (each within its 1% bin), and each
    of the `bins` equal-width edges moves up to the lowest value of the first store bin at or
    above it, so a store bin is never split and every count is exact for the edges shown
    (`lo`, `hi`; a bin's width within about 1% of its value from the equal width). Edges
    that meet are merged: there can be fewer bins."""
    sides = []
    for f in (ref_f, cur_f):
        b = read(store, con, [column], f).numeric.get(column.name)
        if b is None:
            raise NotCovered(f"{column.name} is not kept in the rollups as numbers")
        sides.append(collapse(b, ["b"]).select("b", "n", "lo", "hi") if b.height else None)
    if sides[0] is None or sides[1] is None:
        raise NotCovered("a side has no values: the raw engine draws it")
    u = (pl.concat(sides).group_by("b").agg(pl.col("n").sum(), pl.col("lo").min(), pl.col("hi").max()).sort("b"))
    n, lo_b, hi_b = u["n"].to_numpy(), u["lo"].to_numpy(), u["hi"].to_numpy()
    cum = np.cumsum(n)
    total = int(cum[-1])

    def value(h: float) -> float:   # quantile_cont's value at position h, placed in its bin
        k = int(np.floor(h))
        j = int(np.searchsorted(cum, k, side="right"))
        t = (h - (cum[j] - n[j])) / max(n[j] - 1, 1) if n[j] > 1 else 0.0
        return float(lo_b[j] + (hi_b[j] - lo_b[j]) * min(max(t, 0.0), 1.0))

    lo, hi = value(0.005 * (total - 1)), value(0.995 * (total - 1))
    if hi <= lo:
        lo, hi = lo - 0.5, lo + 0.5
    width = (hi - lo) / bins
    wanted = lo + width * np.arange(1, bins)
    at = np.searchsorted(lo_b, wanted, side="left")         # first store bin whose values reach it
    inner = np.unique(lo_b[at[at < len(lo_b)]])
    inner = inner[(inner > lo) & (inner < hi)]
    edges = np.concatenate([[lo], inner, [hi]])
    out = {}
    for name, side in zip(("reference", "current"), sides, strict=True):
        k = np.searchsorted(inner, side["lo"].to_numpy(), side="right")   # chart bin of each store bin
        counts = np.bincount(k, weights=side["n"].to_numpy(), minlength=len(edges) - 1)
        out[name] = counts / max(counts.sum(), 1)
    a, b = edges[:-1], edges[1:]
    label = lambda v: f"{float(f'{v:.4g}'):g}"  # noqa: E731  (4 significant figures, as the raw chart)
    return pl.DataFrame({"bin": [f"[{label(x)}, {label(y)})" for x, y in zip(a, b, strict=True)],
                         "x": (a + b) / 2, "reference": out["reference"], "current": out["current"],
                         "lo": a, "hi": b},
                        schema={"bin": pl.String, "x": pl.Float64, "reference": pl.Float64,
                                "current": pl.Float64, "lo": pl.Float64, "hi": pl.Float64})

"""Drift computed in DuckDB: binned counts, moments and sorted merges of empirical CDFs.

`compare(con, reference, current, columns, settings)` returns a `DriftResult`: one
`FeatureDrift` per column with its summaries, every applicable test's `Score`, its chance
band at the current window's size (`bands`), the decision and the data-quality figures.
`overtime.over_time(...)` cuts the current side into chunks and scores each chunk with
the same tests, bins and bands.

A comparison runs, whatever the number of features:

1. one scan of each side for row counts, null counts, ranges and distinct estimates
   (`sql._profile`), which decide each column's kind and how to merge it;
2. per numeric column with at most `exact_max_rows` values on each side, one query that
   merges the two samples in sorted order and returns only scalars: the exact Wasserstein
   distance, the exact KS statistic and the reference deciles (`merges._merge_sql`);
   larger numeric columns are instead counted in fine bins, one scan of each side for all
   of them (`fine`), with a bound on the error of each distance; the reference's
   quantiles for the chance bands come from one more query over the reference (`_atoms`);
3. one scan of each side that counts every exactly merged numeric column's decile bins,
   its moments and values outside the reference range, and every categorical column's
   categories (`counts._counts`).

Nothing bigger than per-bin or per-category counts comes back to Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import polars as pl

from . import stattests
from .bands import Bands, NullModel, atom_probs, categorical_model, numeric_model, shared
from .bandstore import BandStore
from .counts import _categories, _counts, _histogram, _scores, _summary
from .fine import _fine_sql, _from_fine
from .merges import _edges, _merge_params, _merge_sql
from .quality import assess
from .results import DriftResult, FeatureDrift
from .settings import DriftSettings
from .sql import Column, Side, _parallel, _params, _Plan, _profile, _q, _value, _with, plans
from .stattests import Merge

__all__ = ["Column", "DriftResult", "FeatureDrift", "Side", "compare"]
# Above this many reference rows, the quantiles of the chance bands come from a seeded
# sample of this many rows (their atoms are 1/512 apart: a larger sample changes nothing).
ATOM_SAMPLE_ROWS = 1_000_000


# -- the comparison ----------------------------------------------------------------------------

def compare(con: duckdb.DuckDBPyConnection, reference: Side, current: Side,
            columns: Sequence[Column], settings: DriftSettings, *,
            file_types: dict[str, tuple[str, ...]] | None = None,
            band_store: BandStore | None = None) -> DriftResult:
    """Compare every column of `current` with `reference`; see the module docstring.

    `file_types` maps a column to the distinct Arrow types it has across the files, for
    the data-quality report; `band_store` keeps the chance bands' simulations on disk
    (`bandstore`). Returns a `DriftResult` (with `message` set, and no features,
    when a side has no rows); its `bands` serve the chunks of `over_time` too.
    """
    if not columns:
        return DriftResult(reference=reference.description, current=current.description,
                           rows_reference=0, rows_current=0, features=(),
                           message="The logs have no prediction, score or feature column to compare.")
    prof = _profile(con, reference, current, columns)
    rows = (int(prof["rows"][0]), int(prof["rows"][1]))
    base = dict(reference=reference.description, current=current.description,
                rows_reference=rows[0], rows_current=rows[1])
    if rows[0] == 0 or rows[1] == 0:
        empty = reference if rows[0] == 0 else current
        which = "reference" if rows[0] == 0 else "current window"
        detail = f" ({empty.description})" if empty.description else ""
        return DriftResult(**base, features=(), message=(
            f"The {which}{detail} has no rows: nothing to compare. Choose another window."))
    planned = plans(prof, columns, settings)
    warnings = [p.warning for p in planned if p.warning]

    todo = [(i, p) for i, p in enumerate(planned) if not p.skip and p.kind == "numeric" and min(p.n) > 0]
    # Above the limit a sorted merge of every value costs too much (PERF_NOTES): fine bins.
    fine = [(i, p) for i, p in todo if max(p.n) > settings.exact_max_rows
            and None not in (p.lo, p.hi, p.cur_lo, p.cur_hi)]
    fine_ids = frozenset(i for i, _ in fine)
    exact = [p for i, p in todo if i not in fine_ids]

    def merge(p: _Plan) -> dict[str, Any]:
        # few distinct values (ties): group to (value, count) pairs before sorting. The
        # union has at most about twice the reference's distinct values when alike.
        grouped = 2 * p.distinct[0] <= 0.5 * sum(p.n)
        return _q(con, _merge_sql(reference, current, p.column, grouped=grouped),
                  _params(reference, current, **_merge_params(*p.n))).row(0, named=True)

    def count(edges: dict[str, tuple[float, ...]]) -> pl.DataFrame:
        return _counts(con, [(0, reference, "0"), (1, current, "0")], planned, edges, {}, leave_out=fine_ids)

    # Independent queries run two at a time, each on its own cursor: the sorted merges, the
    # fine-bin scans, the reference quantiles of the bands and, when no merge has edges to
    # give it, the counts.
    jobs = [lambda p=p: merge(p) for p in exact]
    jobs += [lambda side=side: _q(con, *_fine_sql(side, fine)) for side in ((reference, current) if fine else ())]
    jobs.append(lambda: _atoms(con, reference, [p for _, p in todo], rows[0]))
    if not exact:
        jobs.append(lambda: count({}))
    done = _parallel(lambda job: job(), jobs)

    merges: dict[str, Merge] = {}
    edges: dict[str, tuple[float, ...]] = {}
    for p, row in zip(exact, done, strict=False):
        merges[p.column.name] = Merge(wasserstein=float(row["wd"] or 0.0), ks=float(row["ksd"] or 0.0))
        edges[p.column.name] = _edges(row, p.n[0])
    atoms = done[len(exact) + (2 if fine else 0)]
    counted = count(edges) if exact else done[-1]
    by_side = {int(r["s"]): r for r in counted.iter_rows(named=True)}
    ref_row, cur_row = by_side[0], by_side[1]
    if fine:
        fine_ref, fine_cur = done[len(exact)], done[len(exact) + 1]
        more, fine_edges, ref_more, cur_more = _from_fine(fine, fine_ref, fine_cur)
        merges |= more
        edges |= fine_edges
        for i, _ in fine:
            ref_row |= ref_more[i]
            cur_row |= cur_more[i]
    results = [_feature(p, i, ref_row, cur_row, edges, merges, file_types or {})
               for i, p in enumerate(planned)]
    results, bands = decide_all(results, atoms, band_store)
    from . import multivariate

    def judge(method, score, threshold, band):
        test = stattests.REGISTRY[method]
        return test.drifted(score, threshold, band), test.status(score, threshold, band)

    mv_model, mv = multivariate.assess(con, reference, current, [r for r in results if r.role == "feature"], judge)
    return DriftResult(**base, features=tuple(r for r in results if r.role == "feature"),
                       prediction=next((r for r in results if r.role == "prediction"), None),
                       score=next((r for r in results if r.role == "score"), None),
                       label=next((r for r in results if r.role == "label"), None),
                       classes=tuple(r for r in results if r.role == "class_score"),
                       confidence=next((r for r in results if r.role == "max_probability"), None),
                       multivariate=mv, mv_model=mv_model, warnings=tuple(warnings), bands=bands)


def decide_all(results: Sequence[FeatureDrift], atoms: dict[str, list[float] | None],
               band_store: BandStore | None) -> tuple[list[FeatureDrift], Bands]:
    """Every scored column's verdict against its chance band (`_decide`), from the reference's
    shared Bands (one per reference in the process, `shared`), whose bands are simulated
    first, on every core, for all the columns at once. The raw and the rollup engines both."""
    bands = shared(_models(results, atoms), band_store)
    bands.prepare(((f.name, f.role), f.n_current) for f in results if f.score is not None)
    return [_decide(f, bands) for f in results], bands


def _atoms(con, reference: Side, numeric: Sequence[_Plan], rows: int) -> dict[str, list[float] | None]:
    """The reference quantiles at `bands.atom_probs()` of every numeric column, one query
    (on a seeded sample of ATOM_SAMPLE_ROWS rows of a larger reference)."""
    if not numeric:
        return {}
    vals = ", ".join(f"{_value(reference.exprs[p.column.name], 'numeric')} AS c{i}" for i, p in enumerate(numeric))
    sample = f" USING SAMPLE reservoir({ATOM_SAMPLE_ROWS} ROWS) REPEATABLE (7)" if rows > ATOM_SAMPLE_ROWS else ""
    aggs = ", ".join(f"quantile_disc(c{i}, $probs) AS q{i}" for i in range(len(numeric)))
    sql = _with([reference]) + f"SELECT {aggs} FROM (SELECT {vals} FROM {reference.rows_sql}){sample}"
    row = _q(con, sql, _params(reference, probs=atom_probs())).row(0, named=True)
    return {p.column.name: row[f"q{i}"] for i, p in enumerate(numeric)}


def _models(results: Sequence[FeatureDrift], atoms: dict[str, list[float] | None]) -> dict[tuple[str, str], NullModel]:
    out = {}
    for f in results:
        if f.reference is None or not f.n_reference:
            continue
        key = (f.name, f.role)
        if f.kind == "numeric":
            model = numeric_model(key, f.method, atoms.get(f.name), f.reference.n, f.reference.std,
                                  f.edges, f.reference.counts)
        else:
            model = categorical_model(key, f.method, f.reference.counts)
        if model is not None:
            out[key] = model
    return out


def _decide(f: FeatureDrift, bands: Bands) -> FeatureDrift:
    """The decision with the chance band at the current window's size."""
    if f.score is None:
        return f
    from dataclasses import replace

    key = (f.name, f.role)
    band = bands.band(key, f.n_current) if bands.applies(key) else f.band
    test = stattests.REGISTRY[f.method]
    s = f.scores[f.method]
    return replace(f, band=band, drifted=test.drifted(s, f.threshold, band),
                   status=test.status(s, f.threshold, band))


def _feature(p: _Plan, i: int, ref_row: dict, cur_row: dict, edges: dict, merges: dict,
             file_types: dict[str, tuple[str, ...]]) -> FeatureDrift:
    name = p.column.name
    common = dict(name=name, role=p.column.role, kind=p.kind, method=p.method, threshold=p.threshold,
                  rows_reference=p.rows[0], rows_current=p.rows[1], cls=p.column.cls)
    types = file_types.get(name, ())
    if p.skip:
        q = assess(p.kind, None, None, p.rows, p.n, types=types)
        return FeatureDrift(**common, score=None, p_value=None, drifted=None, status="skipped",
                            n_reference=p.n[0], n_current=p.n[1], quality=q, problem=p.skip)
    e = edges.get(name, ())
    cats: tuple[str, ...] = ()
    if p.kind == "categorical":
        cats = _categories(_histogram(ref_row.get(f"h{i}")), p.column.integer)
    merge = merges.get(name)
    ref = _summary(p.kind, ref_row, i, e, cats, merge)
    cur = _summary(p.kind, cur_row, i, e, cats, merge)
    # sum() over no non-null value is NULL: none out of range
    out_of_range = int(cur_row[f"out{i}"] or 0) if f"out{i}" in cur_row else None
    q = assess(p.kind, ref, cur, p.rows, p.n, categories=cats,
               current_hist=_histogram(cur_row.get(f"h{i}")) if p.kind == "categorical" else None,
               out_of_range=out_of_range, types=types)
    labels = _labels(p.kind, e, cats)
    if ref.n == 0 or cur.n == 0:
        side = "reference" if ref.n == 0 else "current window"
        return FeatureDrift(**common, score=None, p_value=None, drifted=None, status="no data",
                            n_reference=ref.n, n_current=cur.n, reference=ref, current=cur,
                            labels=labels, edges=e, quality=q,
                            problem=f"no non-null values in the {side}: drift not computed")
    scores = _scores(p.kind, ref, cur)
    test = stattests.REGISTRY[p.method]
    s = scores[p.method]
    return FeatureDrift(**common, score=s.value, p_value=s.p_value, drifted=test.drifted(s, p.threshold),
                        status=test.status(s, p.threshold), n_reference=ref.n, n_current=cur.n,
                        scores=scores, reference=ref, current=cur, labels=labels, edges=e, quality=q,
                        error=s.error)


def _labels(kind: str, edges: tuple[float, ...], cats: tuple[str, ...]) -> tuple[str, ...]:
    if kind == "categorical":
        return cats + ("(unseen in reference)",)
    if not edges:
        return ("all values",)
    fmt = [f"{e:.4g}" for e in edges]
    return (f"< {fmt[0]}",) + tuple(f"[{a}, {b})" for a, b in zip(fmt, fmt[1:], strict=False)) + (f">= {fmt[-1]}",)


"""Drift over time: the current window cut into chunks, each scored against the reference
with the same tests, thresholds and bins as the whole window, and judged against the
chance band at its own size.

    ot = over_time(con, reference, current, columns, result, "auto")
    ot.chunks   # k, start, end, rows, first_row, last_row
    ot.scores   # name, role, k, method, score, p_value, threshold, band, drifted, n, null_share
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import duckdb
import numpy as np
import polars as pl

from ..logs.sql import cursor, execute
from . import stattests, timeruns
from .bands import Bands
from .cdf import chunk_distances, reference_cdf
from .chunks import AutoChoice, ChunkSpec, bounds, choose, hourly_counts, key_params, key_sql, parse
from .counts import _counts, _summary
from .engine import Column, DriftResult
from .merges import MAX_MERGE_ROWS, chunk_merge
from .sql import Side, _parallel, _params, _Plan, _q, _value, _with
from .stattests import Merge

# A chunk decides stably when chance alone stays below this share of the threshold:
# a score at the threshold is then at least twice what chance gives at that size.
STABLE_SHARE = 0.5
SCHEMA = {"name": pl.String, "role": pl.String, "k": pl.Int64, "method": pl.String,
          "score": pl.Float64, "p_value": pl.Float64, "threshold": pl.Float64, "band": pl.Float64,
          "drifted": pl.Boolean, "n": pl.Int64, "null_share": pl.Float64}


@dataclass(frozen=True)
class OverTime:
    chunk: str  # the chunks used, e.g. "week" or "rows:5000"
    chunks: pl.DataFrame  # k, start, end (UTC datetimes; null without timestamps), rows, first_row, last_row
    scores: pl.DataFrame  # SCHEMA: one row per (column, chunk)
    requested: str = ""  # what was asked for ("auto" when chosen automatically)
    reason: str = ""  # why these chunks (auto), for the screen
    needed: int | None = None  # rows a chunk needs for a stable decision
    origin: str = "raw"  # "rollups" when counted from the rollup store's days (`fromstore`)

    def worst(self) -> pl.DataFrame:
        """Per column its most drifted chunk: name, role, k, start, score, ratio (score over
        the larger of threshold and band; p-value tests: threshold over p)."""
        df = ratio(self.scores).filter(pl.col("ratio").is_not_null())
        if df.height == 0:
            return df.select("name", "role", "k", "score", "ratio").with_columns(
                pl.lit(None, pl.Datetime("us", "UTC")).alias("start"))
        best = df.sort("ratio", descending=True).group_by("name", "role", maintain_order=True).first()
        return best.join(self.chunks.select("k", "start"), on="k", how="left").select(
            "name", "role", "k", "start", "score", "ratio")


def ratio(scores: pl.DataFrame) -> pl.DataFrame:
    """Scores with `ratio`: score / max(threshold, band) (1 = the decision line); for
    p-value tests threshold / p."""
    by_p = pl.col("method").map_elements(lambda m: stattests.REGISTRY[m].decide_on == "p_value",
                                         return_dtype=pl.Boolean) if scores.height else pl.lit(False)
    line = pl.max_horizontal(pl.col("threshold"), pl.col("band").fill_null(0.0))
    r = pl.when(by_p).then(pl.col("threshold") / pl.col("p_value").clip(1e-300, None)) \
        .otherwise(pl.col("score") / line)
    return scores.with_columns(r.alias("ratio"))


def needed_rows(result: DriftResult, limit: int) -> tuple[int, str | None, tuple[str, ...]]:
    """Rows a chunk needs so that every column's band is below its threshold: the largest
    stable size over the columns, the column needing it, and columns that cannot get
    there within `limit` rows."""
    bands: Bands | None = result.bands
    need, by, left_out = 1, None, []
    if bands is not None:  # every column's walk starts at the top of its grid: drawn on every core first
        bands.prepare_top((f.name, f.role) for f in result.all if f.score is not None)
    for f in result.all:
        key = (f.name, f.role)
        if bands is None or f.score is None or not bands.applies(key):
            continue
        share = f.n_current / f.rows_current if f.rows_current else 1.0  # nulls do not count
        size = bands.stable_size(key, STABLE_SHARE * f.threshold, limit)
        if size is None:
            left_out.append(f.name)
            continue
        rows = int(np.ceil(size / max(share, 1e-9)))
        if rows > need:
            need, by = rows, f.name
    return need, by, tuple(left_out)


def auto_chunks(con: duckdb.DuckDBPyConnection, current: Side, result: DriftResult) -> AutoChoice:
    need, by, left_out = needed_rows(result, max(result.rows_current, 1))
    hours = hourly_counts(con, current) if current.ts_us is not None else None
    return choose(need, by, result.rows_current, hours, left_out)


def over_time(con: duckdb.DuckDBPyConnection, reference: Side, current: Side,
              columns: Sequence[Column], result: DriftResult, chunk: str | ChunkSpec = "auto", *,
              chunk_rows: int = 10_000, exact_max_rows: int = 2_000_000, judge: bool = True,
              joint: bool = False, reference_points: dict | None = None) -> OverTime:
    """Score every chunk of `current` against `reference` (chunk: auto, hour, day, week,
    month, rows:N, or rows with `chunk_rows`).

    Each chunk is tested with the same test and threshold as `result`, on the same bins
    (reference deciles, reference categories), and drifts only above its chance band.
    With `joint`, the numeric features' joint distribution is scored per chunk too (name
    and role "multivariate"). Wasserstein and KS per chunk are exact (`cdf`, in numpy over the values of the window)
    up to `exact_max_rows` values per side; above, sorted merges per chunk in DuckDB, the
    reference as order statistics (`merges.chunk_merge`): `reference_points` per column when known.
    """
    spec = parse(chunk, chunk_rows)
    requested, reason, needed = str(spec), "", None
    if spec.unit == "auto":
        choice = auto_chunks(con, current, result)
        spec, reason, needed = choice.spec, choice.reason, choice.needed
    if spec.calendar and current.ts_us is None:
        raise ValueError(f"{spec.unit} chunks need timestamps; these logs have none: use rows:N or auto")
    by_name = {(f.name, f.role): f for f in result.all}
    plans = _chunk_plans(columns, by_name)
    extra = key_params(spec)
    key = key_sql(current, spec)
    edges = {f.name: f.edges for f in result.all}
    todo = [p for p in plans if not p.skip and p.kind == "numeric"
            and stattests.REGISTRY[p.method].needs_merge]
    n_chunks_guess = max(result.rows_current // (spec.rows or 1), 1) if spec.unit == "rows" else None

    def counts() -> pl.DataFrame:
        return _counts(con, [(1, current, key)], plans, edges, extra).sort("k")

    def merge(p: _Plan, n_chunks: int) -> pl.DataFrame:
        compress = by_name[(p.column.name, p.column.role)].reference.n * n_chunks > MAX_MERGE_ROWS
        sql, more = chunk_merge(reference, current, p.column, key, compress,
                                (reference_points or {}).get(p.column.name))
        return _q(con, sql, _params(reference, current, **extra) | more)

    merges: dict[tuple[str, int], Merge] = {}
    small = [p for p in todo if max(p.n) <= exact_max_rows]  # exact, in numpy (`cdf`)
    large = [p for p in todo if max(p.n) > exact_max_rows]  # sorted merges per chunk in DuckDB
    jobs = [counts]
    if small:
        jobs.append(lambda: _current_values(con, current, key, small, extra))
        jobs += [lambda p=p: _reference_values(con, reference, p) for p in small]
    if n_chunks_guess is not None:  # rows: the number of chunks is known, run all at once
        jobs += [lambda p=p: merge(p, n_chunks_guess) for p in large]
    done = _parallel(lambda job: job(), jobs)
    counted = done[0]
    if small:
        values = done[1]
        for j, p in enumerate(small):
            ref_df = done[2 + j]
            x = values[f"v{j}"].to_numpy()
            ok = ~np.isnan(x)
            ids, w, ks = chunk_distances(
                reference_cdf(ref_df["x"].to_numpy(), ref_df["n"].to_numpy()),
                values["k"].to_numpy()[ok], x[ok])
            for kk, wd, kd in zip(ids.tolist(), w.tolist(), ks.tolist(), strict=True):
                merges[(p.column.name, int(kk))] = Merge(wd, kd)
    if large:
        merged = done[2 + len(small) if small else 1:] if n_chunks_guess is not None else \
            _parallel(lambda p: merge(p, max(counted.height, 1)), large)
        for p, df in zip(large, merged, strict=True):
            for r in df.iter_rows(named=True):
                merges[(p.column.name, int(r["k"]))] = Merge(float(r["wd"] or 0.0), float(r["ksd"] or 0.0))
    chunks = _chunk_frame(counted, spec)
    bands = result.bands if judge else None  # judge=False: scores only (calibration)
    records = _records(counted.iter_rows(named=True), plans, by_name, merges, bands).to_dicts()
    mv = result.multivariate
    if joint and judge and mv is not None and result.mv_model is not None:  # the joint distribution per chunk
        from . import multivariate

        per = multivariate.errors(con, result.mv_model, current, key, extra)
        test = stattests.REGISTRY[mv.method]
        for r in per.iter_rows(named=True):
            cur = replace(mv.current, n=int(r["n"]), mean=r["mean"], std=r["sd"])
            score = test(mv.reference, cur)
            band = multivariate.band(mv.reference.mean or 0.0, mv.reference.std or 0.0, mv.reference.n, cur.n)
            records.append({"name": mv.name, "role": mv.role, "k": int(r["k"]), "method": mv.method,
                            "score": score.value, "p_value": None, "threshold": mv.threshold, "band": band,
                            "drifted": test.drifted(score, mv.threshold, band), "n": cur.n, "null_share": None})
    return OverTime(chunk=str(spec), chunks=chunks, scores=pl.DataFrame(records, schema=SCHEMA),
                    requested=requested, reason=reason, needed=needed)


def _chunk_plans(columns: Sequence[Column], by_name: dict) -> list[_Plan]:
    """The plans of the chunks: the whole window's kind, test, threshold and reference range."""
    plans: list[_Plan] = []
    for col in columns:
        f = by_name.get((col.name, col.role))
        if f is None:
            continue
        numeric = f.reference is not None and f.kind == "numeric"
        plans.append(_Plan(col, f.kind, f.method, f.threshold, None, (f.rows_reference, f.rows_current),
                           (f.n_reference, f.n_current),
                           lo=f.reference.min if numeric else None, hi=f.reference.max if numeric else None,
                           shift=f.reference.mean if numeric else None,
                           skip=None if f.reference is not None and f.n_reference and f.n_current else "no data"))
    return plans


def _records(counted: Iterable[dict], plans: Sequence[_Plan], by_name: dict, merges: dict,
             bands: Bands | None) -> pl.DataFrame:
    """One SCHEMA row per (column, chunk) from the per-chunk counts (rows as dicts) and distances."""
    records = []
    counted = list(counted)
    if bands is not None:  # every chunk's band, drawn on every core first
        bands.prepare(((p.column.name, p.column.role), int(row.get(f"n{i}") or 0))
                      for row in counted for i, p in enumerate(plans) if not p.skip)
    for row in counted:
        k = int(row["k"])
        rows = int(row["rows"])
        for i, p in enumerate(plans):
            if p.skip:
                continue
            f = by_name[(p.column.name, p.column.role)]
            cats = f.labels[:-1] if p.kind == "categorical" else ()
            m = merges.get((p.column.name, k))
            ref = f.reference if m is None else replace(f.reference, merge=m)
            cur = _summary(p.kind, row, i, f.edges, cats, m)
            test = stattests.REGISTRY[p.method]
            score = test(ref, cur) if cur.n and (m is not None or not test.needs_merge) else None
            band = bands.band((p.column.name, p.column.role), cur.n) if bands is not None and cur.n else None
            records.append({"name": p.column.name, "role": p.column.role, "k": k, "method": p.method,
                            "score": score.value if score else None,
                            "p_value": score.p_value if score else None,
                            "threshold": p.threshold, "band": band,
                            "drifted": test.drifted(score, p.threshold, band) if score else None,
                            "n": cur.n, "null_share": 1 - cur.n / rows if rows else None})
    return pl.DataFrame(records, schema=SCHEMA)


# The reference is cut into this many consecutive chunks (of 100 to 1,000 rows) to see how
# much more they vary than independent draws; of a large reference, at most
# CALIBRATION_MAX_CHUNKS of its chunks are scored, spread evenly over it (every stride-th:
# scoring all 2,400 chunks of a 2.4M-row reference was most of a first Drift page at 10M rows).
# With timestamps those chunks are picked from the rows per minute (`timeruns`): numbering
# the whole reference to find them was one sort of every row and column (93 s at 100M rows).
CALIBRATION_CHUNKS = 50
CALIBRATION_MAX_CHUNKS = 200


def calibrate(con: duckdb.DuckDBPyConnection, reference: Side, columns: Sequence[Column],
              result: DriftResult, *, minutes: Callable[[], pl.DataFrame] | None = None) -> DriftResult:
    """`result` with its bands widened by each column's clustering in the reference.

    The reference's own consecutive chunks of n0 rows (in file or time order; at most
    CALIBRATION_MAX_CHUNKS of them, spread evenly) are scored against the pool of those
    chunks; a column whose mean chunk score exceeds the mean score of independent draws of
    the same size (finite-population size n0 M / (M - n0), a chunk being part of the pool of
    M values) gets that ratio as its `Bands.inflation`. Decisions of the whole window are
    taken again with the widened bands. Of a large reference with timestamps the chunks
    are the first n0 rows of runs of whole minutes (`timeruns`); `minutes` returns its rows
    per minute (unit, n: e.g. from the rollup store), else they are counted from the
    reference."""
    bands = result.bands
    m = result.rows_reference
    n0 = max(100, min(1000, m // CALIBRATION_CHUNKS))
    if bands is None or result.message or m < 4 * n0 or (reference.order_sql is None and reference.ts_us is None):
        return result
    with bands.calibration():  # the alert thread and a page may share these Bands: one waits
        if not bands.calibrated:  # once per reference (`bands.shared`)
            _inflate(con, reference, columns, result, bands, n0, minutes)
    from .engine import _decide

    redo = lambda fs: tuple(_decide(f, bands) for f in fs)  # noqa: E731
    return replace(result, features=redo(result.features),
                   prediction=redo((result.prediction,))[0] if result.prediction else None,
                   score=redo((result.score,))[0] if result.score else None,
                   label=redo((result.label,))[0] if result.label else None,
                   classes=redo(result.classes),
                   confidence=redo((result.confidence,))[0] if result.confidence else None)


def _inflate(con, reference: Side, columns: Sequence[Column], result: DriftResult, bands: Bands,
             n0: int, minutes: Callable[[], pl.DataFrame] | None = None) -> None:
    """Each kept chunk is scored against the pool of all kept chunks, not against the whole
    reference: the pool is a sample of the reference (its chunks spread evenly over it), a
    chunk is as much a part of it as of the reference, and the finite-population size
    n M / (M - n) (M: the pool's values) makes independent draws vary as its chunks would.
    So the calibration reads the kept rows only, at most CALIBRATION_MAX_CHUNKS x n0, and
    scores them exactly in numpy: at 10M rows (2.4M-row reference) the Drift page's first
    comparison went from 172 s to 34 s, every column's factor within 0.007 of the one
    scored against the reference (docs/drift.md)."""
    own = replace(reference, name="calibration")
    stride = -(-(result.rows_reference // n0) // CALIBRATION_MAX_CHUNKS)   # ceil: at most that many
    table = None
    if stride > 1:
        picked = None
        if reference.ts_us is not None:  # runs of whole minutes: no sort of the whole reference
            try:
                picked = timeruns.chunk_table(con, own, n0, -(-(result.rows_reference // n0) // stride),
                                              minutes() if minutes is not None else None)
            except duckdb.Error:
                picked = None
        own, table = picked or _materialised(con, own, n0, stride)
    try:
        # the pool is at most CALIBRATION_MAX_CHUNKS x 1,000 rows: exact (numpy) at any size
        ot = over_time(con, replace(own, name="pool"), own, columns, result, ChunkSpec("rows", n0),
                       exact_max_rows=2 ** 62, judge=False)
    finally:
        if table is not None:
            cursor(con).execute(f"DROP TABLE IF EXISTS {table}")
    full = ot.chunks.filter(pl.col("rows") == n0)["k"]
    scored = ot.scores.filter(pl.col("score").is_not_null())
    pool = {(r["name"], r["role"]): float(r["n"]) for r in scored.group_by("name", "role").agg(pl.col("n").sum())
            .iter_rows(named=True)}
    scores = scored.filter(pl.col("k").is_in(full.implode()))
    sizes = {}
    for (name, role), g in scores.group_by("name", "role"):
        n, m_k = float(g["n"].mean() or 0), pool.get((name, role), 0.0)
        if bands.applies((name, role)) and 0 < n < m_k:
            sizes[(name, role)] = (g, n * m_k / (m_k - n))
    bands.prepare(((key, n_eff) for key, (_, n_eff) in sizes.items()), effective=True)  # on every core
    for key, (g, n_eff) in sizes.items():
        expected = bands.mean(key, n_eff)
        if expected and expected > 0:
            bands.inflation[key] = max(1.0, float(g["score"].mean()) / expected)
    bands.calibrated = True


def _kept(pos: str) -> str:
    """Whether the row at 0-based position `pos` is in a kept chunk (`every_nth_chunk`)."""
    return f"(({pos}) // $cal_rows) % $cal_stride = 0"


def _cal_params(n0: int, stride: int) -> dict:
    return {"cal_rows": int(n0), "cal_stride": int(stride)}


def every_nth_chunk(side: Side, n0: int, stride: int) -> Side:
    """The rows of `side` in its consecutive chunks of n0 rows numbered 0, stride, 2 stride, ...
    (whole chunks, in order: chunks of n0 rows of the result are those chunks)."""
    order = side.order_sql or side.ts_us
    body = (f"(SELECT * FROM {side.rows_sql} QUALIFY {_kept(f'row_number() OVER (ORDER BY {order}) - 1')}"
            f") AS {side.name}_rows")
    return replace(side, rows_sql=body, params=side.params | _cal_params(n0, stride))


def _materialised(con, side: Side, n0: int, stride: int) -> tuple[Side, str | None]:
    """`every_nth_chunk(side, n0, stride)`'s rows kept once in a table of their own, in order
    (`mw_pos`, each row's position in `side`): the calibration scores every column against
    them, and each of those queries would otherwise read the whole log again to find a few
    thousand rows (once per column). One sort of `side` numbers the rows, picks the kept
    chunks and orders them; the sort carries the columns' expressions only
    (`timeruns.projection`), not every column of the logs. Falls back to `every_nth_chunk`
    itself when the table cannot be made."""
    order = side.order_sql or side.ts_us
    name = f"mw_cal_{uuid.uuid4().hex[:12]}"
    select, exprs, ts = timeruns.projection(side)
    sql = (f"CREATE TABLE {name} AS {_with([side])}SELECT {select}, row_number() OVER (ORDER BY {order}) - 1 AS mw_pos "
           f"FROM {side.rows_sql} QUALIFY {_kept('mw_pos')}")
    params = side.params | _cal_params(n0, stride)
    cur = cursor(con)
    try:
        execute(cur, sql, params)
        kept = Side(name=side.name, ctes=(), rows_sql=name, params={}, exprs=exprs,
                    ts_us=ts, order_sql="mw_pos", description=side.description)
        return kept, name
    except duckdb.Error:
        cur.execute(f"DROP TABLE IF EXISTS {name}")
        return every_nth_chunk(side, n0, stride), None
    finally:
        cur.close()


def _current_values(con, current: Side, key: str, plans: Sequence[_Plan], extra: dict) -> pl.DataFrame:
    """k and every column's values (NaN for nulls) of the current window, as numbers."""
    vals = ", ".join(f"coalesce({_value(current.exprs[p.column.name], 'numeric')}, 'NaN'::DOUBLE) AS v{j}"
                     for j, p in enumerate(plans))
    return _q(con, _with([current]) + f"SELECT {key} AS k, {vals} FROM {current.rows_sql}",
              _params(current, **extra))


def _reference_values(con, reference: Side, p: _Plan) -> pl.DataFrame:
    """The reference's distinct values of a numeric column with their counts."""
    v = _value(reference.exprs[p.column.name], "numeric")
    return _q(con, _with([reference]) + f"SELECT x, count(*) AS n FROM (SELECT {v} AS x FROM "
              f"{reference.rows_sql}) WHERE x IS NOT NULL GROUP BY x", _params(reference))


def _chunk_frame(counted: pl.DataFrame, spec: ChunkSpec) -> pl.DataFrame:
    """k, start, end, rows, first_row, last_row (0-based positions in the window's order)."""
    rows = counted["rows"].cast(pl.Int64)
    last = rows.cum_sum() - 1
    k = counted["k"].cast(pl.Int64)
    if spec.calendar:
        start, end = bounds(spec.unit, k.to_numpy())
        start_s = pl.Series("start", start, dtype=pl.Datetime("us", "UTC"))
        end_s = pl.Series("end", end, dtype=pl.Datetime("us", "UTC"))
    else:
        start_s = counted["t0"].cast(pl.Datetime("us", "UTC")).alias("start")
        end_s = counted["t1"].cast(pl.Datetime("us", "UTC")).alias("end")
    return pl.DataFrame({"k": k, "start": start_s, "end": end_s, "rows": rows,
                         "first_row": last - rows + 1, "last_row": last})

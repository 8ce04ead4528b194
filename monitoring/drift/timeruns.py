"""The chance bands' calibration chunks of a reference with timestamps, picked from its rows
per minute instead of one sort of the whole reference (docs/drift.md, "Rows that come in
clusters").

    minutes = unit_counts(con, reference)                  # unit, n: one hash aggregate
    runs = pick_runs(minutes["unit"], minutes["n"], n0, k) # (first, last) unit of each run
    side, table = chunk_table(con, reference, n0, k, minutes)

A chunk is still n0 consecutive rows of the reference in time order: the first n0 rows (by
the reference's own order) of a run of whole consecutive time units holding at least n0
rows. At most k runs, started at row positions spread evenly over the reference, never
overlapping. Only the rows of those runs are read and numbered (a small sort per run).
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import duckdb
import numpy as np
import polars as pl

from ..logs.sql import cursor, execute, run
from ..query.filters import bucket_sql
from .sql import Side, _params, _with

MINUTE_US = 60_000_000
# Coarser units when minutes are sparse (a run should span a handful of units: the join
# that picks its rows holds one entry per unit of every run).
UNITS_MIN = (1, 60, 1440)
UNITS_PER_RUN = 16


def unit_counts(con: duckdb.DuckDBPyConnection, side: Side) -> pl.DataFrame:
    """Rows of `side` per minute since the epoch (unit, n), in order: one hash aggregate
    over its time, no sort of its rows."""
    sql = (_with([side]) + f"SELECT {bucket_sql(side.ts_us, str(MINUTE_US))} AS unit, count(*) AS n "
           f"FROM {side.rows_sql} GROUP BY 1 HAVING unit IS NOT NULL ORDER BY 1")
    return run(con, sql, _params(side))


def coarsen(units: np.ndarray, counts: np.ndarray, n0: int) -> tuple[int, np.ndarray, np.ndarray]:
    """(unit in minutes, units, counts): minutes, or hours or days when a run of n0 rows
    would span more than UNITS_PER_RUN occupied minutes (hours) on average."""
    units, counts = np.asarray(units, dtype=np.int64), np.asarray(counts, dtype=np.int64)
    for size in UNITS_MIN:
        u = np.floor_divide(units, size)
        uniq, inv = np.unique(u, return_inverse=True)
        c = np.bincount(inv, weights=counts, minlength=len(uniq)).astype(np.int64)
        if size == UNITS_MIN[-1] or c.sum() >= len(uniq) * n0 / UNITS_PER_RUN:
            return size, uniq, c
    raise AssertionError("unreachable")


def pick_runs(units: np.ndarray, counts: np.ndarray, n0: int, k: int) -> list[tuple[int, int]]:
    """At most `k` runs of consecutive occupied units, as (first, last) unit, each the shortest
    from its start holding >= n0 rows; starts are the first units at or after the row
    positions 0, m/k, 2m/k, ... (m rows in all), moved past the previous run when it reaches
    them. Runs that cannot reach n0 rows before the end are left out."""
    order = np.argsort(units, kind="stable")
    u, c = np.asarray(units, dtype=np.int64)[order], np.asarray(counts, dtype=np.int64)[order]
    if len(u) == 0 or k <= 0 or n0 <= 0:
        return []
    cum = np.cumsum(c)
    before = cum - c
    total = int(cum[-1])
    out: list[tuple[int, int]] = []
    allowed = 0  # the first unit index a run may start at
    for target in (np.arange(k, dtype=np.int64) * total) // k:
        i = max(int(np.searchsorted(before, target, side="left")), allowed)
        if i >= len(u):
            break
        j = int(np.searchsorted(cum, before[i] + n0, side="left"))
        if j >= len(u):
            break
        out.append((int(u[i]), int(u[j])))
        allowed = j + 1
    return out


def projection(side: Side) -> tuple[str, dict[str, str], str | None]:
    """(SELECT list, exprs, ts_us) that keep only what the calibration scores: each column's
    expression as a column `mw_c<i>` (and the time as `mw_ts`), not every column of the logs.
    A table of the kept rows then holds a dozen narrow columns instead of the logs' request
    ids, statuses and every other column, and a join's clashing names cannot break it."""
    names = list(side.exprs)
    cols = [f"{side.exprs[n]} AS mw_c{i}" for i, n in enumerate(names)]
    ts = None
    if side.ts_us is not None:
        cols.append(f"{side.ts_us} AS mw_ts")
        ts = "mw_ts"
    return ", ".join(cols) or "1 AS mw_none", {n: f"mw_c{i}" for i, n in enumerate(names)}, ts


def chunk_table(con: duckdb.DuckDBPyConnection, side: Side, n0: int, k: int,
                minutes: pl.DataFrame | None = None) -> tuple[Side, str] | None:
    """The calibration's chunks of `side` (which has `ts_us`) in a table of their own: run j's
    first n0 rows in the side's order at positions `mw_pos` j n0 ... j n0 + n0 - 1, runs with
    fewer rows left out. `minutes` (unit, n per minute, e.g. from the rollup store) saves the
    count. Returns (side over the table, table name), or None when no run holds n0 rows.
    The table holds the side's column expressions only (`projection`)."""
    if minutes is None:
        minutes = unit_counts(con, side)
    size, units, counts = coarsen(minutes["unit"].to_numpy(), minutes["n"].to_numpy(), n0)
    runs = pick_runs(units, counts, n0, k)
    if not runs:
        return None
    unit_of, run_of = [], []
    for j, (first, last) in enumerate(runs):
        inside = units[(units >= first) & (units <= last)]
        unit_of += inside.tolist()
        run_of += [j] * len(inside)
    order = side.order_sql or side.ts_us
    name = f"mw_cal_{uuid.uuid4().hex[:12]}"
    runs_cte = "mw_runs AS (SELECT unnest($cal_units) AS mw_unit, unnest($cal_runs) AS mw_k)"
    # the unit of each row joined to its run (a hash join on one small table: no range join,
    # no sort of the reference); only the runs' rows are numbered, within their run
    select, exprs, ts = projection(side)
    sql = (f"CREATE TABLE {name} AS {_with([side], [runs_cte])}"
           "SELECT * EXCLUDE (mw_unit, mw_k, mw_i, mw_n, mw_ord), mw_k * $cal_rows + mw_i AS mw_pos FROM ("
           "SELECT *, row_number() OVER (PARTITION BY mw_k ORDER BY mw_ord) - 1 AS mw_i, "
           "count(*) OVER (PARTITION BY mw_k) AS mw_n FROM ("
           f"SELECT {select}, {bucket_sql(side.ts_us, str(size * MINUTE_US))} AS mw_unit, row({order}) AS mw_ord "
           f"FROM {side.rows_sql}) AS mw_ref JOIN mw_runs USING (mw_unit)) "
           "WHERE mw_i < $cal_rows AND mw_n >= $cal_rows")
    params = _params(side) | {"cal_units": [int(u) for u in unit_of], "cal_runs": run_of, "cal_rows": int(n0)}
    cur = cursor(con)
    try:
        try:
            execute(cur, sql, params)
        except duckdb.Error:
            cur.execute(f"DROP TABLE IF EXISTS {name}")
            raise
    finally:
        cur.close()
    kept = replace(side, ctes=(), rows_sql=name, params={}, exprs=exprs, ts_us=ts, order_sql="mw_pos")
    return kept, name

"""The rows the engine reads, as SQL: `Side` (one side of a comparison), `Column` (what
is tested), the SQL helpers every step shares, and step 1, the profile of both sides.

`_profile` scans each side once for row counts, null counts, ranges and (reference only)
distinct estimates; `plans` turns it into one `_Plan` per column: its kind, test,
threshold and what the later steps need.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from .. import priority
from ..logs.source import run

if TYPE_CHECKING:
    from .settings import DriftSettings

MERGE_WORKERS = 2


@dataclass(frozen=True)
class Side:
    """The rows of one side of a comparison, as SQL.

    `ctes` are (name, body) pairs the rows need (shared by name between the sides),
    `rows_sql` a FROM clause over them (with its WHERE), `params` its bound values, and
    `exprs` the SQL of each column over those rows ("NULL" when the side lacks it).
    `ts_us` is the expression of the time in microseconds, for chunks (None: no time).
    """

    name: str
    ctes: tuple[tuple[str, str], ...]
    rows_sql: str
    params: dict[str, Any]
    exprs: dict[str, str]
    ts_us: str | None = None
    order_sql: str | None = None  # deterministic row order, for chunks of N rows
    description: str = ""


@dataclass(frozen=True)
class Column:
    """A column to test: a feature, the prediction, the score, the label, a class's
    probability or the largest of them (`classes`)."""

    name: str
    role: str  # "feature" | "prediction" | "score" | "label" | "class_score" | "max_probability"
    kind: str  # kind found in the logs: "numeric" | "categorical"
    integer: bool = False  # integer type: categorical when it has few distinct values
    cls: str | None = None  # role class_score: the class whose probability it is



# -- SQL assembly ------------------------------------------------------------------------------

def _with(sides: Sequence[Side], extra: Sequence[str] = ()) -> str:
    ctes: dict[str, str] = {}
    for side in sides:
        for name, body in side.ctes:
            ctes.setdefault(name, body)
    # The sides' rows are inlined where read, each with its side's filter pushed into the
    # scan: DuckDB 2.0 otherwise materializes `logs` whole when a query reads it through a
    # CTE read twice (an hourly merge of one day against a 7-day reference at 100M rows:
    # 4.2 -> 1.6 s, the same sums; docs/benchmarks.md).
    parts = [f"{name} AS NOT MATERIALIZED ({body})" for name, body in ctes.items()] + list(extra)
    return ("WITH " + ", ".join(parts) + " ") if parts else ""


def _params(*sides: Side, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in sides:
        out |= s.params
    return out | more


def _value(expr: str, kind: str, integer: bool = False) -> str:
    """A column's values as DOUBLE (finite, else NULL) or as text categories."""
    if kind == "numeric":
        v = f"TRY_CAST({expr} AS DOUBLE)"
        return f"CASE WHEN isfinite({v}) THEN {v} END"
    if integer:
        return f"CAST(TRY_CAST({expr} AS BIGINT) AS VARCHAR)"
    return f"CAST({expr} AS VARCHAR)"




def _q(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> pl.DataFrame:
    return run(con, sql, params)


def _parallel(fn, items: Sequence) -> list:
    """fn over items, two at a time: one sorted merge leaves a core idle part of the time
    (measured 1.9x faster on 2 cores). Each query runs on a cursor of its own."""
    if len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=MERGE_WORKERS) as pool:
        return list(pool.map(priority.carried(fn), items))   # a background job's threads too


# -- step 1: profile ---------------------------------------------------------------------------

@dataclass
class _Plan:
    column: Column
    kind: str
    method: str
    threshold: float
    warning: str | None
    rows: tuple[int, int]
    n: tuple[int, int]
    lo: float | None = None  # reference min (numeric)
    hi: float | None = None
    cur_lo: float | None = None  # current min (numeric)
    cur_hi: float | None = None
    shift: float | None = None  # near the mean: moments are summed around it (`_counts`)
    distinct: tuple[int, int] = (0, 0)
    skip: str | None = None


def _profile(con, ref: Side, cur: Side, columns: Sequence[Column]) -> pl.DataFrame:
    """Rows, non-null counts and numeric ranges of every column per side; for the
    reference also its distinct-value estimate (the current side's is not needed)."""
    def aggs(full: bool) -> list[str]:
        out = ["count(*) AS rows"]
        for i, col in enumerate(columns):
            out.append(f"count(c{i}) AS n{i}")
            if col.kind == "numeric":
                out += [f"min(c{i}) AS lo{i}", f"max(c{i}) AS hi{i}", f"avg(c{i}) AS mean{i}"]
            out.append(f"{f'approx_count_distinct(c{i})' if full else 'NULL'} AS d{i}")
        return out

    parts = []
    for s, side in enumerate((ref, cur)):
        vals = ", ".join(f"{_value(side.exprs[c.name], c.kind)} AS c{i}" for i, c in enumerate(columns))
        # no GROUP BY: an empty side still gives its row (of zeros and nulls)
        parts.append(f"SELECT {s} AS s, {', '.join(aggs(s == 0))} FROM (SELECT {vals} FROM {side.rows_sql})")
    sql = _with((ref, cur)) + " UNION ALL ".join(parts)
    return _q(con, sql, _params(ref, cur)).sort("s")


def plans(prof: pl.DataFrame, columns: Sequence[Column], settings: DriftSettings) -> list[_Plan]:
    """One plan per column from the profile: kind (integers with few values are
    categorical), test and threshold from [drift], identifier-like columns skipped."""
    ref, cur = prof.row(0, named=True), prof.row(1, named=True)
    out = []
    for i, col in enumerate(columns):
        override = settings.feature(col.name).kind
        kind = col.kind
        d = (int(ref.get(f"d{i}") or 0), int(cur.get(f"d{i}") or 0))
        if override:
            kind = override
        elif col.kind == "numeric" and col.integer and 0 < d[0] <= settings.categorical_max_distinct:
            kind = "categorical"
        method, threshold, warning = settings.method_for(col.name, kind)
        plan = _Plan(col, kind, method, threshold, warning, rows=(int(ref["rows"]), int(cur["rows"])),
                     n=(int(ref[f"n{i}"] or 0), int(cur[f"n{i}"] or 0)), distinct=d)
        if col.kind == "numeric" and kind == "numeric":
            plan.lo, plan.hi = ref.get(f"lo{i}"), ref.get(f"hi{i}")
            plan.cur_lo, plan.cur_hi = cur.get(f"lo{i}"), cur.get(f"hi{i}")
            plan.shift = next((m for m in (ref.get(f"mean{i}"), cur.get(f"mean{i}")) if m is not None), None)
        if kind == "categorical" and d[0] > settings.max_categories:
            plan.skip = (f"about {d[0]:,} distinct values in the reference: identifier-like, "
                         f"not tested (limit drift.max_categories = {settings.max_categories:,})")
        out.append(plan)
    return out

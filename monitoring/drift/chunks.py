"""Chunks of the current window for drift over time: `auto`, `hour`, `day`, `week`,
`month` or `rows:N`, each a SQL key per row, and the choice `auto` makes.

`auto` takes the finest calendar unit whose every chunk holds enough rows for a stable
decision, else runs of N rows (always for logs without timestamps). "Enough" is measured
on the reference, not tuned: the size from which each column's chance band (see `bands`)
is below its threshold, so that a shift of the threshold's size stands out of chance.
The largest such size over the columns is needed; a column that cannot get there within
the window (a category set too large for the traffic) is named and left out of the
choice (its decisions stay guarded by its band).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from ..query.filters import bucket_sql
from .sql import Side, _params, _q, _with

UNITS = ("hour", "day", "week", "month")
CHOICES = ("auto",) + UNITS + ("rows:N",)
HOUR_US = 3_600_000_000
DAY_US = 86_400_000_000
WEEK_OFFSET_US = 4 * DAY_US  # 1970-01-05 was a Monday: weeks start on Mondays
# A calendar unit is only worth it with this many chunks in the window; else rows.
MIN_CHUNKS = 4
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ChunkSpec:
    unit: str  # "auto" | "hour" | "day" | "week" | "month" | "rows"
    rows: int | None = None  # rows per chunk (unit "rows")

    def __str__(self) -> str:
        return f"rows:{self.rows}" if self.unit == "rows" else self.unit

    @property
    def calendar(self) -> bool:
        return self.unit in UNITS


def parse(text: Any, default_rows: int = 10_000) -> ChunkSpec:
    """'auto', 'hour', 'day', 'week', 'month', 'rows:N' (or 'rows': `default_rows`);
    raises ValueError with one sentence."""
    if isinstance(text, ChunkSpec):
        return text
    s = str(text).strip().lower()
    if s in ("auto",) + UNITS:
        return ChunkSpec(s)
    if s == "rows":
        return ChunkSpec("rows", int(default_rows))
    if s.startswith("rows:"):
        n = s[5:].replace("_", "").replace(",", "")
        if n.isdigit() and int(n) > 0:
            return ChunkSpec("rows", int(n))
    raise ValueError(f"chunk must be one of auto, hour, day, week, month or rows:N (N rows, "
                     f"a positive integer), got {text!r}")


def key_sql(side: Side, spec: ChunkSpec) -> str:
    """The SQL of a row's chunk number k (in time order; row order for `rows`)."""
    if spec.unit == "rows":
        order = side.order_sql or side.ts_us
        if order is None:
            raise ValueError("chunks of rows need an order of the rows")
        return f"((row_number() OVER (ORDER BY {order}) - 1) // $chunk_rows)"
    if side.ts_us is None:
        raise ValueError(f"{spec.unit} chunks need timestamps; these logs have none: use rows:N")
    ts = side.ts_us
    if spec.unit == "hour":
        return bucket_sql(ts, str(HOUR_US))
    if spec.unit == "day":
        return bucket_sql(ts, str(DAY_US))
    if spec.unit == "week":
        return bucket_sql(f"({ts}) - {WEEK_OFFSET_US}", str(7 * DAY_US))
    if spec.unit == "month":
        t = f"make_timestamp(CAST({ts} AS BIGINT))"
        return f"((year({t}) - 1970) * 12 + month({t}) - 1)"
    raise ValueError(f"unknown chunk {spec}")


def key_params(spec: ChunkSpec) -> dict[str, Any]:
    return {"chunk_rows": int(spec.rows)} if spec.unit == "rows" else {}


def bounds(unit: str, k: np.ndarray) -> tuple[list[datetime], list[datetime]]:
    """[start, end) of calendar chunks numbered k."""
    k = np.asarray(k, dtype=np.int64)
    if unit == "month":
        def month(i: int) -> datetime:
            return datetime(1970 + i // 12, i % 12 + 1, 1, tzinfo=UTC)
        return [month(int(i)) for i in k], [month(int(i) + 1) for i in k]
    size = {"hour": HOUR_US, "day": DAY_US, "week": 7 * DAY_US}[unit]
    offset = WEEK_OFFSET_US if unit == "week" else 0
    to = lambda us: _EPOCH + timedelta(microseconds=int(us))  # noqa: E731
    return [to(i * size + offset) for i in k], [to((i + 1) * size + offset) for i in k]


# -- auto -------------------------------------------------------------------------------------

def hourly_counts(con, side: Side) -> np.ndarray:
    """(hour number, rows) pairs of the side, one scan of its time column."""
    sql = (_with([side]) + f"SELECT {bucket_sql(side.ts_us, str(HOUR_US))} AS h, count(*) AS n "
           f"FROM {side.rows_sql} GROUP BY h ORDER BY h")
    df = _q(con, sql, _params(side))
    return np.column_stack([df["h"].to_numpy(), df["n"].to_numpy()]) if df.height else np.zeros((0, 2))


def unit_counts(hours: np.ndarray, unit: str) -> np.ndarray:
    """Rows per chunk of `unit` from hourly counts (chunks in order, empty ones left out)."""
    if hours.size == 0:
        return np.zeros(0, dtype=np.int64)
    h, n = hours[:, 0].astype(np.int64), hours[:, 1].astype(np.int64)
    if unit == "hour":
        k = h
    elif unit == "day":
        k = np.floor_divide(h, 24)
    elif unit == "week":
        k = np.floor_divide(h * HOUR_US - WEEK_OFFSET_US, 7 * DAY_US)
    else:
        days = np.floor_divide(h, 24).astype("datetime64[D]")
        k = days.astype("datetime64[M]").astype(np.int64)
    uniq, inv = np.unique(k, return_inverse=True)
    return np.bincount(inv, weights=n, minlength=len(uniq)).astype(np.int64)


def nice_rows(n: int) -> int:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above n."""
    if n <= 1:
        return 1
    e = 10 ** math.floor(math.log10(n))
    for m in (1, 2, 2.5, 5, 10):
        if m * e >= n:
            return int(m * e)
    return int(10 * e)


@dataclass(frozen=True)
class AutoChoice:
    spec: ChunkSpec
    needed: int  # rows a chunk needs for a stable decision
    reason: str


def choose(needed: int, by: str | None, rows: int, hours: np.ndarray | None,
           left_out: tuple[str, ...] = (), units: Sequence[str] = UNITS, why_units: str = "") -> AutoChoice:
    """The finest calendar unit of `units` with at least MIN_CHUNKS chunks, each (but a
    partial first and last) holding `needed` rows; else rows:N with N the nice size at or
    above it. When no column can decide at any size (`left_out` and no `by`), the coarsest
    unit with MIN_CHUNKS chunks. `why_units` says why some units were not candidates."""
    need = max(int(needed), 1)
    because = f" ({by} needs the most)" if by else ""
    note = (f"; {', '.join(left_out)} cannot reach a stable decision in this window and "
            "is judged by its chance band alone") if left_out else ""
    if left_out and by is None and hours is not None and hours.size:
        # No column can reach a stable decision in this window, so no size is "enough": the
        # coarsest unit that still makes a series (MIN_CHUNKS chunks) gives each chunk the most
        # rows, not the finest unit holding one row (168 chunks of 7 rows in a thin week).
        for unit in reversed(units):
            if len(unit_counts(hours, unit)) >= MIN_CHUNKS:
                return AutoChoice(ChunkSpec(unit), need, (
                    f"auto: {unit} chunks, the coarsest unit with at least {MIN_CHUNKS} chunks in this window "
                    f"(each chunk as many rows as it can hold); {', '.join(left_out)} cannot reach a stable "
                    "decision in this window and is judged by its chance band alone"))
    if hours is not None and hours.size:
        for unit in units:
            counts = unit_counts(hours, unit)
            inner = counts[1:-1] if len(counts) > 2 else counts
            if len(counts) >= MIN_CHUNKS and inner.min() >= need:
                return AutoChoice(ChunkSpec(unit), need, (
                    f"auto: {unit} chunks, the finest unit whose every chunk holds at least "
                    f"{need:,} rows, the size from which chance stays below half of each threshold{because}{why_units}{note}"))
    n = nice_rows(need)
    if rows < MIN_CHUNKS * n:
        n = max(nice_rows(max(rows // MIN_CHUNKS, 1)), 1) if rows >= MIN_CHUNKS else max(rows, 1)
        why = (f"auto: rows:{n}, {MIN_CHUNKS} chunks of the window; a stable decision needs "
               f"{need:,} rows{because}, so small shifts may not show{note}")
    else:
        what = "no calendar unit holds enough rows in every chunk" if hours is not None and hours.size \
            else "the logs have no timestamps"
        why = (f"auto: rows:{n} — {what}; {need:,} rows give a stable decision{because}{note}")
    return AutoChoice(ChunkSpec("rows", n), need, why)

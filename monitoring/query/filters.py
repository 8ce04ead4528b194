"""Filters and time buckets shared by every query over the logs.

`Filters.where()` returns a SQL condition over the `logs` CTE and its bound parameters:
user choices never reach the SQL text. Buckets are whole multiples of a fixed size since
the Unix epoch (integer arithmetic on `ts_us`, the fastest bucketing in DuckDB here),
floored so that times before 1970 land in the right bucket (`bucket_sql`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from ..logs.source import LogSource

BUCKETS: dict[str, int] = {   # name -> seconds
    "minute": 60,
    "5min": 300,
    "15min": 900,
    "hour": 3600,
    "6hour": 21600,
    "day": 86400,
}
BUCKET_LABELS = {"minute": "1 minute", "5min": "5 minutes", "15min": "15 minutes",
                 "hour": "1 hour", "6hour": "6 hours", "day": "1 day"}


def bucket_sql(value: str, size: str) -> str:
    """Floor division of integer SQL `value` by `size`: DuckDB's `//` truncates toward zero,
    which puts every time before 1970 one bucket late."""
    return f"(({value}) // ({size}) - CAST(({value}) % ({size}) < 0 AS BIGINT))"


def auto_bucket(start: datetime, end: datetime, max_points: int = 800) -> str:
    """The finest bucket that keeps a chart under `max_points` points."""
    seconds = max((end - start).total_seconds(), 60)
    for name, size in BUCKETS.items():
        if seconds / size <= max_points:
            return name
    return "day"


def utc(dt: datetime) -> datetime:
    """Naive datetimes are taken as UTC (the log contract); aware ones are converted."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def parse_time(text: str) -> datetime:
    """ISO 8601 date or datetime -> aware UTC; raises ValueError with a plain message."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 time: {text!r}") from exc
    return utc(value)


@dataclass(frozen=True)
class Filters:
    start: datetime | None = None       # inclusive, aware UTC
    end: datetime | None = None         # exclusive, aware UTC
    model_name: str | None = None
    model_versions: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()

    def where(self, *, time: bool = True) -> tuple[str, dict[str, Any]]:
        conds, params = ["TRUE"], {}
        if time and self.start is not None:
            conds.append("ts >= $start")
            params["start"] = self.start
        if time and self.end is not None:
            conds.append("ts < $end")
            params["end"] = self.end
        if self.model_name:
            conds.append("model_name = $model_name")
            params["model_name"] = self.model_name
        if self.model_versions:
            conds.append("list_contains($versions, model_version)")
            params["versions"] = list(self.model_versions)
        if self.endpoints:
            conds.append("list_contains($endpoints, endpoint)")
            params["endpoints"] = list(self.endpoints)
        return " AND ".join(conds), params

    def previous(self) -> Filters:
        """The window of the same length just before this one."""
        if self.start is None or self.end is None:
            raise ValueError("previous window needs a start and an end")
        length = self.end - self.start
        return replace(self, start=self.start - length, end=self.start)

    @property
    def minutes(self) -> float:
        if self.start is None or self.end is None:
            raise ValueError("window needs a start and an end")
        return (self.end - self.start).total_seconds() / 60.0


@dataclass(frozen=True)
class Extent:
    rows: int
    first: datetime | None
    last: datetime | None
    model_names: tuple[str, ...]
    model_versions: tuple[str, ...]
    endpoints: tuple[str, ...]
    # (version, first request, last request): when each version served, for "what happened"
    version_spans: tuple[tuple[str, datetime, datetime], ...] = ()


def extent(source: LogSource, con: duckdb.DuckDBPyConnection) -> Extent:
    """Rows, time span and the distinct models, versions and endpoints (for the sidebar)."""
    dims = source.query(
        con,
        "SELECT model_name, model_version, endpoint, count(*) AS n, min(ts_us) AS lo, max(ts_us) AS hi "
        "FROM logs GROUP BY ALL",
    )
    span = dims.select(pl.col("n").sum(), pl.col("lo").min(), pl.col("hi").max())
    n = int(span["n"][0] or 0)
    lo, hi = span["lo"][0], span["hi"][0]

    def distinct(col: str) -> tuple[str, ...]:
        return tuple(sorted(v for v in dims[col].unique().to_list() if v is not None))

    return Extent(
        rows=n,
        first=_from_us(lo) if lo is not None else None,
        last=_from_us(hi) if hi is not None else None,
        model_names=distinct("model_name"),
        model_versions=distinct("model_version"),
        endpoints=distinct("endpoint"),
        version_spans=tuple(
            (r["model_version"], _from_us(r["lo"]), _from_us(r["hi"]))
            for r in dims.group_by("model_version").agg(pl.col("lo").min(), pl.col("hi").max())
            .sort("model_version").iter_rows(named=True) if r["lo"] is not None),
    )


def whole_range(ext: Extent) -> tuple[datetime, datetime]:
    """[first minute, minute after the last request): the window of 'all data'."""
    if ext.first is None or ext.last is None:
        raise ValueError("no rows")
    start = ext.first.replace(second=0, microsecond=0)
    end = ext.last.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return start, end


def _from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


def bucket_times(df: pl.DataFrame, bucket_s: int, col: str = "bucket") -> pl.DataFrame:
    """Replace an integer bucket index column with its start time (UTC) as `time`."""
    return df.with_columns(
        (pl.col(col).cast(pl.Int64) * (bucket_s * 1_000_000)).cast(pl.Datetime("us", "UTC")).alias("time")
    ).drop(col)

"""Chunks over time: day, week (ISO, Monday 00:00 UTC), month, or every N rows; auto picks
one from the window's length. Keys are integers computed in DuckDB from `ts_us` (floor
division, so times before 1970 land in the right chunk); `bounds` turns a key back into
its [start, end).

    parse_chunk("rows:5000")   # ("rows", 5000)
    key_sql("week")            # SQL over truth_rows
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..config import ConfigError
from ..query.filters import bucket_sql

KINDS = ("auto", "day", "week", "month", "rows")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_US = 86_400_000_000


def parse_chunk(text: str) -> tuple[str, int | None]:
    t = str(text).strip().lower()
    if t.startswith("rows"):
        _, _, n = t.partition(":")
        try:
            size = int(n) if n else 10_000
        except ValueError:
            raise ConfigError(f"chunk {text!r}: rows:N needs a whole number of rows") from None
        if size < 1:
            raise ConfigError(f"chunk {text!r}: rows:N needs N >= 1")
        return "rows", size
    if t not in KINDS:
        raise ConfigError(f"chunk must be one of auto, day, week, month, rows:N; got {text!r}")
    return t, None


def auto(start: datetime | None, end: datetime | None, rows: int) -> tuple[str, int | None]:
    """Day up to 60 days, week up to a year, month beyond; without times, 10 row chunks."""
    if start is None or end is None:
        return "rows", max(1, -(-rows // 10))
    days = (end - start).total_seconds() / 86400
    if days <= 60:
        return "day", None
    if days <= 366:
        return "week", None
    return "month", None


def key_sql(kind: str, size: int | None = None) -> str:
    if kind == "day":
        return bucket_sql("ts_us", str(DAY_US))
    if kind == "week":
        # 1970-01-01 was a Thursday: shifting by 3 days starts weeks on Mondays.
        return bucket_sql(f"ts_us + {3 * DAY_US}", str(7 * DAY_US))
    if kind == "month":
        return "CAST(year(make_timestamp(ts_us)) * 12 + month(make_timestamp(ts_us)) - 1 AS BIGINT)"
    if kind == "rows":
        return f"CAST(floor((row_number() OVER (ORDER BY ts_us NULLS LAST, row_seq) - 1) / {int(size or 1)}) AS BIGINT)"
    raise ValueError(f"unknown chunk kind {kind!r}")


def bounds(kind: str, key: int) -> tuple[datetime | None, datetime | None]:
    """[start, end) of a time chunk; (None, None) for row chunks (their rows say)."""
    if kind == "day":
        s = _EPOCH + timedelta(days=key)
        return s, s + timedelta(days=1)
    if kind == "week":
        s = _EPOCH + timedelta(days=7 * key - 3)
        return s, s + timedelta(days=7)
    if kind == "month":
        y, m = divmod(key, 12)
        s = datetime(y, m + 1, 1, tzinfo=UTC)
        e = datetime(y + (m + 1) // 12, (m + 1) % 12 + 1, 1, tzinfo=UTC)
        return s, e
    return None, None


def label(kind: str, size: int | None) -> str:
    return f"rows:{size}" if kind == "rows" else kind

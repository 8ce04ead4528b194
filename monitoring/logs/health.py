"""Data health: rows that break the log contract, counted by reason, and duplicate requests.

Nothing is dropped silently: `check_health` returns the count of every invalid row by the
first rule it breaks, and `find_duplicates` registers the extra copies of a request so the
`logs` view counts each request once (the first valid copy, by time, file and row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from .source import LogSource, cursor, quote_ident, run

# (reason, plain-language explanation), in the order rows are checked.
INVALID_REASONS: tuple[tuple[str, str], ...] = (
    ("missing_timestamp", "timestamp is null"),
    ("unparsable_timestamp", "timestamp is there but cannot be read as a time"),
    ("missing_request_id", "request_id is null"),
    ("missing_latency", "latency_ms is null, NaN or not a number"),
    ("infinite_latency", "latency_ms is infinite"),
    ("negative_latency", "latency_ms is negative"),
    ("missing_status", "status is null"),
    ("missing_model_version", "model_version is null"),
)
REASON_TEXT = dict(INVALID_REASONS) | {
    "duplicate_request_id": "request_id seen before: the extra copy is counted once",
}


@dataclass
class Health:
    total_rows: int
    valid_rows: int
    invalid: dict[str, int] = field(default_factory=dict)   # reason -> rows (only non-zero)
    duplicates: int = 0                                      # extra copies counted once
    bad_files: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def invalid_rows(self) -> dict[str, int]:
        out = dict(self.invalid)
        if self.duplicates:
            out["duplicate_request_id"] = self.duplicates
        return out

    @property
    def ok(self) -> bool:
        return not (self.invalid or self.duplicates or self.bad_files or self.warnings)


def check_health(source: LogSource, con: duckdb.DuckDBPyConnection,
                 start: datetime | None = None, end: datetime | None = None) -> Health:
    """Count rows by validity. With a window, rows inside it plus rows with no usable
    timestamp (which belong to no window and would otherwise never be reported)."""
    ts = source.expr("timestamp") if source.has_time else "NULL"
    where, params = [], {}
    if start is not None and source.has_time:
        where.append(f"{ts} >= $start")
        params["start"] = start
    if end is not None and source.has_time:
        where.append(f"{ts} < $end")
        params["end"] = end
    cond = f"WHERE {ts} IS NULL OR ({' AND '.join(where)})" if where else ""
    df = source.query(
        con,
        f"SELECT {source.reason_case()} AS reason, count(*) AS n FROM raw_logs AS r {cond} GROUP BY 1",
        params, raw=True)
    counts = dict(zip(df["reason"].to_list(), df["n"].to_list(), strict=True)) if df.height else {}
    total = int(sum(counts.values()))
    invalid = {r: int(counts[r]) for r, _ in INVALID_REASONS if counts.get(r)}
    dups = count_duplicates(source, con, start, end) if source.dedupe_table else 0
    return Health(total_rows=total, valid_rows=int(counts.get("valid", 0)) - dups,
                  invalid=invalid, duplicates=dups,
                  bad_files=[(b.path, b.reason) for b in source.bad_files],
                  warnings=list(source.warnings))


def find_duplicates(source: LogSource, con: duckdb.DuckDBPyConnection) -> int:
    """Register extra copies of duplicated request ids; returns how many rows are dropped.

    Candidates are found by a 64-bit hash (cheap to group), then confirmed on the ids
    themselves, so the count is exact. The first valid copy by (timestamp, file, row) stays.
    """
    if not source.has("request_id"):
        source.dedupe_table = None   # ids derived from file and row are unique
        return 0
    rid = source.expr("request_id")
    cand = source.query(
        con,
        f"SELECT hash({rid}) AS h FROM raw_logs AS r WHERE {rid} IS NOT NULL "
        "GROUP BY 1 HAVING count(*) > 1",
        raw=True,
    )
    if cand.height == 0:
        source.dedupe_table = None
        return 0
    name = f"mw_dups_{source.fingerprint}"
    scan = source.scan_sql
    fc = quote_ident(source.file_col)
    ts = source.expr("timestamp") if source.has_time else "CAST(NULL AS TIMESTAMPTZ)"
    sql = (
        f"CREATE OR REPLACE TABLE {name} AS "
        f"WITH c AS (SELECT {rid} AS rid, {ts} AS ts, {fc} AS mw_file, file_row_number "
        f"  FROM {scan} AS r WHERE hash({rid}) IN (SELECT unnest($hashes)) AND {source.valid_predicate()}), "
        "ranked AS (SELECT *, row_number() OVER (PARTITION BY rid ORDER BY ts, mw_file, file_row_number) AS k FROM c) "
        "SELECT mw_file AS file, file_row_number AS row_number, ts FROM ranked WHERE k > 1"
    )
    cur = cursor(con)
    try:
        cur.execute(sql, {"files": source.files, "hashes": cand["h"].to_list()})
        n = cur.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    finally:
        cur.close()
    source.dedupe_table = name if n else None
    return int(n)


def count_duplicates(source: LogSource, con: duckdb.DuckDBPyConnection,
                     start: datetime | None = None, end: datetime | None = None) -> int:
    if not source.dedupe_table:
        return 0
    where, params = [], {}
    if start is not None:
        where.append("ts >= $start")
        params["start"] = start
    if end is not None:
        where.append("ts < $end")
        params["end"] = end
    cond = f"WHERE {' AND '.join(where)}" if where else ""
    df = run(con, f"SELECT count(*) AS n FROM {source.dedupe_table} {cond}", params)
    return int(df["n"][0])

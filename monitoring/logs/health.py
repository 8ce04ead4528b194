"""Data health: rows that break the log contract, counted by reason, and duplicate requests.

Nothing is dropped silently: `check_health` returns the count of every invalid row by the
first rule it breaks, and `find_duplicates` registers the extra copies of a request so the
`logs` view counts each request once (the first valid copy, by time, file and row): the
hashes seen twice (`candidate_hashes`, also incrementally for added files), then the copies
confirmed on the ids (`confirm_duplicates`). The workspace's open (monitoring.logs.facts)
uses the same two steps beside its grouped scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import polars as pl

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


GROUP = ("model_name", "model_version", "endpoint")


def view_dims(source: LogSource) -> dict[str, str]:
    """The `logs` view's model, version and endpoint over the raw scan (source.base_sql)."""
    return {
        "model_name": f"coalesce({source.expr('model_name')}, 'default')",
        "model_version": source.expr("model_version") if source.has("model_version") else "'default'",
        "endpoint": (f"coalesce({source.expr('endpoint')}, '(none)')" if source.has("endpoint")
                     else "CAST(NULL AS VARCHAR)"),
    }


def ts_us(source: LogSource) -> str:
    return f"epoch_us({source.expr('timestamp')})" if source.has_time else "CAST(NULL AS BIGINT)"


def scan_of(source: LogSource, param: str) -> str:
    return source.scan_sql.replace("$files", f"${param}")


def candidate_hashes(source: LogSource, con: duckdb.DuckDBPyConnection, *, new: list[str] | None = None,
                     known: list[int] | None = None) -> list[int]:
    """Hashes of request ids that occur more than once (a superset of the duplicated ids: the
    confirmation reads the ids). With `new` (files added since `known` was found over the
    others) only the new files are grouped and the old ones probed."""
    if not source.has("request_id"):
        return []
    h = f"hash({source.expr('request_id')})"
    if new is None:
        # Sorted, each hash compared with the one before, rather than grouped: the same
        # hashes at about 60% of the CPU and half the memory of a hash table of every id
        # (10M ids: 1.1 s against 1.6-2.0 s of CPU, 410 MB against 750 MB; docs/logs.md).
        df = run(con, f"SELECT DISTINCT h FROM (SELECT h, lag(h) OVER (ORDER BY h) AS p FROM "
                      f"(SELECT {h} AS h FROM {scan_of(source, 'files')} AS r)) WHERE h = p",
                 {"files": source.files})
        return df["h"].to_list() if df.height else []
    old = [f for f in source.files if f not in set(new)]
    if not new:
        return list(known or [])
    parts = ["SELECT h FROM n WHERE c > 1", "SELECT h FROM known"]
    if old:
        parts.append(f"SELECT DISTINCT {h} AS h FROM {scan_of(source, 'old')} AS r WHERE {h} IN (SELECT h FROM n)")
    sql = (f"WITH n AS (SELECT {h} AS h, count(*) AS c FROM {scan_of(source, 'new')} AS r GROUP BY 1) "
           + " UNION ".join(parts))
    df = run(con, sql, {"new": new, "old": old},
             tables={"known": pl.DataFrame({"h": list(known or [])}, schema={"h": pl.UInt64})})
    return df["h"].to_list() if df.height else []


def confirm_duplicates(source: LogSource, con: duckdb.DuckDBPyConnection, hashes: list[int]) -> int:
    """Register the extra copies among the candidates' rows (valid rows only; the first copy by
    time, file and row stays) as `source.dedupe_table`; returns how many rows are dropped.
    The table carries each copy's file, row, time and group, for the extent's correction."""
    if not hashes or not source.has("request_id"):
        source.dedupe_table = None
        return 0
    name = f"mw_dups_{source.fingerprint}"
    rid = source.expr("request_id")
    ts = source.expr("timestamp") if source.has_time else "CAST(NULL AS TIMESTAMPTZ)"
    dims = ", ".join(f"CAST({sql} AS VARCHAR) AS {k}" for k, sql in view_dims(source).items())
    sql = (
        f"CREATE OR REPLACE TABLE {name} AS "
        f"WITH c AS (SELECT {rid} AS rid, {ts} AS ts, {quote_ident(source.file_col)} AS mw_file, "
        f"  file_row_number, {dims} FROM {source.scan_sql} AS r "
        f"  WHERE hash({rid}) IN (SELECT h FROM mw_cands) AND {source.valid_predicate()}), "
        "ranked AS (SELECT *, row_number() OVER (PARTITION BY rid ORDER BY ts, mw_file, file_row_number) AS k FROM c) "
        f"SELECT mw_file AS file, file_row_number AS row_number, ts, epoch_us(ts) AS ts_us, "
        f"{', '.join(GROUP)} FROM ranked WHERE k > 1"
    )
    cur = cursor(con)
    try:
        cur.register("mw_cands", pl.DataFrame({"h": hashes}, schema={"h": pl.UInt64}).to_arrow())
        cur.execute(sql, {"files": source.files})
        n = cur.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
    finally:
        cur.close()
    source.dedupe_table = name if n else None
    return int(n)


def find_duplicates(source: LogSource, con: duckdb.DuckDBPyConnection) -> int:
    """Register extra copies of duplicated request ids; returns how many rows are dropped.

    Candidates are found by a 64-bit hash (cheap to group), then confirmed on the ids
    themselves, so the count is exact. The first valid copy by (timestamp, file, row) stays.
    """
    return confirm_duplicates(source, con, candidate_hashes(source, con))


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

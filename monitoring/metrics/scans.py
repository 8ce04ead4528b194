"""The raw-log scan behind every latency, error and traffic figure: requests per (period,
bucket, failed, latency bin) from one pass over the logs. `service.rollup` serves the same
frame from the rollup store when it covers the window; the store's readers fall back to this
scan for the minutes they do not hold."""

from __future__ import annotations

import duckdb
import polars as pl

from ..logs.source import LogSource
from ..query.filters import Filters, bucket_sql
from . import sketch


def scan_sql(f: Filters, bucket_s: int, with_previous: bool) -> tuple[str, dict, str]:
    """Condition, parameters and the `period` expression (1: the window, 0: the one before)."""
    start = f.previous().start if with_previous else f.start
    cond, params = Filters(start=start, end=f.end, model_name=f.model_name,
                           model_versions=f.model_versions, endpoints=f.endpoints).where()
    params |= {"bucket_us": bucket_s * 1_000_000, "cur_start": f.start}
    return cond, params, ("CAST(ts >= $cur_start AS INTEGER)" if with_previous else "1")


def scan_rollup(source: LogSource, con: duckdb.DuckDBPyConnection, f: Filters, bucket_s: int,
                with_previous: bool = False, previous_total: bool = False) -> pl.DataFrame:
    """`rollup` from one scan of the raw logs."""
    cond, params, period = scan_sql(f, bucket_s, with_previous)
    bucket = bucket_sql('ts_us', '$bucket_us')
    if with_previous and previous_total:
        bucket = f"CASE WHEN ts >= $cur_start THEN {bucket} END"
    return source.query(
        con,
        f"SELECT {period} AS period, {bucket} AS bucket, is_error, "
        f"{sketch.bin_sql('latency_ms')} AS bin, count(*) AS n "
        f"FROM logs WHERE {cond} GROUP BY ALL",
        params,
    )

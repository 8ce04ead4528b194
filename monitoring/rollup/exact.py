"""Exact percentiles from the raw logs with the store's histogram as the first pass."""

from __future__ import annotations

import duckdb
import polars as pl

from ..logs.source import LogSource
from ..metrics import sketch
from ..query.filters import Filters

QS = (0.5, 0.95, 0.99)


def exact_quantiles(source: LogSource, con: duckdb.DuckDBPyConnection, f: Filters, bucket_s: int,
                    hist: pl.DataFrame, keys: tuple[str, ...] = ("is_error", "bucket"),
                    qs: tuple[float, ...] = QS) -> pl.DataFrame:
    """Exact percentiles per `keys` from the raw logs, reading only the values of the bins
    that hold the needed order statistics (the two-pass method of `sketch`), the first pass
    being the store's histogram `hist` (period 1 rows). Returns keys..., p50, p95, p99."""
    keys = list(keys)
    h = hist.filter(pl.col("period") == 1) if "period" in hist.columns else hist
    h = h.group_by([*keys, "bin"]).agg(pl.col("n").sum())
    targets = sketch.rank_targets(h, keys, qs)
    cond, params = f.where()
    params["bucket_us"] = bucket_s * 1_000_000
    values = source.query(
        con,
        "SELECT * FROM (SELECT is_error, ts_us // $bucket_us AS bucket, "
        f"{sketch.bin_sql('latency_ms')} AS bin, latency_ms AS value FROM logs WHERE {cond}) "
        f"WHERE ({', '.join(keys)}, bin) IN (SELECT {', '.join(keys)}, bin FROM need)",
        params, tables={"need": targets.select(*keys, "bin").unique()})
    return sketch.exact_from_values(targets, values.select(*keys, "bin", "value"), keys)

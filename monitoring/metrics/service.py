"""Latency, error and throughput metrics for a window and per time bucket.

Definitions are those of shared/LOG_SCHEMA.md: P50/P95/P99 over successful requests with
linear interpolation (numpy's default, DuckDB's quantile_cont), failed-request latency
apart; error rate = failed / all; throughput = requests per minute of the bucket.

One scan of the logs (`rollup`) groups rows by (period, bucket, failed, latency bin) and
returns a small histogram; counts, rates and percentiles all come from it. Windows with at
most `exact_max_rows` rows get exact percentiles from a second, small query; larger ones
use the histogram, whose error bound (`sketch.RELATIVE_ERROR`) is reported as `method`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime

import duckdb
import polars as pl

from ..logs.source import LogSource
from ..query.filters import BUCKETS, Filters, bucket_sql, bucket_times
from ..rollup import partial, read
from . import sketch
from .scans import scan_rollup, scan_sql

QS = (0.5, 0.95, 0.99)
DIMENSIONS = ("model_name", "model_version", "endpoint", "error_type")
SPARK_POINTS = 48   # at most this many points in a sparkline (Overview cards)
EXACT = "exact"
APPROX = f"log-histogram, within ±{sketch.RELATIVE_ERROR:.1%} of exact"


@dataclass(frozen=True)
class WindowStats:
    start: datetime
    end: datetime
    requests: int
    errors: int
    error_rate: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    failed_p50: float | None
    failed_p95: float | None
    failed_p99: float | None
    requests_per_minute: float
    method: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Summary:
    window: WindowStats
    previous: WindowStats | None
    buckets: pl.DataFrame   # time, requests, errors, error_rate, rpm, p50, p95, p99
    bucket: str
    hist: pl.DataFrame      # bin, n: successful latencies of the window (for distributions)
    filters: Filters | None = None
    bucket_hist: pl.DataFrame | None = None   # bucket, is_error, bin, n: the window's histogram per bucket

    def sparkline(self, max_points: int = SPARK_POINTS) -> pl.DataFrame:
        """The per-bucket series in about `max_points` rows, for a trend beside a figure:
        `buckets` itself when the window holds that many, else the same columns over the
        finest bucket of BUCKETS that is a multiple of this one and fits (else the smallest
        multiple of this one that does: 3 days for 100 days by the day), counts summed and
        percentiles from the merged histograms (within ±0.5%). A sparkline of a 7-day window at the sidebar's
        15 minutes drew 672 points in each of six cards: the browser's work on every visit.
        Buckets without a request between the first and the last are zeros (`_zero_filled`)."""
        f, size = self.filters, BUCKETS[self.bucket]
        if self.bucket_hist is None or f is None or f.minutes * 60 / size <= max_points:
            return _zero_filled(self.buckets, size)
        # k >= 2: this bucket does not fit; beyond the longest bucket (over 48 days by the
        # day), whole multiples of the sidebar's
        k = next((s // size for s in BUCKETS.values() if s > size and s % size == 0
                  and f.minutes * 60 / s <= max_points), math.ceil(f.minutes * 60 / size / max_points))
        coarse = k * size
        series = _bucket_series(self.bucket_hist.with_columns(pl.col("bucket") // k), None, coarse, f)
        if self.window.error_rate is None:   # no status column: the rate is unknown, as in `buckets`
            series = series.with_columns(pl.lit(None, dtype=pl.Float64).alias("error_rate"))
        return _zero_filled(series, coarse)


def _zero_filled(series: pl.DataFrame, size_s: int) -> pl.DataFrame:
    """`series` with the buckets between its first and its last that hold no request as zero
    requests, errors and throughput (rates and percentiles null): a stop in traffic is a dip
    in a sparkline, not a line drawn across it. Before the first and after the last request
    nothing is added: the logs may not reach there."""
    if series.height < 2:
        return series
    us = size_s * 1_000_000
    t = series["time"].dt.epoch("us")
    lo, hi = int(t.min()) // us, int(t.max()) // us
    if hi - lo + 1 == series.height:
        return series
    full = pl.DataFrame({"time": pl.int_range(lo, hi + 1, eager=True) * us}).with_columns(
        pl.col("time").cast(pl.Datetime("us", "UTC")))
    return (full.join(series, on="time", how="left")
            .with_columns(pl.col("requests", "errors").fill_null(0), pl.col("rpm").fill_null(0.0))
            .select(series.columns))


def _mix(source: LogSource, con: duckdb.DuckDBPyConnection):
    """How the rollup store attached to these logs answers (rollup.partial.Mix: the store
    for the files it covers, raw logs for the rest), or None (see workspace)."""
    try:
        return partial.mix_of(source, con)
    except partial.FALLBACK:
        return None


def rollup(source: LogSource, con: duckdb.DuckDBPyConnection, f: Filters, bucket_s: int,
           with_previous: bool = False, previous_total: bool = False) -> pl.DataFrame:
    """The mergeable rollup every latency, error and traffic figure derives from: requests
    per (period, bucket, failed, latency bin) as columns period, bucket, is_error, bin, n.
    `bucket` is the bucket's index since the epoch; period is 1 (the window) or 0 (the one
    before, with_previous). Rollups add up across buckets, files and machines. With
    `previous_total` the previous window comes as one histogram (bucket NULL).

    Served from the rollup store for the files it covers (`python -m monitoring rollup
    build`; the minutes it does not hold, and the files rolled since, come from the raw
    logs: rollup.partial), else from one scan of the raw logs: the same frame either way."""
    mix = _mix(source, con)
    if mix is not None:
        try:
            return mix.answer(
                lambda store, covered: read.latency_hist(store, con, f, bucket_s, with_previous, source=covered,
                                                         previous_total=previous_total),
                lambda src: scan_rollup(src, con, f, bucket_s, with_previous, previous_total),
                keys=("period", "bucket", "is_error", "bin"))
        except partial.FALLBACK:
            pass
    return scan_rollup(source, con, f, bucket_s, with_previous, previous_total)


def _exact(source: LogSource, con: duckdb.DuckDBPyConnection, f: Filters, bucket_s: int,
           with_previous: bool, hist: pl.DataFrame) -> pl.DataFrame:
    """Exact percentiles per (period, failed, bucket) and per (period, failed), bucket null.

    Two-pass: `hist` (from `rollup`) locates the bins of the needed order statistics; one more
    scan fetches the values of those bins only, so memory stays small at any size.
    """
    kb, kt = ["period", "is_error", "bucket"], ["period", "is_error"]
    # per-bucket figures of the window only (the previous window's KPIs are totals)
    tb = sketch.rank_targets(hist.filter(pl.col("period") == 1), kb, QS)
    tt = sketch.rank_targets(hist, kt, QS)
    cond, params, period = scan_sql(f, bucket_s, with_previous)
    values = source.query(
        con,
        "SELECT period, is_error, bucket, bin, latency_ms AS value FROM ("
        f"  SELECT {period} AS period, is_error, {bucket_sql('ts_us', '$bucket_us')} AS bucket, "
        f"  {sketch.bin_sql('latency_ms')} AS bin, latency_ms FROM logs WHERE {cond}) "
        "WHERE (period, is_error, bucket, bin) IN (SELECT period, is_error, bucket, bin FROM need_b) "
        "   OR (period, is_error, bin) IN (SELECT period, is_error, bin FROM need_t)",
        params,
        tables={"need_b": tb.select(*kb, "bin").unique(), "need_t": tt.select(*kt, "bin").unique()},
    )
    totals = sketch.exact_from_values(tt, values.join(tt.select(*kt, "bin").unique(), on=[*kt, "bin"]).drop("bucket"), kt)
    totals = totals.with_columns(pl.lit(None, dtype=hist.schema["bucket"]).alias("bucket"))
    if tb.height == 0:      # an empty window (its previous one is not): no per-bucket figures
        return totals
    per_bucket = sketch.exact_from_values(tb, values.join(tb.select(*kb, "bin").unique(), on=[*kb, "bin"]), kb)
    return pl.concat([per_bucket, totals.select(per_bucket.columns)])


def summarize(source: LogSource, con: duckdb.DuckDBPyConnection, f: Filters, bucket: str,
              *, with_previous: bool = False, exact_max_rows: int = 2_000_000) -> Summary:
    """Window KPIs and per-bucket series (and the previous window's KPIs if asked)."""
    if f.start is None or f.end is None:
        raise ValueError("summarize needs a window with a start and an end")
    bucket_s = BUCKETS[bucket]
    hist = rollup(source, con, f, bucket_s, with_previous, previous_total=True)
    cur = hist.filter(pl.col("period") == 1)
    prev = hist.filter(pl.col("period") == 0)
    exact = None
    if hist.height and int(hist["n"].sum()) <= exact_max_rows:
        exact = _exact(source, con, f, bucket_s, with_previous, hist)
    method = EXACT if exact is not None else APPROX

    window = _window_stats(cur, exact, 1, f, method)
    previous = _window_stats(prev, exact, 0, f.previous(), method) if with_previous else None
    buckets = _bucket_series(cur, exact, bucket_s, f)
    if not source.has("status"):
        # Without a status every request counts as served for latency; the error rate is
        # unknown, not zero.
        window = replace(window, error_rate=None)
        previous = replace(previous, error_rate=None) if previous else None
        buckets = buckets.with_columns(pl.lit(None, dtype=pl.Float64).alias("error_rate"))
    ok_hist = cur.filter(~pl.col("is_error")).group_by("bin").agg(pl.col("n").sum()).sort("bin")
    return Summary(window=window, previous=previous, buckets=buckets, bucket=bucket, hist=ok_hist,
                   filters=f, bucket_hist=cur.drop("period"))


def _window_stats(hist: pl.DataFrame, exact: pl.DataFrame | None, period: int, f: Filters,
                  method: str) -> WindowStats:
    requests = int(hist["n"].sum() or 0)
    errors = int(hist.filter(pl.col("is_error"))["n"].sum() or 0)
    q_ok = _quantiles(hist, exact, period, False)
    q_err = _quantiles(hist, exact, period, True)
    return WindowStats(
        start=f.start, end=f.end, requests=requests, errors=errors,
        error_rate=(errors / requests) if requests else None,
        p50=q_ok[0], p95=q_ok[1], p99=q_ok[2],
        failed_p50=q_err[0], failed_p95=q_err[1], failed_p99=q_err[2],
        requests_per_minute=requests / f.minutes if f.minutes else 0.0,
        method=method,
    )


def _quantiles(hist: pl.DataFrame, exact: pl.DataFrame | None, period: int,
               failed: bool) -> tuple[float | None, float | None, float | None]:
    if exact is not None:
        row = exact.filter((pl.col("period") == period) & (pl.col("is_error") == failed)
                           & pl.col("bucket").is_null())
        if row.height == 0:
            return (None, None, None)
        return (row["p50"][0], row["p95"][0], row["p99"][0])
    part = hist.filter(pl.col("is_error") == failed)
    if part.height == 0:
        return (None, None, None)
    q = sketch.quantiles(part.select("bin", "n"), QS)
    return (q["p50"][0], q["p95"][0], q["p99"][0])


def _bucket_series(cur: pl.DataFrame, exact: pl.DataFrame | None, bucket_s: int,
                   f: Filters) -> pl.DataFrame:
    counts = cur.group_by("bucket").agg(
        pl.col("n").sum().alias("requests"),
        pl.col("n").filter(pl.col("is_error")).sum().alias("errors"),
    )
    if exact is not None:
        q = exact.filter((pl.col("period") == 1) & ~pl.col("is_error") & pl.col("bucket").is_not_null())
        q = q.select("bucket", "p50", "p95", "p99")
    else:
        ok = cur.filter(~pl.col("is_error")).select("bucket", "bin", "n")
        q = sketch.quantiles(ok, QS, by="bucket").drop("n")
    series = counts.join(q, on="bucket", how="left").sort("bucket")
    # Minutes of the window each bucket covers: the first and last may be partial.
    size_us = bucket_s * 1_000_000
    start_us = int(f.start.timestamp() * 1_000_000)
    end_us = int(f.end.timestamp() * 1_000_000)
    lo = pl.max_horizontal(pl.col("bucket") * size_us, pl.lit(start_us))
    hi = pl.min_horizontal((pl.col("bucket") + 1) * size_us, pl.lit(end_us))
    series = series.with_columns(
        (pl.col("errors") / pl.col("requests")).alias("error_rate"),
        (pl.col("requests") / ((hi - lo) / 60_000_000)).alias("rpm"),
    )
    return bucket_times(series, bucket_s).select(
        "time", "requests", "errors", "error_rate", "rpm", "p50", "p95", "p99")


def _dimension_hist(source: LogSource, con: duckdb.DuckDBPyConnection, f: Filters, dim: str) -> pl.DataFrame:
    mix = _mix(source, con)
    if mix is not None:
        try:
            return mix.answer(
                lambda store, covered: read.dimension_hist(store, con, f, dim, source=covered).with_columns(
                    pl.col("key").fill_null("(none)")),
                lambda src: _raw_dimension_hist(src, con, f, dim), keys=("key", "is_error", "bin"))
        except partial.FALLBACK:
            pass
    return _raw_dimension_hist(source, con, f, dim)


def _raw_dimension_hist(source: LogSource, con: duckdb.DuckDBPyConnection, f: Filters, dim: str) -> pl.DataFrame:
    cond, params = f.where()
    return source.query(
        con,
        f"SELECT coalesce({dim}, '(none)') AS key, is_error, {sketch.bin_sql('latency_ms')} AS bin, "
        f"count(*) AS n FROM logs WHERE {cond} GROUP BY ALL",
        params,
    )


def by_dimension(source: LogSource, con: duckdb.DuckDBPyConnection, f: Filters, dim: str,
                 *, exact_max_rows: int = 2_000_000) -> pl.DataFrame:
    """Requests, errors, error rate and P50/P95/P99 per value of a whitelisted column."""
    if dim not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dim!r}")
    cond, params = f.where()
    # A column the logs lack gives no breakdown (an empty frame); null values of one they
    # have form their own "(none)" group, with its own percentiles.
    present = dim == "model_version" or source.has(dim)
    hist = _dimension_hist(source, con, f, dim) if present else pl.DataFrame()
    if hist.height == 0:
        return pl.DataFrame(schema={"key": pl.String, "requests": pl.Int64, "errors": pl.Int64,
                                    "error_rate": pl.Float64, "p50": pl.Float64,
                                    "p95": pl.Float64, "p99": pl.Float64})
    counts = hist.group_by("key").agg(
        pl.col("n").sum().alias("requests"),
        pl.col("n").filter(pl.col("is_error")).sum().alias("errors"),
    )
    if int(hist["n"].sum()) <= exact_max_rows:
        ok = hist.filter(~pl.col("is_error") & pl.col("bin").is_not_null()).select("key", "bin", "n")
        targets = sketch.rank_targets(ok, ["key"], QS)
        values = source.query(
            con,
            f"SELECT key, bin, latency_ms AS value FROM (SELECT coalesce({dim}, '(none)') AS key, "
            f"{sketch.bin_sql('latency_ms')} AS bin, latency_ms FROM logs WHERE {cond} AND NOT is_error) "
            "WHERE (key, bin) IN (SELECT key, bin FROM need)",
            params, tables={"need": targets.select("key", "bin").unique()})
        q = sketch.exact_from_values(targets, values, ["key"])
    else:
        q = sketch.quantiles(hist.filter(~pl.col("is_error")).select("key", "bin", "n"), QS, by="key").drop("n")
    out = counts.join(q, on="key", how="left").with_columns(
        (pl.col("errors") / pl.col("requests")).alias("error_rate"))
    # ties in a stable order (the key), whichever path answered
    return out.sort(["requests", "key"], descending=[True, False], nulls_last=True).select(
        "key", "requests", "errors", "error_rate", "p50", "p95", "p99")


def error_types(source: LogSource, con: duckdb.DuckDBPyConnection, f: Filters,
                bucket: str) -> pl.DataFrame:
    """Failed requests per bucket and error type: time, error_type, errors."""
    mix = _mix(source, con)
    if mix is not None:
        try:
            return mix.answer(lambda store, covered: read.error_types(store, con, f, bucket, covered),
                              lambda src: _raw_error_types(src, con, f, bucket),
                              keys=("time", "error_type"), counts=("errors",)).sort("time", "error_type")
        except partial.FALLBACK:
            pass
    return _raw_error_types(source, con, f, bucket)


def _raw_error_types(source: LogSource, con: duckdb.DuckDBPyConnection, f: Filters,
                     bucket: str) -> pl.DataFrame:
    cond, params = f.where()
    bucket_s = BUCKETS[bucket]
    params["bucket_us"] = bucket_s * 1_000_000
    df = source.query(
        con,
        f"SELECT {bucket_sql('ts_us', '$bucket_us')} AS bucket, coalesce(error_type, '(unspecified)') AS error_type, "
        f"count(*) AS errors FROM logs WHERE {cond} AND is_error GROUP BY ALL ORDER BY 1, 2",
        params,
    )
    return bucket_times(df, bucket_s).select("time", "error_type", "errors")

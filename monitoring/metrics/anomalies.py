"""Traffic anomalies: gaps (downtime) and spikes, against the expected traffic.

Expected traffic is a robust profile of requests per minute by hour of day (weekdays and
weekends apart when there are at least two days of each): the median over the days of the
week before the window judged, never the window itself, so a spike cannot raise its own
baseline. Only when fewer than two whole days lie outside the window (no history yet) are
the window's own days used, where the median still keeps one bad hour from moving it.

These two functions are the one definition of a gap and of a spike: the Throughput and
Overview pages, the alert rules and the weekly summary all call them.

- A **gap** is a run of at least `gap_min_minutes` minutes without a request whose expected
  traffic adds up to at least `gap_min_expected_requests`: under Poisson arrivals, silence
  that long has probability exp(-expected) (3e-7 at the default 15, so a month of minutes
  raises no false alarm).
- A **spike** is a bucket whose requests reach `spike_factor` times the expected count and
  exceed it by more than five Poisson standard deviations.
Only the time between the first and the last request of the window is searched; silence
after the last request is reported by the caller as "no data since".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import polars as pl

from ..config import SLO
from ..logs.source import LogSource
from ..query.filters import BUCKETS, Filters, bucket_sql

BASELINE_DAYS = 7
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime            # exclusive: the minute traffic came back
    minutes: int
    expected_requests: float


@dataclass(frozen=True)
class Spike:
    time: datetime
    requests: int
    expected: float
    ratio: float


def minute_counts(source: LogSource, con: duckdb.DuckDBPyConnection, f: Filters,
                  baseline_days: int = BASELINE_DAYS) -> pl.DataFrame:
    """Requests per minute (minute index since the epoch) over the window and its baseline;
    from the rollup store for the files it covers, raw logs for the rest (rollup.partial)."""
    from ..rollup import partial, read

    try:
        mix = partial.mix_of(source, con)
        if mix is not None:
            return mix.answer(lambda store, covered: read.minute_counts(store, con, f, baseline_days, covered),
                              lambda src: _raw_minute_counts(src, con, f, baseline_days),
                              keys=("minute",)).sort("minute")
    except partial.FALLBACK:
        pass
    return _raw_minute_counts(source, con, f, baseline_days)


def _raw_minute_counts(source: LogSource, con: duckdb.DuckDBPyConnection, f: Filters,
                       baseline_days: int) -> pl.DataFrame:
    wide = Filters(start=f.start - timedelta(days=baseline_days), end=f.end, model_name=f.model_name,
                   model_versions=f.model_versions, endpoints=f.endpoints)
    cond, params = wide.where()
    return source.query(
        con, f"SELECT {bucket_sql('ts_us', '60000000')} AS minute, count(*) AS n FROM logs WHERE {cond} GROUP BY 1 ORDER BY 1",
        params)


def expected_per_minute(counts: pl.DataFrame, minutes: np.ndarray,
                        judged: tuple[int, int] | None = None) -> np.ndarray:
    """Expected requests in each given minute index, from the hour-of-day profile.
    `judged` is the [start, end) minute range being judged: its days are left out of the
    profile whenever at least two whole days remain."""
    if counts.height == 0:
        return np.zeros(len(minutes))
    lo, hi = int(counts["minute"].min()), int(counts["minute"].max())
    first_day, last_day = lo // 1440, hi // 1440
    days = np.arange(first_day, last_day + 1)
    per_hour = np.zeros((len(days), 24))
    m = counts["minute"].to_numpy()
    np.add.at(per_hour, ((m // 1440) - first_day, (m % 1440) // 60), counts["n"].to_numpy())
    # Partial first/last days would pull the median down: keep whole days when there are any.
    whole = np.ones(len(days), dtype=bool)
    if len(days) > 2:
        whole[0] = lo % 1440 == 0
        whole[-1] = hi % 1440 >= 1439 - 59
    if judged is not None:
        outside = whole & (((days + 1) * 1440 <= judged[0]) | (days * 1440 >= judged[1]))
        if outside.sum() >= 2:
            whole = outside
    weekend = ((days + 3) % 7) >= 5   # 1970-01-01 was a Thursday
    out = np.empty(len(minutes))
    m_day, m_hour = minutes // 1440, (minutes % 1440) // 60
    m_weekend = ((m_day + 3) % 7) >= 5
    overall = np.median(per_hour[whole], axis=0) if whole.any() else per_hour.mean(axis=0)
    profiles = {}
    for flag in (False, True):
        sel = whole & (weekend == flag)
        profiles[flag] = np.median(per_hour[sel], axis=0) if sel.sum() >= 2 else overall
    for flag in (False, True):
        idx = m_weekend == flag
        out[idx] = profiles[flag][m_hour[idx]] / 60.0
    return out


def find_gaps(counts: pl.DataFrame, f: Filters, slo: SLO) -> list[Gap]:
    start_m = int(f.start.timestamp()) // 60
    end_m = -(-int(f.end.timestamp()) // 60)
    inside = counts.filter((pl.col("minute") >= start_m) & (pl.col("minute") < end_m))
    if inside.height < 2:
        return []
    seen = inside["minute"].to_numpy()
    first, last = int(seen.min()), int(seen.max())
    full = np.arange(first, last + 1)
    present = np.zeros(len(full), dtype=bool)
    present[seen - first] = True
    gaps: list[Gap] = []
    empty = ~present
    if not empty.any():
        return gaps
    # Runs of consecutive empty minutes; the expected traffic of every minute once, so a
    # sparse log (thousands of short silences) costs one profile, not one per silence.
    edges = np.diff(np.concatenate([[0], empty.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long_enough = (ends - starts) >= slo.gap_min_minutes
    starts, ends = starts[long_enough], ends[long_enough]
    if len(starts) == 0:
        return gaps
    cum = np.concatenate([[0.0], np.cumsum(expected_per_minute(counts, full, (start_m, end_m)))])
    for s, e in zip(starts, ends, strict=True):
        length = int(e - s)
        expected = float(cum[e] - cum[s])
        if expected >= slo.gap_min_expected_requests:
            gaps.append(Gap(start=_minute(full[s]), end=_minute(full[s] + length),
                            minutes=length, expected_requests=expected))
    return gaps


SPIKE_SIGMAS = 5.0


def is_spike(got: np.ndarray, expected: np.ndarray, factor: float, sigmas: float = SPIKE_SIGMAS) -> np.ndarray:
    """The spike judgement (the Throughput page, the Overview and the `throughput_high` alert
    all use it): at least `factor` times the expected requests, and more than `sigmas` Poisson
    standard deviations above them, so a quiet hour's 3 requests against 1 expected is no spike."""
    floor = np.maximum(expected, 1.0)
    return (got >= factor * floor) & (got - expected > sigmas * np.sqrt(floor))


def find_spikes(counts: pl.DataFrame, f: Filters, bucket: str, slo: SLO) -> tuple[pl.DataFrame, list[Spike]]:
    """Per-bucket requests with their expected count, and the buckets that spike."""
    size_m = BUCKETS[bucket] // 60
    start_m = int(f.start.timestamp()) // 60
    end_m = -(-int(f.end.timestamp()) // 60)
    inside = counts.filter((pl.col("minute") >= start_m) & (pl.col("minute") < end_m))
    if inside.height == 0:
        return pl.DataFrame(schema={"time": pl.Datetime("us", "UTC"), "requests": pl.Int64,
                                    "expected": pl.Float64}), []
    b0, b1 = start_m // size_m, (end_m - 1) // size_m
    buckets = np.arange(b0, b1 + 1)
    minutes = np.arange(b0 * size_m, (b1 + 1) * size_m)
    minutes = minutes[(minutes >= start_m) & (minutes < end_m)]
    exp_min = expected_per_minute(counts, minutes, (start_m, end_m))
    expected = np.bincount(minutes // size_m - b0, weights=exp_min, minlength=len(buckets))
    got = np.bincount(inside["minute"].to_numpy() // size_m - b0,
                      weights=inside["n"].to_numpy(), minlength=len(buckets)).astype(np.int64)
    spiking = is_spike(got, expected, slo.spike_factor)
    times = [_minute(b * size_m) for b in buckets]
    frame = pl.DataFrame({"time": times, "requests": got, "expected": expected}).with_columns(
        pl.col("time").cast(pl.Datetime("us", "UTC")))
    spikes = [Spike(time=times[i], requests=int(got[i]), expected=float(expected[i]),
                    ratio=float(got[i] / max(expected[i], 1e-9)))
              for i in np.flatnonzero(spiking)]
    return frame, spikes


def _minute(m: int) -> datetime:
    return _EPOCH + timedelta(minutes=int(m))

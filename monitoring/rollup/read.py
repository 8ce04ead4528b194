"""Reading a rollup store: the same frames the raw queries of `metrics` produce.

    store = open_store(config)                         # None when never built
    store.check(source)                                # raises NotCovered when stale
    hist = latency_hist(store, con, filters, 3600)     # = metrics.rollup(source, con, f, 3600)
    sketch.quantiles(hist.filter(~pl.col("is_error")).select("bucket", "bin", "n"), by="bucket")

Drift tables (per UTC day and version) are read by `monitoring.rollup.features`. Every reader sums the parts the manifest names plus the duplicate correction, so counts
equal a raw scan's, duplicates counted once. Each bucket is served by the coarsest stored
grain that divides it (day, hour, 15 minutes, 5 minutes, minute), finer grains filling the
window's unaligned edges; what no grain holds (the seconds of a window edge off the minute,
minute latency bins) is read from the raw logs of the `source` a reader is given, for those
seconds only (`_raw`), and summed in. Without a source such a window raises `NotCovered`.
Drift tables need whole UTC days.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ..config import Config
from ..logs.source import LogSource, run
from ..metrics import sketch
from ..query.filters import BUCKETS, Filters, bucket_sql, bucket_times
from . import store as st
from .tables import DAY_US, DERIVED, GRAINS, LATENCY_GRAINS, TRAFFIC_GRAINS, coarse_t


class NotCovered(Exception):
    """The store cannot answer this exactly (stale files, or a window off its grain)."""


@dataclass(frozen=True)
class Store:
    """A store and the parts it answers for. `only` None: every file of the logs as they
    are (the duplicate correction included); else the covered parts only, without the
    correction (`partial.cover`: the rest comes from the raw logs)."""

    root: Path
    manifest: st.Manifest
    only: tuple[str, ...] | None = None
    covered_files: tuple[str, ...] = ()     # with `only`: the files whose parts are read
    rest_files: tuple[str, ...] = ()        # with `only`: the files read raw
    stamp: int = 0                          # the manifest's mtime_ns when it was read
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    complete = property(lambda self: self.only is None, doc="True: it answers for every file")

    @property
    def parts(self) -> list[str]:
        if self.only is not None:
            return list(self.only)
        return sorted({e.part for e in self.manifest.files.values()} | {st.DUPS_PART})

    def check(self, source: LogSource) -> None:
        """Raise NotCovered unless every file of `source` is rolled as it is now."""
        if self.manifest.schema != st.schema_hash(source):
            raise NotCovered("the logs' columns changed since the rollups were built: run `rollup update`")
        now = {f: st.FileEntry.of(f).part for f in source.files}
        old = {p: e.part for p, e in self.manifest.files.items()}
        if now != old:
            n = len(set(now.items()) ^ set(old.items()))
            raise NotCovered(f"{n} log file(s) changed since the rollups were built: run `rollup update`")

    def relation(self, table: str, *, dimfree: bool = False, partial: bool = False) -> tuple[str, dict[str, Any]]:
        """FROM clause of a table and its parameters: the segments' files (compact.py), else
        the live parts; rows are not unique per key: callers sum. `dimfree` (latency tables):
        the table with model, version and endpoint summed out, for views that filter on none
        of them (traffic tables keep error_type).

        A partial store (`only`) raises NotCovered unless `partial`: it reads the covered
        files only (segments of covered parts, else their part directories), without the
        duplicate correction; the caller adds the rest (`partial.Mix.answer`)."""
        if self.only is not None:
            if not partial:
                raise NotCovered(f"the rollups cover {len(self.covered_files)} of "
                                 f"{len(self.covered_files) + len(self.rest_files)} log files as they are now")
            return self._covered_relation(table, dimfree)
        key = "g_" + table.replace("/", "_")
        segs = self.manifest.segments
        if segs:
            family, _, grain = table.partition("/")
            names = [table]
            if dimfree and family in ("latency", "traffic"):
                names.insert(0, f"all/{grain}" if family == "latency" else f"all/traffic-{grain}")
            for name in names:
                paths = [self.root / g.name / f"{name}.parquet" for g in segs]
                full = [self.root / g.name / f"{table}.parquet" for g in segs]
                if name != table and any(a.is_file() != b.is_file() for a, b in zip(paths, full, strict=True)):
                    continue      # a segment without the dimension-free file: read the full table
                found = [str(p) for p in paths if p.is_file()]
                if found:
                    # segments overlap in keys (a day in two files, the correction): callers sum
                    return f"(SELECT * FROM read_parquet(${key}))", {key: found}
            return "", {}
        sql, params = self._parts(table, key, self.parts, keep_part=True)
        return (f"({sql})", params) if sql else ("", {})

    def _parts(self, table: str, key: str, parts: list[str], *, keep_part: bool = False) -> tuple[str, dict[str, Any]]:
        """SELECT over `table`'s part directories in `parts` ("" if none); a coarser grain
        (tables.DERIVED) is its finer table's parts with `t` in its buckets (callers sum)."""
        src, cols = table, "*" if keep_part else "* EXCLUDE (part)"
        if table in DERIVED:
            src, cols = DERIVED[table][0], f"{cols} REPLACE ({coarse_t(table)} AS t)"
        if not st.has_table(self.root, src):
            return "", {}
        return (f"SELECT {cols} FROM read_parquet(${key}_p, hive_partitioning=true, union_by_name=true) "
                f"WHERE list_contains(${key}_parts, part)", {f"{key}_p": st.glob_of(self.root, src), f"{key}_parts": parts})

    def _covered_relation(self, table: str, dimfree: bool) -> tuple[str, dict[str, Any]]:
        only = set(self.only or ())
        segs = [g for g in self.manifest.segments if g.parts != (st.DUPS_PART,) and set(g.parts) <= only]
        loose = sorted(only - {p for g in segs for p in g.parts})
        key = "g_" + table.replace("/", "_")
        pieces, params = [], {}
        if segs:
            whole = replace(self, only=None, manifest=replace(self.manifest, segments=segs))
            rel, params = whole.relation(table, dimfree=dimfree and not loose)
            if rel:
                pieces.append(f"SELECT * FROM {rel}")
        if loose:
            sql, p = self._parts(table, key, loose)
            if sql:
                pieces.append(sql)
                params |= p
        if not pieces:
            return "", {}
        return "(" + " UNION ALL BY NAME ".join(pieces) + ")", params


def open_store(config: Config, logs: str | None = None) -> Store | None:
    root = st.store_root(config, logs or config.logs)
    try:
        stamp = (root / "manifest.json").stat().st_mtime_ns
    except OSError:
        return None
    m = st.read_manifest(root)
    return Store(root, m, stamp=stamp) if m is not None else None


def duplicates(store: Store) -> int:
    """Extra copies of duplicated request ids, counted once (as `health.find_duplicates`)."""
    return store.manifest.duplicates


# -- time ---------------------------------------------------------------------------------------

def _us(dt: datetime) -> int:
    return (dt.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // _ONE_US


_ONE_US = datetime(1970, 1, 1, 0, 0, 0, 1) - datetime(1970, 1, 1)


def _pieces(lo_us: int, hi_us: int, bucket_s: int, grains: list[int]) -> tuple[list[tuple[int, int, int]],
                                                                                 list[tuple[int, int]]]:
    """Split [lo, hi) into (grain_s, first t, end t) ranges of stored grains dividing the
    bucket, coarsest first, and the (lo_us, hi_us) ranges no stored grain covers."""
    out: list[tuple[int, int, int]] = []
    rest: list[tuple[int, int]] = []

    def cover(lo: int, hi: int, gs: list[int]) -> None:
        if lo >= hi:
            return
        if not gs:
            rest.append((lo, hi))
            return
        g_us = gs[0] * 1_000_000
        a, b = -(-lo // g_us), hi // g_us          # the whole grains inside [lo, hi)
        if a < b:
            out.append((gs[0], a, b))
            cover(lo, a * g_us, gs[1:])
            cover(b * g_us, hi, gs[1:])
        else:
            cover(lo, hi, gs[1:])

    cover(lo_us, hi_us, sorted((g for g in grains if bucket_s % g == 0), reverse=True))
    return out, rest


def whole_window(f: Filters, grain_us: int, what: str) -> tuple[int | None, int | None]:
    """f's edges in µs (None: open), NotCovered unless each is on a whole grain."""
    lo = _us(f.start) if f.start is not None else None
    hi = _us(f.end) if f.end is not None else None
    for v in (lo, hi):
        if v is not None and v % grain_us:
            raise NotCovered(f"the window does not start and end on whole {what}s")
    return lo, hi


def _bounds(store: Store, con) -> tuple[int, int]:
    rel, params = store.relation("traffic/day", partial=True)
    if not rel:
        return 0, 0
    df = run(con, f"SELECT min(t) AS a, max(t) AS b FROM {rel}", params)
    if df["a"][0] is None:
        return 0, 0
    return int(df["a"][0]) * DAY_US, (int(df["b"][0]) + 1) * DAY_US


# -- traffic and latency --------------------------------------------------------------------------

def _traffic_sql(store: Store, con, f: Filters, bucket_s: int, select: str, where: str,
                 group: str, periods: list[tuple[int, int, int]], family: str = "traffic",
                 rest: list[tuple[int, int, int]] | None = None,
                 whole: set[int] = frozenset()) -> tuple[str, dict[str, Any]]:
    """UNION ALL of every (period, piece) query over the `family` tables; `select` may use
    {bucket}. Ranges no stored grain covers are appended to `rest` as (period, lo, hi) (or
    raise NotCovered when `rest` is None). Periods in `whole` are read at the coarsest
    grains that tile them (their rows are summed over the period by the caller)."""
    grains = [GRAINS[g] for g in (TRAFFIC_GRAINS if family == "traffic" else LATENCY_GRAINS)]
    cond, params = f.where(time=False)
    kept = ("model_name", "model_version", "endpoint") + (("error_type",) if family == "latency" else ())
    dimfree = not (f.model_name or f.model_versions or f.endpoints) and not any(d in select for d in kept)
    parts = []
    for period, lo, hi in periods:
        pieces, left = _pieces(lo, hi, GRAINS["day"] if period in whole else bucket_s, grains)
        if left and rest is None:
            raise NotCovered("this bucket or window edge is finer than the stored grains")
        if rest is not None:
            rest += [(period, a, b) for a, b in left]
        for g, a, b in pieces:
            rel, p = store.relation(f"{family}/{_grain_name(g)}", dimfree=dimfree, partial=True)
            if not rel:
                continue
            params |= p
            k = bucket_s // g
            bucket = ("CAST(NULL AS BIGINT)" if period in whole
                      else "t" if k == 1 else f"CAST(floor(t / CAST({k} AS DOUBLE)) AS BIGINT)")
            parts.append(f"SELECT CAST({period} AS INTEGER) AS period, {select.format(bucket=bucket)} "
                         f"FROM {rel} WHERE t >= {a} AND t < {b} AND {cond} AND {where} {group}")
    return " UNION ALL ".join(parts), params


def _grain_name(g: int) -> str:
    return next(name for name, s in GRAINS.items() if s == g)


def _periods(store: Store, con, f: Filters, with_previous: bool) -> list[tuple[int, int, int]]:
    """(period, lo_us, hi_us) of the window (1) and the one before it (0): any microseconds;
    `_traffic_sql` leaves what no stored grain covers to the raw logs."""
    lo, hi = _bounds(store, con) if f.start is None or f.end is None else (0, 0)
    lo = _us(f.start) if f.start is not None else lo
    hi = _us(f.end) if f.end is not None else hi
    if not with_previous:
        return [(1, lo, hi)]
    return [(0, _us(f.previous().start), lo), (1, lo, hi)]


def _raw(source: LogSource | None, con, f: Filters, rest: list[tuple[int, int, int]], body: str,
         params: dict[str, Any] | None = None) -> list[pl.DataFrame]:
    """`body` over the raw logs of `source` for each (period, lo_us, hi_us) of `rest`, the
    filters' condition for those microseconds as {cond} (time filters prune the row groups: a
    window's edge seconds cost a small scan), with the period as a column. NotCovered when
    there is something to read and no source."""
    if rest and source is None:
        raise NotCovered("this bucket or window edge is finer than the stored grains")
    out = []
    for period, lo, hi in rest:
        cond, p = replace(f, start=_dt(lo), end=_dt(hi)).where()
        out.append(source.query(con, body.format(cond=cond), p | (params or {}))
                   .with_columns(pl.lit(period, dtype=pl.Int32).alias("period")))
    return out


def _summed(frames: list[pl.DataFrame], schema: dict, keys: list[str], *counts: str, con=None, sql: str = "",
            params: dict | None = None) -> pl.DataFrame:
    """The frames' counts (default n) summed by `keys` (rows whose first is 0 dropped), sorted.
    `sql`: the store's query, grouped by `keys`; alone (no raw frame) its groups are the answer,
    sorted by DuckDB (the alert grid at 100M rows, 3.6M rows: Polars' second sort and grouping
    took 1.8 s of 2.6)."""
    counts = counts or ("n",)
    if sql and not frames:
        df = run(con, f"{sql} ORDER BY {', '.join(f'{k} NULLS LAST' for k in keys)}", params)
        return df.select(list(schema)).cast(schema).filter(pl.col(counts[0]) != 0)
    frames = [*frames, run(con, sql, params)] if sql else frames
    if not frames:
        return pl.DataFrame(schema=schema)
    df = pl.concat([fr.select(list(schema)).cast(schema) for fr in frames])
    # sorted first, grouped in that order: half the time of sorting the groups (3.6M rows of
    # 5-minute latency bins at 100M rows: 1.4 -> 0.7 s)
    return (df.sort(keys, nulls_last=True).group_by(keys, maintain_order=True).agg(pl.col(c).sum() for c in counts)
            .filter(pl.col(counts[0]) != 0).select(list(schema)))


def latency_hist(store: Store, con: duckdb.DuckDBPyConnection, f: Filters, bucket_s: int,
                 with_previous: bool = False, source: LogSource | None = None,
                 previous_total: bool = False) -> pl.DataFrame:
    """Requests per (period, bucket, failed, latency bin): the frame of `metrics.rollup`
    (columns period, bucket, is_error, bin, n). With `previous_total` the previous window
    (period 0) comes as one histogram, bucket NULL: what its KPIs need, at half the rows.

    Latency bins are stored by 5 and 15 minutes, hour and day: the parts of the window those do
    not cover (minute buckets, the minutes and seconds at unaligned window edges) are read from
    the raw logs of `source` for those only (time filters prune the row groups), or raise
    NotCovered when no source is given."""
    if bucket_s % 60:
        raise NotCovered("buckets finer than a minute need the raw logs")
    periods = _periods(store, con, f, with_previous)
    whole = {0} if with_previous and previous_total else set()
    rest: list[tuple[int, int, int]] = []
    sql, params = _traffic_sql(store, con, f, bucket_s, "{bucket} AS bucket, is_error, bin, n", "TRUE", "",
                               periods, family="latency", rest=rest, whole=whole)
    frames = _raw(source, con, f, rest, f"SELECT {bucket_sql('ts_us', '$bucket_us')} AS bucket, is_error, "
                  f"{sketch.bin_sql('latency_ms')} AS bin, count(*) AS n FROM logs WHERE {{cond}} GROUP BY ALL",
                  {"bucket_us": bucket_s * 1_000_000})
    frames = [fr.with_columns(pl.when(pl.col("period").is_in(list(whole))).then(None)
                              .otherwise(pl.col("bucket")).alias("bucket")) for fr in frames]
    return _summed(frames, {"period": pl.Int32, "bucket": pl.Int64, "is_error": pl.Boolean, "bin": pl.Int32,
                            "n": pl.Int64}, ["period", "bucket", "is_error", "bin"], con=con, params=params,
                   sql=sql and f"SELECT period, bucket, is_error, bin, CAST(sum(n) AS BIGINT) AS n FROM ({sql}) GROUP BY ALL")


def _dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + _ONE_US * us


def minutes(store: Store, con: duckdb.DuckDBPyConnection, f: Filters, bucket: str = "minute",
            source: LogSource | None = None) -> pl.DataFrame:
    """time, model_name, model_version, endpoint, requests, errors per bucket (default minute).
    A whole store only: no caller adds the rest of a partial one (rollup.partial). Edge
    seconds off the minute are read from `source` (NotCovered without one)."""
    if not store.complete:
        raise NotCovered("the rollups do not cover every log file as it is now")
    bucket_s = BUCKETS[bucket]
    rest: list[tuple[int, int, int]] = []
    dims = "model_name, model_version, endpoint"
    sql, params = _traffic_sql(store, con, f, bucket_s, "{bucket} AS bucket, " + dims + ", is_error, n",
                               "TRUE", "", _periods(store, con, f, False), rest=rest)
    frames = _raw(source, con, f, rest, f"SELECT {bucket_sql('ts_us', '$bucket_us')} AS bucket, {dims}, "
                  "count(*) AS requests, count(*) FILTER (WHERE is_error) AS errors FROM logs "
                  "WHERE {cond} GROUP BY ALL", {"bucket_us": bucket_s * 1_000_000})
    keys = ["bucket", "model_name", "model_version", "endpoint"]
    df = _summed(frames, {"bucket": pl.Int64, "model_name": pl.String, "model_version": pl.String,
                          "endpoint": pl.String, "requests": pl.Int64, "errors": pl.Int64},
                 keys, "requests", "errors", con=con, params=params,
                 sql=sql and f"SELECT bucket, {dims}, CAST(sum(n) AS BIGINT) AS requests, "
                 f"CAST(coalesce(sum(n) FILTER (WHERE is_error), 0) AS BIGINT) AS errors FROM ({sql}) GROUP BY ALL")
    return bucket_times(df, bucket_s).select("time", *keys[1:], "requests", "errors")


def minute_counts(store: Store, con: duckdb.DuckDBPyConnection, f: Filters,
                  baseline_days: int = 7, source: LogSource | None = None) -> pl.DataFrame:
    """Requests per minute index over the window and its baseline: minute, n (the frame of
    `anomalies.minute_counts`, for gaps and spikes); edge seconds off the minute from `source`."""
    from datetime import timedelta

    wide = Filters(start=f.start - timedelta(days=baseline_days), end=f.end, model_name=f.model_name,
                   model_versions=f.model_versions, endpoints=f.endpoints)
    rest: list[tuple[int, int, int]] = []
    sql, params = _traffic_sql(store, con, wide, 60, "{bucket} AS minute, n", "TRUE", "",
                               _periods(store, con, wide, False), rest=rest)
    frames = _raw(source, con, wide, rest, f"SELECT {bucket_sql('ts_us', '60000000')} AS minute, count(*) AS n "
                  "FROM logs WHERE {cond} GROUP BY 1")
    return _summed(frames, {"minute": pl.Int64, "n": pl.Int64}, ["minute"], con=con, params=params,
                   sql=sql and f"SELECT minute, CAST(sum(n) AS BIGINT) AS n FROM ({sql}) GROUP BY 1")


def error_types(store: Store, con: duckdb.DuckDBPyConnection, f: Filters, bucket: str,
                source: LogSource | None = None) -> pl.DataFrame:
    """Failed requests per bucket and error type: time, error_type, errors (= metrics.error_types);
    edge seconds off the minute from `source`."""
    bucket_s = BUCKETS[bucket]
    rest: list[tuple[int, int, int]] = []
    etype = "coalesce(error_type, '(unspecified)') AS error_type"
    sql, params = _traffic_sql(store, con, f, bucket_s, "{bucket} AS bucket, " + etype + ", n",
                               "is_error", "", _periods(store, con, f, False), rest=rest)
    frames = _raw(source, con, f, rest, f"SELECT {bucket_sql('ts_us', '$bucket_us')} AS bucket, {etype}, "
                  "count(*) AS errors FROM logs WHERE {cond} AND is_error GROUP BY ALL",
                  {"bucket_us": bucket_s * 1_000_000})
    df = _summed(frames, {"bucket": pl.Int64, "error_type": pl.String, "errors": pl.Int64},
                 ["bucket", "error_type"], "errors", con=con, params=params,
                 sql=sql and f"SELECT bucket, error_type, CAST(sum(n) AS BIGINT) AS errors FROM ({sql}) GROUP BY ALL")
    return bucket_times(df, bucket_s).select("time", "error_type", "errors")


def dimension_hist(store: Store, con: duckdb.DuckDBPyConnection, f: Filters, dim: str,
                   source: LogSource | None = None) -> pl.DataFrame:
    """key, is_error, bin, n per value of a dimension over the window (the first query of
    `metrics.by_dimension`); unaligned window edges are read from `source` as in
    `latency_hist`."""
    if dim not in ("model_name", "model_version", "endpoint", "error_type"):
        raise ValueError(f"unknown dimension {dim!r}")
    periods = _periods(store, con, f, False)
    rest: list[tuple[int, int, int]] = []
    sql, params = _traffic_sql(store, con, f, GRAINS["day"], f"{dim} AS key, is_error, bin, n", "TRUE", "",
                               periods, family="latency", rest=rest)
    frames = _raw(source, con, f, rest, f"SELECT {dim} AS key, is_error, {sketch.bin_sql('latency_ms')} AS bin, "
                  "count(*) AS n FROM logs WHERE {cond} GROUP BY ALL")
    return _summed(frames, {"key": pl.String, "is_error": pl.Boolean, "bin": pl.Int32, "n": pl.Int64},
                   ["key", "is_error", "bin"], con=con, params=params,
                   sql=sql and f"SELECT key, is_error, bin, CAST(sum(n) AS BIGINT) AS n FROM ({sql}) GROUP BY ALL")

"""Answers from the store for the files it covers and from the raw logs for the rest.

    store = cover(open_store(config), source)   # the whole store, or its covered parts
    mix = mix_of(source_with_store, con)        # None: no store attached
    mix.answer(lambda s, covered: read.minute_counts(s, con, f),      # the covered files
               lambda src: raw_minute_counts(src, con, f), keys=("minute",))

A store built before a file was added, changed or removed still holds the right counts of
every file it rolled as that file is now. An answer is then the sum of three mergeable
frames of the same shape:

    the store's parts of the covered files (no duplicate correction; minutes the store
        does not hold are read raw from the covered files, duplicates kept, as the parts)
  - the same aggregate over the extra copies that lie in covered files
  + the raw query over the uncovered files (the `logs` view: its extra copies dropped)

Duplicates are the workspace's: its dedupe table (`health.find_duplicates`) lists every
extra copy across all files as they are now, so a copy in a covered file whose first copy
is in a new file is subtracted, and a copy in a new file whose first copy is covered is
dropped by the `logs` view. The store's own correction is not used: it was computed over
the files of the last build, which may include a removed or changed one. The covered
copies' columns come from the store's `dups/members.parquet` (every copy of every id seen
twice at the last build); copies it does not hold (their first copy is in a file rolled
since) are read from their files, by row.

When every file is covered the store answers alone, correction included (the fast path).
When the covered rows are few, the raw logs alone are cheaper and `cover` says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import duckdb
import polars as pl

from ..logs.source import LogSource, run
from . import store as st
from .read import NotCovered, Store

# Below this many covered rows the raw logs alone answer faster. A mixed answer costs the
# store's read plus a raw scan of the rest; the raw path scans the covered rows too. At 10M
# rows (a 15-day hourly Overview, 8 of 30 day files covered, read from their parts) the
# store's share took 0.057 s and the raw scan ran at about 18M rows/s: the covered rows pay
# for the store's read from about 1M (docs/rollups.md).
MIN_COVERED_ROWS = 1_000_000

# What a reader may raise for the store (a segment removed by a concurrent update, a file
# half written): the caller answers from the raw logs instead.
FALLBACK = (NotCovered, duckdb.IOException, duckdb.InvalidInputException, OSError)

COPY_COLUMNS = ("ts_us", "model_name", "model_version", "endpoint", "latency_ms", "is_error", "error_type")


def cover(store: Store, source: LogSource, min_rows: int | None = None) -> Store:
    """The store as it can answer for `source`: itself when it covers every file as it is
    now, else a partial store of the covered files' parts (`Store.only`). Raises NotCovered
    (one sentence) when the columns changed, no file is covered, or the covered files hold
    fewer than `min_rows` (default MIN_COVERED_ROWS) rows: the raw logs are cheaper then."""
    min_rows = MIN_COVERED_ROWS if min_rows is None else min_rows
    if store.manifest.schema != st.schema_hash(source):
        raise NotCovered("the logs' columns changed since the rollups were built: run `rollup update`")
    now = {f: st.FileEntry.of(f).part for f in source.files}
    old = {p: e.part for p, e in store.manifest.files.items()}
    if now == old:
        return replace(store, only=None, covered_files=(), rest_files=(), cache={})
    covered = tuple(f for f in source.files if old.get(f) == now[f])
    rows = sum(store.manifest.files[f].rows for f in covered)
    if not covered:
        raise NotCovered("no log file is rolled as it is now: run `rollup update`")
    if rows < min_rows:
        raise NotCovered(f"the rollups cover {rows:,} rows of these logs, fewer than the "
                         f"{min_rows:,} that make them cheaper than the raw logs")
    rest = tuple(f for f in source.files if old.get(f) != now[f])
    return replace(store, only=tuple(sorted({now[f] for f in covered})), covered_files=covered,
                   rest_files=rest, cache={})


class Copies:
    """The extra copies inside the covered files as a `logs` relation: `query` runs the
    same SQL bodies the raw readers run over the logs (the columns of COPY_COLUMNS and
    `ts`); anything else is the source's."""

    def __init__(self, frame: pl.DataFrame, source: LogSource):
        self.frame, self.source = frame, source

    def query(self, con: duckdb.DuckDBPyConnection, body: str, params: dict[str, Any] | None = None,
              *, raw: bool = False, tables: dict[str, pl.DataFrame] | None = None) -> pl.DataFrame:
        if raw:
            raise NotCovered("raw rows of duplicate copies are not kept")
        return run(con, f"WITH logs AS (SELECT * FROM mw_copies) {body}", params,
                   tables={"mw_copies": self.frame, **(tables or {})})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)


@dataclass(frozen=True)
class Mix:
    """How one source is answered: `store` (whole, or its covered parts), `covered` (the
    source the store's readers read raw minutes from), `rest` (the uncovered files) and
    `copies` (the covered files' extra copies, subtracted). `rest` is None when no file
    is uncovered (one was removed), `copies` when no copy lies in a covered file; both
    when the store covers every file."""

    store: Store
    covered: LogSource
    rest: LogSource | None = None
    copies: Copies | None = None

    def answer(self, from_store: Callable[[Store, LogSource], pl.DataFrame],
               from_raw: Callable[[Any], pl.DataFrame], keys: tuple[str, ...],
               counts: tuple[str, ...] = ("n",)) -> pl.DataFrame:
        """from_store(store, covered) + from_raw(rest) - from_raw(copies), summed by `keys`
        (rows whose first count is 0 dropped): frames of one shape, counts that add."""
        first = from_store(self.store, self.covered)
        if self.store.complete:
            return first
        frames = [first]
        if self.rest is not None:
            frames.append(from_raw(self.rest))
        if self.copies is not None:
            frames.append(from_raw(self.copies).with_columns(-pl.col(c) for c in counts))
        schema = first.schema
        df = pl.concat([fr.select(list(schema)).cast(schema) for fr in frames])
        return (df.group_by(list(keys)).agg(pl.col(c).sum() for c in counts)
                .filter(pl.col(counts[0]) != 0).select(list(schema)))


def mix_of(source: LogSource, con: duckdb.DuckDBPyConnection) -> Mix | None:
    """The Mix for `source` (None when no store is attached); worked out once per store
    and source (the covered copies are read once)."""
    store = getattr(source, "rollups", None)
    if store is None:
        return None
    if store.complete:
        return Mix(store, source)
    key = (source.fingerprint, source.dedupe_table)
    mix = store.cache.get(key)
    if mix is None:
        covered = replace(source, files=list(store.covered_files), dedupe_table=None, rollups=None)
        rest = replace(source, files=list(store.rest_files), rollups=None) if store.rest_files else None
        frame = covered_copies(store, source, con)
        mix = Mix(store, covered, rest, Copies(frame, source) if frame.height else None)
        store.cache[key] = mix
    return mix


def covered_copies(store: Store, source: LogSource, con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The extra copies (the workspace's dedupe table) that lie in the covered files, with
    the columns the readers aggregate: file, row, COPY_COLUMNS..., ts."""
    cols = ", ".join(COPY_COLUMNS)
    empty = pl.DataFrame(schema={"file": pl.String, "row": pl.Int64, "ts_us": pl.Int64,
                                 "model_name": pl.String, "model_version": pl.String,
                                 "endpoint": pl.String, "latency_ms": pl.Float64,
                                 "is_error": pl.Boolean, "error_type": pl.String})
    if not source.dedupe_table or not store.covered_files:
        return _with_ts(empty)
    # The table name is the workspace's own (mw_dups_<hex fingerprint>), not user text.
    need = run(con, f"SELECT file, CAST(row_number AS BIGINT) AS row FROM {source.dedupe_table} "
                    "WHERE list_contains($files, file)", {"files": list(store.covered_files)})
    if need.height == 0:
        return _with_ts(empty)
    frames = []
    members = store.root / "dups" / "members.parquet"
    if members.is_file():
        try:
            frames.append(run(con, f"SELECT DISTINCT file, CAST(row AS BIGINT) AS row, {cols} "
                                   "FROM read_parquet($m) WHERE list_contains($parts, part) "
                                   "AND (file, row) IN (SELECT file, row FROM need)",
                              {"m": str(members), "parts": list(store.only or ())}, tables={"need": need}))
        except duckdb.Error:
            pass          # rewritten by an update meanwhile: read the copies from their files
    found = pl.concat([f.cast(empty.schema) for f in frames]) if frames else empty
    missing = need.join(found.select("file", "row"), on=["file", "row"], how="anti")
    if missing.height:
        from .duck import rows_sql, source_layout

        files = sorted(missing["file"].unique().to_list())
        frames.append(run(con, f"SELECT file, CAST(row AS BIGINT) AS row, {cols} FROM "
                               f"({rows_sql(source, source_layout(source))}) "
                               "WHERE (file, row) IN (SELECT file, row FROM need)",
                          {"files": files, "subset": files}, tables={"need": missing}))
    out = pl.concat([f.select(empty.columns).cast(empty.schema) for f in frames]) if frames else empty
    return _with_ts(out.unique(["file", "row"]))


def _with_ts(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.from_epoch("ts_us", time_unit="us").dt.replace_time_zone("UTC").alias("ts"))

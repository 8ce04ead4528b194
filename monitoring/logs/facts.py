"""The facts about the whole log, found in two passes over the files instead of three.

    grouped = file_facts(source, con, files)         # per file x reason x model x version x endpoint
    cands = candidate_hashes(source, con)             # 64-bit hashes of request ids seen twice
    n = confirm_duplicates(source, con, cands)        # the exact copies, as `source.dedupe_table`
    ext, health = summarise(source, con, grouped, n)  # what `extent` and `check_health` answer

`file_facts` counts every row by the first contract rule it breaks, per file and per
model, version and endpoint (as the `logs` view names them), with the first and last
timestamp: the health check's counts and the extent's groups in one grouped scan, and kept
per file so an added file only scans that file. The duplicate correction is applied after:
the dedupe table names each dropped copy's file and group, so its rows are subtracted from
their groups; a group whose first or last time may have been a dropped copy is counted again,
exactly, for the files concerned only.

When a rollup store covers every file, its members table (every copy of every duplicated
id) gives the dedupe table without reading the logs (`duplicates_from_store`).

The exact duplicate check is the one pass that cannot be answered per file: a request id in a
new file may repeat one in any old file. `candidate_hashes(..., new=..., known=...)` finds
them without a hash table of every id: the old candidates, the new files' own repeats, and
the old files' ids that are among the new files' hashes (a probe of the old files' ids).
"""

from __future__ import annotations

import duckdb
import polars as pl

from ..query.filters import Extent, _from_us
from .health import (  # noqa: F401 (the open's steps, in one namespace for the workspace)
    GROUP,
    INVALID_REASONS,
    Health,
    candidate_hashes,
    confirm_duplicates,
    scan_of,
    ts_us,
    view_dims,
)
from .source import LogSource, cursor, quote_ident, run

FACT_SCHEMA = {"file": pl.String, "reason": pl.String, "model_name": pl.String, "model_version": pl.String,
               "endpoint": pl.String, "n": pl.Int64, "lo": pl.Int64, "hi": pl.Int64}


def file_facts(source: LogSource, con: duckdb.DuckDBPyConnection, files: list[str]) -> pl.DataFrame:
    """One grouped scan of `files`: rows per file x reason x model x version x endpoint, with
    the first and last timestamp (epoch µs) of each group."""
    if not files:
        return pl.DataFrame(schema=FACT_SCHEMA)
    dims = ", ".join(f"CAST({sql} AS VARCHAR) AS {k}" for k, sql in view_dims(source).items())
    # Grouped by the file's position in $subset (an integer key is cheaper than the path on
    # every row; nothing filters the files, so DuckDB numbers them all in list order).
    sql = (f"SELECT CAST(file_index AS BIGINT) AS fi, {source.reason_case()} AS reason, {dims}, "
           f"count(*) AS n, min({ts_us(source)}) AS lo, max({ts_us(source)}) AS hi "
           f"FROM {scan_of(source, 'subset')} AS r GROUP BY ALL")
    df = run(con, sql, {"subset": files})
    if df.height == 0:
        return pl.DataFrame(schema=FACT_SCHEMA)
    names = pl.DataFrame({"fi": list(range(len(files))), "file": files}, schema={"fi": pl.Int64, "file": pl.String})
    return df.join(names, on="fi", how="left").select(list(FACT_SCHEMA)).cast(FACT_SCHEMA)


def duplicates_from_store(source: LogSource, con: duckdb.DuckDBPyConnection,
                          store) -> tuple[int, list[int]] | None:
    """The dedupe table from a rollup store that covers every file as it is now: its
    `dups/members.parquet` holds every valid copy of every duplicated id (rollup.duck.dedupe),
    so the copies are ranked there, without reading the logs. Returns the copies and the
    hashes of the duplicated ids (the candidates a later open with added files starts from),
    or None when the store cannot say (no members file while it counts copies, or a count
    that disagrees with its manifest)."""
    want = int(store.manifest.duplicates)
    members = store.root / "dups" / "members.parquet"
    if want == 0 or not source.has("request_id"):
        source.dedupe_table = None
        return (0, []) if want == 0 else None
    if not members.is_file():
        return None
    name = f"mw_dups_{source.fingerprint}"
    sql = (f"CREATE OR REPLACE TABLE {name} AS WITH ranked AS (SELECT *, row_number() OVER "
           "(PARTITION BY rid ORDER BY ts_us, file, row) AS k FROM read_parquet($members)) "
           "SELECT file, row AS row_number, make_timestamp(ts_us) AS ts, ts_us, "
           f"{', '.join(GROUP)} FROM ranked WHERE k > 1")
    cur = cursor(con)
    try:
        cur.execute(sql, {"members": str(members)})
        n = int(cur.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])
        hashes = [h for (h,) in cur.execute("SELECT DISTINCT hash(rid) FROM read_parquet($members)",
                                            {"members": str(members)}).fetchall()]
    finally:
        cur.close()
    if n != want:
        return None
    source.dedupe_table = name
    return n, hashes


def _dropped(source: LogSource, con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    if not source.dedupe_table:
        return pl.DataFrame(schema={"file": pl.String, **{k: pl.String for k in GROUP},
                                    "d": pl.Int64, "dlo": pl.Int64, "dhi": pl.Int64})
    return run(con, f"SELECT file, {', '.join(GROUP)}, count(*) AS d, min(ts_us) AS dlo, max(ts_us) AS dhi "
                    f"FROM {source.dedupe_table} GROUP BY ALL")


def kept_groups(source: LogSource, con: duckdb.DuckDBPyConnection, facts: pl.DataFrame) -> pl.DataFrame:
    """Valid rows per file and group after the duplicate correction, with their first and last
    time: subtracted from the grouped counts, and counted again (those files only) where a
    dropped copy held a group's first or last time."""
    valid = facts.filter(pl.col("reason") == "valid").drop("reason")
    keys = ["file", *GROUP]
    dropped = _dropped(source, con)
    if dropped.height == 0:
        return valid
    j = valid.join(dropped.cast({"d": pl.Int64, "dlo": pl.Int64, "dhi": pl.Int64}), on=keys, how="left",
                   nulls_equal=True)
    # Without timestamps there is no first or last time: the subtraction is the whole story.
    at_edge = ((pl.col("d") > 0) & ((pl.col("dlo") == pl.col("lo")) | (pl.col("dhi") == pl.col("hi")))).fill_null(False)
    dirty = sorted(set(j.filter(at_edge)["file"].to_list()))
    clean = (j.filter(~pl.col("file").is_in(dirty))
             .with_columns(n=pl.col("n") - pl.col("d").fill_null(0)).filter(pl.col("n") > 0)
             .select(valid.columns))
    if not dirty:
        return clean
    dims = ", ".join(f"CAST({sql} AS VARCHAR) AS {k}" for k, sql in view_dims(source).items())
    fc = quote_ident(source.file_col)
    again = run(con, f"SELECT {fc} AS file, {dims}, count(*) AS n, min({ts_us(source)}) AS lo, "
                     f"max({ts_us(source)}) AS hi FROM {scan_of(source, 'subset')} AS r "
                     f"ANTI JOIN {source.dedupe_table} AS d ON r.{fc} = d.file AND r.file_row_number = d.row_number "
                     f"WHERE {source.valid_predicate()} GROUP BY ALL", {"subset": dirty})
    return pl.concat([clean, again.cast({k: v for k, v in FACT_SCHEMA.items() if k in again.columns})],
                     how="diagonal_relaxed").select(valid.columns)


def summarise(source: LogSource, con: duckdb.DuckDBPyConnection, facts: pl.DataFrame,
              duplicates: int) -> tuple[Extent, Health]:
    """The extent (`query.filters.extent`) and whole-log health (`health.check_health`) from the
    grouped facts and the dedupe table, without another scan unless a correction needs one."""
    by_reason = facts.group_by("reason").agg(pl.col("n").sum())
    counts = dict(zip(by_reason["reason"].to_list(), by_reason["n"].to_list(), strict=True))
    health = Health(total_rows=int(sum(counts.values())), valid_rows=int(counts.get("valid", 0)) - duplicates,
                    invalid={r: int(counts[r]) for r, _ in INVALID_REASONS if counts.get(r)},
                    duplicates=duplicates, bad_files=[(b.path, b.reason) for b in source.bad_files],
                    warnings=list(source.warnings))
    dims = kept_groups(source, con, facts)
    lo, hi = dims["lo"].min(), dims["hi"].max()

    def distinct(col: str) -> tuple[str, ...]:
        return tuple(sorted(v for v in dims[col].unique().to_list() if v is not None))

    spans = (dims.group_by("model_version").agg(pl.col("lo").min(), pl.col("hi").max())
             .sort("model_version").iter_rows(named=True))
    ext = Extent(rows=int(dims["n"].sum() or 0),
                 first=_from_us(lo) if lo is not None else None, last=_from_us(hi) if hi is not None else None,
                 model_names=distinct("model_name"), model_versions=distinct("model_version"),
                 endpoints=distinct("endpoint"),
                 version_spans=tuple((r["model_version"], _from_us(r["lo"]), _from_us(r["hi"]))
                                     for r in spans if r["lo"] is not None))
    return ext, health

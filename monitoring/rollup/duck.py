"""The DuckDB engine: rolls log files into parts of the store, and the duplicate correction.

Files are read in batches of about `BATCH_ROWS` rows, whole files each; a batch is three
passes over the `rows` projection of its files (every count table from one GROUPING SETS
query, the numeric bins, the id hashes), and its tables are written at once as one Hive
directory per (table, part): nothing is held from one batch to the next.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb
import polars as pl

from ..logs.source import NUMERIC_TYPES, LogSource, cursor, quote_ident, run
from ..logs.sql import execute
from . import store as st
from .tables import TABLES, Layout, dropped_sql, layout

BATCH_ROWS = 4_000_000    # rows per batch: bounds the memory of one batch's passes
DEDUPE_ROWS = 12_000_000  # ids per sort of a full duplicate check (h mod k slices above it)
FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")


def source_layout(source: LogSource) -> Layout:
    return layout([(f.name, f.kind) for f in source.features], has_score=source.has("score"),
                  float_prediction=source.types.get("prediction", "") in FLOAT_TYPES
                  or source.types.get("prediction", "").startswith("DECIMAL"),
                  has_prediction=source.has("prediction"), has_ids=source.has("request_id"))


def rid_hash(rid: str) -> str:
    """60 bits of md5 as BIGINT: the first 15 hex digits of the digest, the number the Spark
    engine computes as conv(substr(md5(rid), 1, 15), 16, 10).

    From `md5_number` (the digest as a little-endian UHUGEINT, no hex text): its low 64 bits
    are the digest's first 8 bytes reversed, so the bytes are swapped back and the last
    nibble dropped. 0.22 s of CPU against 0.35 s for the hex-string form on 2M ids, equal on
    every one of them (tests/test_rollup.py checks both forms)."""
    m = f"CAST(md5_number({rid}) & CAST(18446744073709551615 AS UHUGEINT) AS UBIGINT)"
    swapped = " | ".join(f"((({m} >> {8 * i}) & 255) << {8 * (7 - i)})" for i in range(8))
    return f"CAST(({swapped}) >> 4 AS BIGINT)"


def rows_sql(source: LogSource, lay: Layout, *, by_index: bool = False) -> str:
    """The `rows` projection of the files in $subset, valid rows only, each column as the
    `logs` view defines it (`LogSource.base_sql`), before duplicates are removed.

    `file` is the file's path, or with by_index $offset plus its position among the files
    of $subset (DuckDB numbers the files left after pruning, in the order of $files): an
    integer is a cheaper key than a path on every row."""
    rid = source.request_id_sql()
    fc = f"r.{quote_ident(source.file_col)}"
    file = "CAST(r.file_index AS BIGINT) + $offset" if by_index else fc
    ts = source.expr("timestamp") if source.has_time else "CAST(NULL AS TIMESTAMPTZ)"
    endpoint = (f"coalesce({source.expr('endpoint')}, '(none)')" if source.has("endpoint")
                else "CAST(NULL AS VARCHAR)")
    version = source.expr("model_version") if source.has("model_version") else "'default'"
    cols = [
        f"{file} AS file", "r.file_row_number AS row", f"{rid} AS rid",
        f"{rid_hash(rid)} AS h",
        f"epoch_us({ts}) AS ts_us",
        f"coalesce({source.expr('model_name')}, 'default') AS model_name",
        f"{version} AS model_version",
        f"{endpoint} AS endpoint",
        f"CAST({source.expr('latency_ms')} AS DOUBLE) AS latency_ms",
        f"{source.is_error_expr()} AS is_error",
        f"CAST({source.expr('error_type')} AS VARCHAR) AS error_type",
        f"CAST({source.expr('prediction')} AS VARCHAR) AS prediction",
        f"CAST({source.expr('label')} AS VARCHAR) AS label",
        f"{_finite(source.expr('score'))} AS fs",
        f"{_not_finite(source.expr('score'))} AS fsx",
        f"{_finite(source.expr('prediction')) if 'fp' in lay.numeric else 'CAST(NULL AS DOUBLE)'} AS fp",
    ]
    for i, f in enumerate(source.features):
        cols.append(f"{_finite(f.expr) if f.kind == 'numeric' else f'CAST({f.expr} AS VARCHAR)'} AS f{i}")
    return (f"SELECT {', '.join(cols)} FROM {source.scan_sql} AS r "
            f"WHERE list_contains($subset, {fc}) AND {source.valid_predicate()}")


def _not_finite(expr: str) -> str:
    if expr == "NULL":
        return "false"
    v = f"TRY_CAST({expr} AS DOUBLE)"
    return f"coalesce(NOT isfinite({v}), false)"


def _finite(expr: str) -> str:
    if expr == "NULL":
        return "CAST(NULL AS DOUBLE)"
    v = f"TRY_CAST({expr} AS DOUBLE)"
    return f"CASE WHEN isfinite({v}) THEN {v} END"


def _batches(entries: list[st.FileEntry], limit: int | None = None) -> list[list[st.FileEntry]]:
    limit = limit or BATCH_ROWS
    out, cur, n = [], [], 0
    for e in entries:
        if cur and n + e.rows > limit:
            out.append(cur)
            cur, n = [], 0
        cur.append(e)
        n += e.rows
    if cur:
        out.append(cur)
    return out


def roll(source: LogSource, con: duckdb.DuckDBPyConnection, entries: list[st.FileEntry],
         staging: Path, progress=None, batch_rows: int | None = None) -> None:
    """Roll `entries` into `staging/<table>/part=<id>/`;
    progress(done_rows, total_rows, done_files, total_files) after each batch."""
    lay = source_layout(source)
    cur = cursor(con)
    try:
        cur.register("feats", _feats(lay).to_arrow())
        order = {f: i for i, f in enumerate(source.files)}
        entries = sorted(entries, key=lambda e: order[e.path])
        parts = {str(i): e.part for i, e in enumerate(entries)}   # `file` (by_index) -> part id
        total, done = sum(e.rows for e in entries), 0
        offset = 0
        files_done = 0
        for batch in _batches(entries, batch_rows):
            params = {"files": source.files, "subset": [e.path for e in batch], "offset": offset}
            offset += len(batch)
            # A CTE per pass, not a materialised table: each pass reads only the columns it
            # needs (measured 2.7x faster than projecting every column once).
            rows = f"WITH rows AS NOT MATERIALIZED ({rows_sql(source, lay, by_index=True)}) "
            _roll_batch(cur, lay, rows, params, staging, parts)
            done += sum(e.rows for e in batch)
            files_done += len(batch)
            if progress:
                progress(done, total, files_done, len(entries))
    finally:
        cur.close()


def _feats(lay: Layout) -> pl.DataFrame:
    return pl.DataFrame(list(lay.feats), schema=["fi", "role", "feature"], orient="row")


def _roll_batch(cur: duckdb.DuckDBPyConnection, lay: Layout, rows: str, params: dict, staging: Path,
                parts: dict[str, str], negate: bool = False, ids: bool = True) -> None:
    """Roll one batch (`rows`: the CTE prefix naming it, or "" for a table `rows`) and write
    its tables at once: a batch holds whole files, so each file's part is complete here and
    nothing is kept for the next batch (memory stays one batch's small tables).

    Three passes over the batch: every count table from one GROUPING SETS query
    (`tables.counts_sql`), the numeric bins (`tables.numeric_sql`, values unnested), and
    the id hashes written straight from the scan (one row a request, never held in a table)."""
    counts, taken, rest = lay.passes()
    execute(cur, f"CREATE OR REPLACE TEMP TABLE counts AS {rows}{counts}", params)
    try:
        for name, sql in taken.items():   # the coarser grains are summed in the segments (compact.py)
            _write(cur, f"({sql})", TABLES[name], staging, parts, negate)
    finally:
        cur.execute("DROP TABLE IF EXISTS counts")
    if "numeric" in rest:
        _write(cur, f"({rows}{rest['numeric']})", TABLES["numeric"], staging, parts, negate, params)
    if ids and "ids" in rest:
        _write(cur, f"({rows}{rest['ids']})", TABLES["ids"], staging, parts, negate, params)


def _literal(path: Path) -> str:
    # Paths are ours (data_dir + a fixed layout); read_parquet in a CTE takes them as literals.
    return "'" + str(path).replace("'", "''") + "'"


def _write(cur: duckdb.DuckDBPyConnection, acc: str, table, staging: Path, parts: dict[str, str],
           negate: bool = False, params: dict | None = None) -> None:
    """COPY `acc` (a table, or a parenthesised query) into `staging/<table>/part=<id>/`,
    `parts` mapping each `file` value (as text) to its part id. Partitioned by `file`, each
    directory then renamed to its part: no join of every row to the part ids (on the `ids`
    table, one row a request, the join was a fifth of the pass). Unsorted: readers read the
    compacted files, which `compact.segment` sorts by time; sorting parts was a tenth of a
    build."""
    cols = []
    for c in table.columns:
        if negate and c in table.negate:
            cols.append(f"-a.{quote_ident(c)} AS {quote_ident(c)}")
        elif negate and c in table.drop_on_correction:
            cols.append(f"CAST(NULL AS DOUBLE) AS {quote_ident(c)}")
        else:
            cols.append(f"a.{quote_ident(c)}")
    out = staging / table.name
    out.mkdir(parents=True, exist_ok=True)
    # The path is ours (data_dir + a fixed layout); COPY takes no bound parameter for it.
    # Batches hold disjoint files, so their partitions never collide in one directory.
    target = str(out).replace("'", "''")
    execute(cur,
          f"COPY (SELECT a.file, {', '.join(cols)} FROM {acc} a) TO '{target}' "
          "(FORMAT parquet, PARTITION_BY (file), COMPRESSION zstd, OVERWRITE_OR_IGNORE, "
          "FILENAME_PATTERN 'data_{uuid}')", params)
    for d in out.glob("file=*"):
        key = d.name.removeprefix("file=")
        if key not in parts:   # never left for install_staged, which moves part= directories only
            raise RuntimeError(f"rollup build: no part id for the written partition {d.name!r}")
        os.replace(d, out / f"part={parts[key]}")


# -- duplicates --------------------------------------------------------------------------------

def dedupe(source: LogSource, con: duckdb.DuckDBPyConnection, root: Path,
           live: dict[str, st.FileEntry], fresh: set[str] | None = None) -> int:
    """Recompute the duplicate correction over the parts in `live` (part id -> entry).

    Candidates are the 60-bit hashes seen more than once across every part's `ids`; the
    copies are confirmed on the request ids themselves. With `fresh` (the parts just rolled;
    None: all) only hashes of those parts and the known candidates are looked up across the
    other parts (a removed file cannot create a duplicate), which spares a hash table of
    every id. Copies already in `dups/members.parquet` from files that did not change are
    reused; only files holding a candidate not seen there are read again (the rows of those
    hashes only). Returns the number of extra copies dropped; writes `<table>/part=_dups`
    with their negative counts.
    """
    lay = source_layout(source)
    st.remove_parts(root, [st.DUPS_PART])
    parts = list(live)
    members_path = root / "dups" / "members.parquet"
    if not parts or not st.has_table(root, "ids"):
        members_path.unlink(missing_ok=True)
        return 0
    # NOT MATERIALIZED: each query below reads `i` more than once, and DuckDB would otherwise
    # hold every id in a temporary table (10M ids: 1.05 GB peak and 3.0 s of CPU for the full
    # check, against 0.33 GB and 0.76 s reading the files again).
    ids = ("NOT MATERIALIZED (SELECT * FROM read_parquet($ids, hive_partitioning=true) "
           "WHERE list_contains($parts, part))")
    params = {"ids": st.glob_of(root, "ids"), "parts": parts}
    if fresh is None:
        # Every hash against every other, by sorting the hashes once and comparing each with
        # the one before: the same candidates as grouping them, at about half the CPU and
        # half the memory of a hash table of every id (10M ids: 0.76 s of CPU and 334 MB
        # against 1.4-1.5 s and 780 MB for two slices of h mod 2; docs/rollups.md). Each id
        # row has n = 1; a row counting more is a candidate by itself. Above DEDUPE_ROWS ids the
        # hashes are sorted in disjoint slices of h mod k, one pass each: one sort of 100M
        # hashes took the build's peak to 1.2 GB; a slice's sort is 1/k of it.
        k = max(1, -(-sum(e.rows for e in live.values()) // DEDUPE_ROWS))
        sl = "h % $k = $slice"
        pairs = pl.concat([run(con, f"WITH i AS {ids}, j AS (SELECT h, n, part FROM i WHERE {sl}), "
                                    "s AS (SELECT h, lag(h) OVER (ORDER BY h) AS p FROM j), "
                                    "c AS (SELECT h FROM s WHERE h = p UNION SELECT h FROM j WHERE n > 1) "
                                    "SELECT DISTINCT h, part FROM j WHERE h IN (SELECT h FROM c)",
                               params | {"k": k, "slice": j}) for j in range(k)])
    else:
        known = (f"UNION SELECT DISTINCT h FROM read_parquet({_literal(members_path)})"
                 if members_path.exists() else "")
        probe = ("p AS (SELECT h FROM i WHERE list_contains($fresh, part) " + known + "), "
                 "c AS (SELECT h FROM i WHERE h IN (SELECT h FROM p) GROUP BY h HAVING sum(n) > 1)")
        params["fresh"] = sorted(fresh)
        pairs = run(con, f"WITH i AS {ids}, {probe} SELECT DISTINCT h, part FROM i WHERE h IN (SELECT h FROM c)",
                    params)
    if pairs.height == 0:
        members_path.unlink(missing_ok=True)
        return 0
    cur = cursor(con)
    try:
        old_ok = False
        if members_path.exists():
            cur.execute("CREATE OR REPLACE TEMP TABLE members AS SELECT * FROM read_parquet($p)",
                        {"p": str(members_path)})
            cur.register("pairs", pairs.to_arrow())
            cur.execute("DELETE FROM members WHERE (h, part) NOT IN (SELECT h, part FROM pairs)")
            have = pl.from_arrow(cur.sql("SELECT DISTINCT h, part FROM members").to_arrow_table())
            need = pairs.join(have, on=["h", "part"], how="anti")
            old_ok = True
        else:
            need = pairs
        if need.height:
            by_part = {e.part: e.path for e in live.values()}
            files = sorted({by_part[p] for p in need["part"].unique().to_list()})
            cur.register("need", need.select("h").unique().to_arrow())
            cur.register("fileparts", pl.DataFrame({"file": list(by_part.values()),
                                                    "part": list(by_part.keys())}).to_arrow())
            fresh = (f"SELECT p.part, x.* FROM ({rows_sql(source, lay)}) x JOIN fileparts p USING (file) "
                     "WHERE x.h IN (SELECT h FROM need)")
            params = {"files": source.files, "subset": files}
            if old_ok:
                execute(cur, f"INSERT INTO members BY NAME {fresh}", params)
            else:
                execute(cur, f"CREATE OR REPLACE TEMP TABLE members AS {fresh}", params)
            # keep only the pairs asked for (a file may hold a hash whose copies are known)
            cur.register("pairs", pairs.to_arrow())
            cur.execute("DELETE FROM members WHERE (h, part) NOT IN (SELECT h, part FROM pairs)")
            cur.execute("CREATE OR REPLACE TEMP TABLE members AS SELECT DISTINCT * FROM members")
        members_path.parent.mkdir(parents=True, exist_ok=True)
        target = str(members_path).replace("'", "''")
        cur.execute(f"COPY members TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
        cur.execute(f"CREATE OR REPLACE TEMP TABLE rows AS SELECT * EXCLUDE (part, k) "
                    f"REPLACE ('{st.DUPS_PART}' AS file) FROM ({dropped_sql()})")
        n = int(cur.execute("SELECT count(*) FROM rows").fetchall()[0][0])
        if n:
            cur.register("feats", _feats(lay).to_arrow())
            staging = root / f".staging-{uuid.uuid4().hex[:8]}"
            _roll_batch(cur, lay, "", {}, staging, {st.DUPS_PART: st.DUPS_PART}, negate=True, ids=False)
            st.install_staged(root, staging)
        cur.execute("DROP TABLE IF EXISTS rows")
        cur.execute("DROP TABLE IF EXISTS members")
        return n
    finally:
        cur.close()


__all__ = ["NUMERIC_TYPES", "dedupe", "roll", "rows_sql", "source_layout"]

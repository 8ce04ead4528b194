"""The DuckDB engine: rolls log files into parts of the store, and the duplicate correction.

Files are read in batches of about `BATCH_ROWS` rows (bounding the memory of the id
hashes); each table's SQL runs over the `rows` projection of the batch, reading only the
columns it needs. Results accumulate per file and are written as one Hive directory per
(table, part).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import polars as pl

from ..logs.source import NUMERIC_TYPES, LogSource, cursor, quote_ident, run
from . import store as st
from .tables import DERIVED, TABLES, Layout, coarser_sql, dropped_sql, layout

BATCH_ROWS = 4_000_000    # rows per pass: bounds the memory of the accumulators (ids are one row a request)
FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")


def source_layout(source: LogSource) -> Layout:
    return layout([(f.name, f.kind) for f in source.features], has_score=source.has("score"),
                  float_prediction=source.types.get("prediction", "") in FLOAT_TYPES
                  or source.types.get("prediction", "").startswith("DECIMAL"),
                  has_prediction=source.has("prediction"), has_ids=source.has("request_id"))


def rid_hash(rid: str) -> str:
    """60 bits of md5 as BIGINT; the Spark engine computes the same number."""
    return f"CAST(('0x' || substr(md5({rid}), 1, 15)) AS BIGINT)"


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
        f"{_finite(source.expr('prediction')) if 'fp' in lay.numeric else 'CAST(NULL AS DOUBLE)'} AS fp",
    ]
    for i, f in enumerate(source.features):
        cols.append(f"{_finite(f.expr) if f.kind == 'numeric' else f'CAST({f.expr} AS VARCHAR)'} AS f{i}")
    return (f"SELECT {', '.join(cols)} FROM {source.scan_sql} AS r "
            f"WHERE list_contains($subset, {fc}) AND {source.valid_predicate()}")


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


def _exec(cur: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> None:
    import re
    used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", sql))
    cur.execute(sql, {k: v for k, v in (params or {}).items() if k in used})


def roll(source: LogSource, con: duckdb.DuckDBPyConnection, entries: list[st.FileEntry],
         staging: Path, progress=None, batch_rows: int | None = None) -> None:
    """Roll `entries` into `staging/<table>/part=<id>/`;
    progress(done_rows, total_rows, done_files, total_files) after each batch."""
    lay = source_layout(source)
    statements = lay.statements()
    cur = cursor(con)
    try:
        cur.register("feats", pl.DataFrame(list(lay.feats), schema=["fi", "role", "feature"], orient="row").to_arrow())
        order = {f: i for i, f in enumerate(source.files)}
        entries = sorted(entries, key=lambda e: order[e.path])
        cur.register("parts", pl.DataFrame({"file": list(range(len(entries))),
                                            "part": [e.part for e in entries]},
                                           schema={"file": pl.Int64, "part": pl.String}).to_arrow())
        total, done = sum(e.rows for e in entries), 0
        created: set[str] = set()
        offset = 0
        files_done = 0
        for batch in _batches(entries, batch_rows):
            params = {"files": source.files, "subset": [e.path for e in batch], "offset": offset}
            offset += len(batch)
            # A CTE per statement, not a materialised table: each statement reads only the
            # columns it needs (measured 2.7x faster than projecting every column once).
            rows = f"WITH rows AS NOT MATERIALIZED ({rows_sql(source, lay, by_index=True)}) "
            for name, sql in statements.items():
                acc = _acc(name)
                if acc in created:
                    _exec(cur, f"INSERT INTO {acc} {rows}{sql}", params)
                else:
                    _exec(cur, f"CREATE OR REPLACE TEMP TABLE {acc} AS {rows}{sql}", params)
                    created.add(acc)
            done += sum(e.rows for e in batch)
            files_done += len(batch)
            if progress:
                progress(done, total, files_done, len(entries))
        for name, (finer, _) in DERIVED.items():
            if _acc(finer) in created:
                cur.execute(f"CREATE OR REPLACE TEMP TABLE {_acc(name)} AS {coarser_sql(name, _acc(finer))}")
                created.add(_acc(name))
        for name, table in TABLES.items():
            if _acc(name) in created:
                _write(cur, _acc(name), table, staging, "parts")
                cur.execute(f"DROP TABLE {_acc(name)}")
    finally:
        cur.close()


def _literal(path: Path) -> str:
    # Paths are ours (data_dir + a fixed layout); read_parquet in a CTE takes them as literals.
    return "'" + str(path).replace("'", "''") + "'"


def _acc(name: str) -> str:
    return "acc_" + name.replace("/", "_")


def _write(cur: duckdb.DuckDBPyConnection, acc: str, table, staging: Path, parts: str,
           negate: bool = False) -> None:
    cols = []
    for c in table.columns:
        if negate and c in table.negate:
            cols.append(f"-a.{quote_ident(c)} AS {quote_ident(c)}")
        elif negate and c in table.drop_on_correction:
            cols.append(f"CAST(NULL AS DOUBLE) AS {quote_ident(c)}")
        else:
            cols.append(f"a.{quote_ident(c)}")
    # ids are one row per request: sorting them was a third of a build; the duplicate check
    # hashes them anyway, so they are written in scan order.
    order = "" if table.name == "ids" else " ORDER BY p.part, " + ", ".join(quote_ident(k) for k in table.keys)
    out = staging / table.name
    out.mkdir(parents=True, exist_ok=True)
    # The path is ours (data_dir + a fixed layout); COPY takes no bound parameter for it.
    target = str(out).replace("'", "''")
    cur.execute(
        f"COPY (SELECT p.part, {', '.join(cols)} FROM {acc} a JOIN {parts} p USING (file){order}) "
        f"TO '{target}' "
        "(FORMAT parquet, PARTITION_BY (part), COMPRESSION zstd, OVERWRITE_OR_IGNORE)")


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
    ids = ("(SELECT * FROM read_parquet($ids, hive_partitioning=true) "
           "WHERE list_contains($parts, part))")
    params = {"ids": st.glob_of(root, "ids"), "parts": parts}
    if fresh is None:
        probe = "c AS (SELECT h FROM i GROUP BY h HAVING sum(n) > 1)"
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
                _exec(cur, f"INSERT INTO members BY NAME {fresh}", params)
            else:
                _exec(cur, f"CREATE OR REPLACE TEMP TABLE members AS {fresh}", params)
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
            cur.register("feats", pl.DataFrame(list(lay.feats), schema=["fi", "role", "feature"], orient="row").to_arrow())
            cur.register("dparts", pl.DataFrame({"file": [st.DUPS_PART], "part": [st.DUPS_PART]}).to_arrow())
            staging = root / f".staging-{uuid.uuid4().hex[:8]}"
            statements = lay.statements()
            statements.pop("ids", None)
            for name, sql in statements.items():
                cur.execute(f"CREATE OR REPLACE TEMP TABLE {_acc(name)} AS {sql}")
            for name, (finer, _) in DERIVED.items():
                cur.execute(f"CREATE OR REPLACE TEMP TABLE {_acc(name)} AS {coarser_sql(name, _acc(finer))}")
                statements[name] = ""
            for name in statements:
                _write(cur, _acc(name), TABLES[name], staging, "dparts", negate=True)
                cur.execute(f"DROP TABLE {_acc(name)}")
            st.install_staged(root, staging)
        cur.execute("DROP TABLE IF EXISTS rows")
        cur.execute("DROP TABLE IF EXISTS members")
        return n
    finally:
        cur.close()


__all__ = ["NUMERIC_TYPES", "dedupe", "roll", "rows_sql", "source_layout"]

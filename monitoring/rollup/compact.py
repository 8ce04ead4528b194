"""The compacted store readers read: a few sorted files per table, parts and correction merged.

Parts (`<table>/part=<id>/`) are what an update redoes file by file; reading them means one
file per log file and table, plus the duplicate correction to subtract, on every query. After
each update the parts of every table but `ids` are summed once (the coarser grains of
traffic and latency, which parts do not hold, from the summed finer table: tables.DERIVED) into

    compact-<id>/<table>.parquet      keys -> summed values, sorted by time (row groups prune)
    compact-<id>/all/<grain>.parquet  latency bins with the dimensions summed out
                                      (t, is_error, bin -> n): the unfiltered views
    compact-<id>/all/traffic-<grain>.parquet   requests the same way (t, is_error,
                                      error_type -> n)

The store is a short list of such segments (the manifest names them and their parts): a full
build writes one; an update adds one for the files it rolled (and rewrites the small
segment of the duplicate correction), and merges them all past MAX_SEGMENTS, so an update
of one new day sums that day only. Readers open a few files per table: a 30-day window of
hourly latency reads a few hundred thousand rows from one or two files, not thirty parts, and
a view with no model, version or endpoint filter reads the dimension-free table (the rows
the histogram has, not one per dimension value). Counts stay exact: the sums are the sums
the readers did before, done once.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import duckdb

from ..logs.source import cursor, quote_ident
from ..logs.sql import execute
from . import store as st
from .tables import DERIVED, GRAINS, LATENCY_GRAINS, TABLES, TRAFFIC_GRAINS, Table, coarser_sql

# dimension-free tables (table name -> the table they sum, and the keys they keep)
ALL_TABLES: dict[str, str] = {f"all/{g}": f"latency/{g}" for g in LATENCY_GRAINS} | {
    f"all/traffic-{g}": f"traffic/{g}" for g in TRAFFIC_GRAINS}
ALL_KEYS: dict[str, tuple[str, ...]] = {a: ("t", "is_error", "bin") if t.startswith("latency/")
                                        else ("t", "is_error", "error_type") for a, t in ALL_TABLES.items()}
ROW_GROUP = 122_880


def _agg(table: Table, col: str) -> str:
    q = quote_ident(col)
    if col == "min":
        return f"min({q}) AS {q}"
    if col == "max":
        return f"max({q}) AS {q}"
    return f"CAST(sum({q}) AS {'BIGINT' if col == 'n' else 'DOUBLE'}) AS {q}"


def _order(table: Table) -> str:
    first = table.keys[0]          # t or day: time first, so time filters prune row groups
    return ", ".join(quote_ident(k) for k in (first, *[k for k in table.keys if k != first]))


MAX_SEGMENTS = 6          # more than this after an update: every segment merged into one


def segment(con: duckdb.DuckDBPyConnection, root: Path, parts: list[str]) -> str | None:
    """Write one segment, compact-<id>/, summing the parts named; returns its folder name,
    or None when those parts hold nothing. The caller records it in the manifest."""
    name = f"compact-{uuid.uuid4().hex[:8]}"
    out = root / f".{name}"
    out.mkdir(parents=True)
    cur = cursor(con)
    wrote = False
    written: dict[str, Path] = {}   # traffic and latency grains written here (DERIVED sums them)
    try:
        for tname, table in TABLES.items():   # a finer grain comes before the coarser ones
            params = {"g": st.glob_of(root, tname), "parts": sorted(parts)}
            if tname in DERIVED:
                # from the coarsest grain written that divides it (hours from 15 minutes, days
                # from hours): the sums of a smaller file, read back, not held in memory
                src = _divisor(tname, written)
                if src is None:
                    continue
                params = {"src": str(written[src])}
                sql = coarser_sql(tname, "read_parquet($src)", GRAINS[_grain(tname)] // GRAINS[_grain(src)])
            elif tname == "ids" or not st.has_table(root, tname):
                continue
            else:
                keys = ", ".join(quote_ident(k) for k in table.keys)
                vals = ", ".join(_agg(table, v) for v in table.values)
                rows = ("SELECT * FROM read_parquet($g, hive_partitioning=true, union_by_name=true) "
                        "WHERE list_contains($parts, part)")
                sql = f"SELECT {keys}, {vals} FROM ({rows}) GROUP BY ALL HAVING sum(n) <> 0"
            execute(cur, f"CREATE OR REPLACE TEMP TABLE c AS {sql}", params)
            if int(cur.execute("SELECT count(*) FROM c").fetchall()[0][0]):
                written[tname] = out / f"{tname}.parquet"
                _copy(cur, f"SELECT * FROM c ORDER BY {_order(table)}", written[tname])
                wrote = True
                for allname in (a for a, t in ALL_TABLES.items() if t == tname):
                    keys = ", ".join(ALL_KEYS[allname])
                    _copy(cur, f"SELECT {keys}, CAST(sum(n) AS BIGINT) AS n FROM c "
                               f"GROUP BY ALL HAVING sum(n) <> 0 ORDER BY {keys}", out / f"{allname}.parquet")
            cur.execute("DROP TABLE c")
    except BaseException:   # an error, or interrupted at exit (monitoring.exits): nothing half-written
        shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        cur.close()
    if not wrote:
        shutil.rmtree(out, ignore_errors=True)
        return None
    out.rename(root / name)
    return name


def _grain(table: str) -> str:
    return table.partition("/")[2]


def _divisor(table: str, written: dict[str, Path]) -> str | None:
    """The coarsest table of `table`'s family in `written` whose grain divides its grain."""
    family, g = table.partition("/")[0], GRAINS[_grain(table)]
    fits = [t for t in written if t.partition("/")[0] == family and GRAINS[_grain(t)] < g
            and g % GRAINS[_grain(t)] == 0]
    return max(fits, key=lambda t: GRAINS[_grain(t)], default=None)


def update_segments(con: duckdb.DuckDBPyConnection, root: Path, old: list[st.Segment],
                    live: set[str], dups_changed: bool) -> list[st.Segment]:
    """The segments after an update: old segments whose parts are all still live are kept;
    the live parts no kept segment holds (new files, and the rest of a segment that lost a
    file) become one new segment; the duplicate correction is a segment of its own, rewritten
    when it changed. Over MAX_SEGMENTS, everything is merged into one. An update of one new
    day therefore sums that day's parts only."""
    kept = [s for s in old if s.parts != (st.DUPS_PART,) and set(s.parts) <= live]
    todo = live - {p for s in kept for p in s.parts}
    if len(kept) + bool(todo) + 1 > MAX_SEGMENTS:
        kept, todo = [], set(live)
    out = list(kept)
    if todo:
        name = segment(con, root, sorted(todo))
        if name:
            out.append(st.Segment(name, tuple(sorted(todo))))
    old_dups = [s for s in old if s.parts == (st.DUPS_PART,)]
    if old_dups and not dups_changed:
        out += old_dups
    elif any((st.table_dir(root, t) / f"part={st.DUPS_PART}").is_dir() for t in TABLES):
        name = segment(con, root, [st.DUPS_PART])
        if name:
            out.append(st.Segment(name, (st.DUPS_PART,)))
    return out


def _copy(cur: duckdb.DuckDBPyConnection, sql: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The path is ours (data_dir + a fixed layout); COPY takes no bound parameter for it.
    target = str(path).replace("'", "''")
    cur.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP})")


def remove_stale(root: Path, keep: set[str]) -> None:
    """Segment folders not in `keep` (older updates', or an interrupted one's)."""
    for d in root.glob("compact-*"):
        if d.name not in keep:
            shutil.rmtree(d, ignore_errors=True)
    for d in root.glob(".compact-*"):
        shutil.rmtree(d, ignore_errors=True)

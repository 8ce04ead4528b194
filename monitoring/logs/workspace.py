"""A workspace: the configuration, a DuckDB connection, the opened and checked log source,
and the facts about the whole log every page needs (duplicates, extent, health).

    ws = open_workspace(load_config())
    ws.source.query(ws.con, "SELECT count(*) AS n FROM logs")
    ws.extent.rows, ws.health.invalid_rows

The app keeps one per process (st.cache_resource); the CLI opens one per command. The
facts need full scans (the exact duplicate check reads every request id), so they are kept
in `data_dir/cache/`, keyed by the files' fingerprint (paths, sizes, modification times,
column mapping): later opens of unchanged logs read them back instead of scanning.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from ..config import Config
from ..query.filters import Extent, extent
from .health import Health, check_health, find_duplicates
from .source import LogSource, connect, cursor, open_source, run

# 3: extents computed on UTC-pinned cursors (earlier caches may hold a zone-shifted extent)
CACHE_VERSION = 3


@dataclass
class Workspace:
    config: Config
    con: duckdb.DuckDBPyConnection
    source: LogSource
    duplicates: int
    extent: Extent
    health: Health        # over the whole log


def open_workspace(config: Config, con: duckdb.DuckDBPyConnection | None = None,
                   logs: str | None = None) -> Workspace:
    """Open the logs of `config` (or `logs`); raises LogSourceError when none can be used."""
    con = con or connect(config)
    source = open_source(logs or config.logs, config, con)
    cache_dir = Path(config.data_dir) / "cache"
    facts = _load(source, con, cache_dir)
    if facts is None:
        n = find_duplicates(source, con)
        facts = (n, extent(source, con), check_health(source, con))
        _save(source, con, cache_dir, facts)
    n, ext, health = facts
    source.rollups = _covering_store(config, source, logs)
    return Workspace(config=config, con=con, source=source, duplicates=n, extent=ext, health=health)


def _covering_store(config: Config, source: LogSource, logs: str | None):
    """The rollup store (`python -m monitoring rollup build`) as it can answer for the files
    as they are now: whole when it covers every file, else its covered files' parts, the
    rest read raw (rollup.partial); None when it cannot help, and every figure comes from
    the raw logs (never a stale one)."""
    from ..rollup import partial, read

    try:
        store = read.open_store(config, logs or config.logs)
        return partial.cover(store, source) if store is not None else None
    except (read.NotCovered, OSError, ValueError):
        return None


def _paths(source: LogSource, cache_dir: Path) -> tuple[Path, Path]:
    return (cache_dir / f"facts-{source.fingerprint}.json", cache_dir / f"dups-{source.fingerprint}.parquet")


def _load(source: LogSource, con: duckdb.DuckDBPyConnection, cache_dir: Path):
    meta, table = _paths(source, cache_dir)
    try:
        info = json.loads(meta.read_text())
        if info.get("version") != CACHE_VERSION:
            return None
        n = int(info["duplicates"])
        if n:
            name = f"mw_dups_{source.fingerprint}"
            run(con, f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet($p)", {"p": str(table)})
            source.dedupe_table = name
        e = info["extent"]
        ext = Extent(rows=e["rows"],
                     first=datetime.fromisoformat(e["first"]) if e["first"] else None,
                     last=datetime.fromisoformat(e["last"]) if e["last"] else None,
                     model_names=tuple(e["model_names"]), model_versions=tuple(e["model_versions"]),
                     endpoints=tuple(e["endpoints"]),
                     version_spans=tuple((v, datetime.fromisoformat(a), datetime.fromisoformat(b))
                                         for v, a, b in e["version_spans"]))
        h = info["health"]
        # Bad files and warnings are found anew at every open; only counts are cached.
        health = Health(total_rows=h["total_rows"], valid_rows=h["valid_rows"], invalid=h["invalid"],
                        duplicates=h["duplicates"], bad_files=[(b.path, b.reason) for b in source.bad_files],
                        warnings=list(source.warnings))
        return n, ext, health
    except (OSError, ValueError, KeyError, TypeError, duckdb.Error):
        return None  # no usable cache: scan


def _save(source: LogSource, con: duckdb.DuckDBPyConnection, cache_dir: Path, facts) -> None:
    n, ext, health = facts
    meta, table = _paths(source, cache_dir)
    e = asdict(ext)
    e["first"] = ext.first.isoformat() if ext.first else None
    e["last"] = ext.last.isoformat() if ext.last else None
    e["version_spans"] = [[v, a.isoformat(), b.isoformat()] for v, a, b in ext.version_spans]
    info = {"version": CACHE_VERSION, "duplicates": n, "extent": e,
            "health": {"total_rows": health.total_rows, "valid_rows": health.valid_rows,
                       "invalid": health.invalid, "duplicates": health.duplicates}}
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        if n:
            tmp = table.with_suffix(".tmp")
            # COPY takes no bound parameters; the path is ours (data_dir + a hex fingerprint).
            cursor(con).execute(
                f"COPY {source.dedupe_table} TO '{str(tmp).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)")
            os.replace(tmp, table)
        tmp_meta = meta.with_suffix(".tmp")
        tmp_meta.write_text(json.dumps(info))
        os.replace(tmp_meta, meta)
    except (OSError, duckdb.Error):
        pass  # a read-only data folder only costs the scans next time

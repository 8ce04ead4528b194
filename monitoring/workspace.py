"""A workspace: the configuration, a DuckDB connection and the opened, checked log source.

    ws = open_workspace(load_config())
    ws.source.query(ws.con, "SELECT count(*) AS n FROM logs")

The app keeps one per process (st.cache_resource); the CLI opens one per command. The exact
duplicate-request check reads every request id once per set of files: its result is kept in
`data_dir/cache/`, keyed by the files' fingerprint (paths, sizes, modification times), so
later opens of unchanged logs skip it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .config import Config
from .health import find_duplicates
from .source import LogSource, connect, open_source, run


@dataclass
class Workspace:
    config: Config
    con: duckdb.DuckDBPyConnection
    source: LogSource
    duplicates: int


def open_workspace(config: Config, con: duckdb.DuckDBPyConnection | None = None,
                   logs: str | None = None) -> Workspace:
    """Open the logs of `config` (or `logs`); raises LogSourceError when none can be used."""
    con = con or connect(config)
    source = open_source(logs or config.logs, config, con)
    duplicates = _cached_duplicates(source, con, Path(config.data_dir) / "cache")
    return Workspace(config=config, con=con, source=source, duplicates=duplicates)


def _cached_duplicates(source: LogSource, con: duckdb.DuckDBPyConnection, cache_dir: Path) -> int:
    meta = cache_dir / f"dups-{source.fingerprint}.json"
    table = cache_dir / f"dups-{source.fingerprint}.parquet"
    try:
        info = json.loads(meta.read_text())
        n = int(info["duplicates"])
        if n:
            name = f"mw_dups_{source.fingerprint}"
            run(con, f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet($p)", {"p": str(table)})
            source.dedupe_table = name
        return n
    except (OSError, ValueError, KeyError, duckdb.Error):
        pass  # no usable cache: compute
    n = find_duplicates(source, con)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        if n:
            tmp = table.with_suffix(".tmp")
            con.cursor().execute(f"COPY {source.dedupe_table} TO '{_sql_path(tmp)}' (FORMAT parquet)")
            os.replace(tmp, table)
        meta.write_text(json.dumps({"duplicates": n, "files": len(source.files)}))
    except (OSError, duckdb.Error):
        pass  # a read-only data folder only costs the check next time
    return n


def _sql_path(p: Path) -> str:
    # COPY takes no bound parameters; the path is ours (data_dir + a hex fingerprint).
    return str(p).replace("'", "''")

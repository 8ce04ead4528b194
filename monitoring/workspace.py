"""A workspace: the configuration, a DuckDB connection and the opened, checked log source.

    ws = open_workspace(load_config())
    ws.source.query(ws.con, "SELECT count(*) AS n FROM logs")

The app keeps one per process (st.cache_resource); the CLI opens one per command.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from .config import Config
from .health import find_duplicates
from .source import LogSource, connect, open_source


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
    duplicates = find_duplicates(source, con)
    return Workspace(config=config, con=con, source=source, duplicates=duplicates)

"""DuckDB sessions and SQL text for every query over the logs: one connection per process
pinned to UTC, a cursor of its own per query (pinned again: a cursor does not inherit the
session's zone), values always bound as parameters, names quoted from schemas only."""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from .. import exits, priority
from .discover import LogSourceError

if TYPE_CHECKING:
    from ..config import Config

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def run(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None,
        *, tables: dict[str, pl.DataFrame] | None = None) -> pl.DataFrame:
    """Execute on a cursor of its own (connections are not safe to share across threads)."""
    values = bound(sql, params)
    cur = cursor(con)
    try:
        for name, frame in (tables or {}).items():
            cur.register(name, frame.to_arrow())
        table = cur.sql(sql, params=values).to_arrow_table()
    finally:
        cur.close()
    return pl.from_arrow(table) if table.num_columns else pl.DataFrame()


def bound(sql: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The values of the `$name` parameters `sql` uses (DuckDB refuses unused ones), each
    bindable; a parameter the SQL uses but `params` lacks is a KeyError naming it."""
    used = set(_PARAM.findall(sql))
    values = {k: _bindable(v) for k, v in (params or {}).items() if k in used}
    missing = used - values.keys()
    if missing:
        raise KeyError(f"unbound SQL parameters: {sorted(missing)}")
    return values


def execute(cur: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> None:
    """`cur.execute` with only the parameters `sql` uses, bound (see `bound`)."""
    cur.execute(sql, bound(sql, params))


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor pinned to UTC. A DuckDB cursor does not inherit the parent's session
    `TimeZone` (it starts in the machine's zone), which would shift naive timestamps.
    A background job's query first lets the pages go first (`monitoring.priority`)."""
    priority.checkpoint()
    cur = exits.uses(con.cursor())   # a background thread's query is interrupted at exit
    cur.execute("SET TimeZone = 'UTC'")
    return cur


def _bindable(value: Any) -> Any:
    # Timestamps are bound as naive UTC: binding tz-aware values needs pytz in DuckDB.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_str(s: str) -> str:
    """A SQL string literal for a name taken from a file's own schema (never a widget)."""
    return "'" + s.replace("'", "''") + "'"


def connect(config: Config | None = None) -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process: UTC, no progress bar, bounded memory (spills)."""
    con = duckdb.connect()
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    from ..config import DUCKDB_MEMORY

    limit = (config.duckdb_memory_limit if config else DUCKDB_MEMORY) or DUCKDB_MEMORY
    # SET takes no bound parameters; the value is checked against a strict pattern first.
    con.execute(f"SET memory_limit = '{_safe_setting(limit)}'")
    threads = config.duckdb_threads if config else 0
    if threads and int(threads) > 0:
        con.execute(f"SET threads = {int(threads)}")
    if config is not None and config.data_dir:
        # Spills under the data folder, not DuckDB's default `.tmp/` in whatever folder the
        # process started in; one folder per process, which DuckDB removes when it closes.
        # DuckDB creates the last folder only; a data folder it cannot write keeps the default.
        spill = Path(config.data_dir).resolve() / "spill" / str(os.getpid())
        try:
            spill.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return con
        con.execute(f"SET temp_directory = {sql_str(str(spill))}")
    return con


def remove_dead_spill(data_dir: str | os.PathLike | None) -> list[Path]:
    """Remove `data_dir/spill/<pid>` folders whose process is gone (DuckDB removes its own
    on close, but not when the process is killed). Folders of live processes, names that
    are not a pid and this process's folder are left alone. Returns what was removed."""
    if not data_dir:
        return []
    root = Path(data_dir).resolve() / "spill"
    try:
        entries = list(root.iterdir())
    except OSError:   # no spill folder yet, or none we may read
        return []
    removed = []
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == os.getpid() or entry.is_symlink() or not entry.is_dir():
            continue
        if _alive(int(entry.name)):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists (one of another user's counts as alive)."""
    if pid <= 0:
        return True   # not a process of ours to judge: keep its folder
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _safe_setting(value: str) -> str:
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", value.strip(), re.IGNORECASE):
        raise LogSourceError(f"duckdb_memory_limit must look like '1GB', got {value!r}")
    return value.strip()

"""A workspace: the configuration, a DuckDB connection, the opened and checked log source,
and the facts about the whole log every page needs (duplicates, extent, health).

    ws = open_workspace(load_config())
    ws.source.query(ws.con, "SELECT count(*) AS n FROM logs")
    ws.extent.rows, ws.health.invalid_rows

The app keeps one per process (st.cache_resource); the CLI opens one per command. The
facts need full scans: one grouped scan for the health counts and the extent, one for the
exact duplicate check (`monitoring.logs.facts`). They are kept in `data_dir/cache/`, keyed
by the files' fingerprint (paths, sizes, modification times, column mapping): later opens
of unchanged logs read them back instead of scanning. The grouped facts are also kept per
file (`open-<key>.*`, one set per logs path and schema), so logs where files were added or
changed scan those files only; the duplicate check then groups the new files' ids and probes
the old files' ids for them, so duplicates across files stay exact.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from ..config import Config
from ..query.filters import Extent
from . import facts as ff
from .dupcheck import DuplicateCheck
from .health import Health
from .source import LogSource, connect, cursor, open_source, run
from .sql import remove_dead_spill

# 3: extents computed on UTC-pinned cursors (earlier caches may hold a zone-shifted extent)
# 4: dedupe tables carry each copy's group (file, row, time, model, version, endpoint)
CACHE_VERSION = 4


# Logs of at least this many rows (counted from the Parquet footers) may finish the exact
# duplicate check in the background when the caller allows it (the app); below, the check
# takes a fraction of a second and every open is exact at once.
BACKGROUND_ROWS = 2_000_000


@dataclass
class Workspace:
    config: Config
    con: duckdb.DuckDBPyConnection
    source: LogSource
    duplicates: int
    extent: Extent
    health: Health        # over the whole log
    checking: DuplicateCheck | None = None   # the duplicate check, while it runs in the background
    settings: str = field(init=False, repr=False, default="")   # digest of `config` (fingerprint)

    def __post_init__(self) -> None:
        # Not the database URL: what the database holds (reviewers' labels) is read when a
        # figure is computed and refreshed with the caches' TTL, whatever its address.
        self.settings = hashlib.sha256(repr(replace(self.config, db_url=None)).encode()).hexdigest()[:12]

    @property
    def exact(self) -> bool:
        """False while the duplicate check runs (or after it failed): a duplicated request may
        then be counted more than once in every figure."""
        return self.checking is None or self.checking.exact

    @property
    def fingerprint(self) -> str:
        """The files' fingerprint and the settings' (`config`: an edited SLO or alert rule is a
        new key), marked while figures are not exact (for cache keys)."""
        return f"{self.source.fingerprint}+{self.settings}" + ("" if self.exact else "~unchecked")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the duplicate check is done; True when the figures are exact."""
        if self.checking is not None:
            self.checking.join(timeout)
        return self.exact


def open_workspace(config: Config, con: duckdb.DuckDBPyConnection | None = None,
                   logs: str | None = None, *, background: bool = False) -> Workspace:
    """Open the logs of `config` (or `logs`); raises LogSourceError when none can be used.

    With background=True (the app) new logs of BACKGROUND_ROWS rows or more open after the
    grouped scan alone; the exact duplicate check runs in a thread (`ws.checking`) and
    updates the workspace when done. Until then `ws.exact` is False and `ws.fingerprint`
    says so. Without it every figure is exact when this returns."""
    remove_dead_spill(config.data_dir)   # spill folders of killed processes (DuckDB removes its own on close)
    con = con or connect(config)
    source = open_source(logs or config.logs, config, con)
    source.rollups = _covering_store(config, source, logs)
    cache_dir = Path(config.data_dir) / "cache"
    facts = _load(source, con, cache_dir)
    if facts is not None:
        n, ext, health = facts
        return Workspace(config=config, con=con, source=source, duplicates=n, extent=ext, health=health)
    stats, grouped, old = _grouped(source, con, cache_dir)
    whole = source.rollups if source.rollups is not None and source.rollups.complete else None
    if (background and sum(source.file_rows.values()) >= BACKGROUND_ROWS and source.has("request_id")
            and whole is None):
        ext, health = ff.summarise(source, con, grouped, 0)
        ws = Workspace(config=config, con=con, source=source, duplicates=0, extent=ext, health=health)
        ws.checking = DuplicateCheck(ws, lambda: _finish(source, con, cache_dir, stats, grouped, old))
        return ws
    n, ext, health = _finish(source, con, cache_dir, stats, grouped, old)
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


def _grouped(source: LogSource, con: duckdb.DuckDBPyConnection, cache_dir: Path):
    """The grouped facts of every file: those of the last open for files unchanged since, one
    grouped scan of the others. Returns (file stats now, grouped facts, the last open's state)."""
    stats = {f: _stat(f) for f in source.files}
    old = _load_per_file(source, cache_dir)
    same = [f for f in source.files if old and old[0].get(f) == stats[f]]
    new = [f for f in source.files if f not in set(same)]
    grouped = ff.file_facts(source, con, new)
    if same:
        grouped = pl.concat([old[1].filter(pl.col("file").is_in(same)), grouped])
    return stats, grouped, (old if same else None)


def _finish(source: LogSource, con: duckdb.DuckDBPyConnection, cache_dir: Path, stats, grouped, old):
    """The exact duplicate check, then the corrected extent and health; saved in the caches."""
    # A store that covers every file as it is ranks the copies itself; a partial one cannot
    # (an uncovered file may repeat a covered id), and the check reads the ids.
    store = source.rollups
    found = ff.duplicates_from_store(source, con, store) if store is not None and store.complete else None
    if found is not None:       # a covering rollup store already ranked the copies
        n, cands = found
    elif old is not None:
        new = [f for f in source.files if old[0].get(f) != stats[f]]
        cands = ff.candidate_hashes(source, con, new=new, known=old[2])
    else:
        cands = ff.candidate_hashes(source, con)
    if found is None:
        n = ff.confirm_duplicates(source, con, cands)
    ext, health = ff.summarise(source, con, grouped, n)
    _save_per_file(source, cache_dir, stats, grouped, cands)
    _save(source, con, cache_dir, (n, ext, health))
    return n, ext, health


def _stat(f: str) -> list[int]:
    st = os.stat(f)
    return [st.st_size, st.st_mtime_ns]


def _per_file_key(source: LogSource, cache_dir: Path) -> Path:
    schema = repr((source.path, sorted(source.columns.items()), sorted(source.types.items()),
                   sorted(source.exprs.items()), source.timestamp_unit, source.file_col, CACHE_VERSION))
    return cache_dir / f"open-{hashlib.sha256(schema.encode()).hexdigest()[:16]}"


def _load_per_file(source: LogSource, cache_dir: Path):
    """(file -> [size, mtime_ns], grouped facts, candidate hashes) of the last open, or None."""
    base = _per_file_key(source, cache_dir)
    try:
        info = json.loads(base.with_suffix(".json").read_text())
        token = str(info["token"])
        grouped = pl.read_parquet(f"{base}-{token}-facts.parquet").cast(ff.FACT_SCHEMA)
        cands = pl.read_parquet(f"{base}-{token}-hashes.parquet")["h"].to_list()
        return info["files"], grouped, cands
    except (OSError, ValueError, KeyError, TypeError, pl.exceptions.PolarsError):
        return None


def _save_per_file(source: LogSource, cache_dir: Path, stats, grouped: pl.DataFrame, cands: list[int]) -> None:
    """Tables under a new token first, then the file list naming it (atomic), then the old
    tables go: a reader never pairs a file list with tables it does not name."""
    base = _per_file_key(source, cache_dir)
    token = os.urandom(6).hex()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        grouped.write_parquet(f"{base}-{token}-facts.parquet")
        pl.DataFrame({"h": cands}, schema={"h": pl.UInt64}).write_parquet(f"{base}-{token}-hashes.parquet")
        tmp = base.with_suffix(".tmp")
        tmp.write_text(json.dumps({"token": token, "files": stats}))
        os.replace(tmp, base.with_suffix(".json"))
        for old in cache_dir.glob(f"{base.name}-*.parquet"):
            if token not in old.name:
                old.unlink(missing_ok=True)
    except (OSError, pl.exceptions.PolarsError):
        pass  # a read-only data folder only costs the scans next time


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

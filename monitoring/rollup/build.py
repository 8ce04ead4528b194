"""Build, update and describe a rollup store (the engine does the scanning).

    result = update(config)                 # roll new and changed files, drop removed ones
    result = update(config, full=True)      # rebuild every part
    info = status(config)                   # covered, stale, new and removed files, size

An update is file by file: a file whose (path, size, mtime) is in the manifest is not read
again; the duplicate correction is then recomputed from the per-file request-id hashes.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..config import Config
from ..logs.source import LogSource, connect, open_source
from . import compact
from . import store as st

ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class BuildResult:
    root: Path
    engine: str
    rolled: int            # files rolled (new or changed)
    removed: int           # parts deleted (file removed or changed)
    kept: int              # files whose part was reused
    rows: int              # rows of the files rolled (Parquet metadata)
    duplicates: int        # extra copies of duplicated ids, subtracted
    seconds: float
    rebuilt: bool


def update(config: Config, logs: str | None = None, *, engine: str = "duckdb", full: bool = False,
           con: duckdb.DuckDBPyConnection | None = None, source: LogSource | None = None,
           spark=None, progress: Callable[..., None] | None = None,
           batch_rows: int | None = None) -> BuildResult:
    """Bring the store of `logs` (default config.logs) up to date with the files as they are.
    progress(done_rows, total_rows, done_files, total_files) after each pass (DuckDB);
    batch_rows: rows per pass (default duck.BATCH_ROWS)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (choose {', '.join(ENGINES)})")
    t0 = time.perf_counter()
    logs = logs or config.logs
    con = con or connect(config)
    source = source or open_source(logs, config, con)
    root = st.store_root(config, logs)
    root.mkdir(parents=True, exist_ok=True)
    old = None if full else st.read_manifest(root)
    p = st.plan(source, old)
    if full:
        # nothing of a previous store is trusted; start from an empty folder
        for child in root.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    _clean_orphans(root, old)
    if p.rebuild:
        (root / "dups" / "members.parquet").unlink(missing_ok=True)
    staging = root / f".staging-{uuid.uuid4().hex[:8]}"
    if p.roll:
        if engine == "spark":
            from . import spark as spark_engine
            spark_engine.roll(source, list(p.roll), staging, spark=spark)
        else:
            from . import duck
            duck.roll(source, con, list(p.roll), staging, progress=progress, batch_rows=batch_rows)
    st.install_staged(root, staging)
    # Parts of changed files: the new part has another id, the old one goes.
    st.remove_parts(root, p.drop)
    entries = {e.path: e for e in (*p.keep, *p.roll)}
    live = {e.part: e for e in entries.values()}
    if p.changed or old is None:
        from . import duck
        fresh = None if old is None or p.rebuild else {e.part for e in p.roll}
        dups = duck.dedupe(source, con, root, live, fresh)
    else:
        dups = old.duplicates
    # The segments readers read: the files just rolled become one more (compact.py).
    old_segs = [g for g in (old.segments if old is not None else []) if (root / g.name).is_dir()]
    if old is not None and not p.changed and len(old_segs) == len(old.segments):
        segments = old_segs
    else:
        segments = compact.update_segments(con, root, old_segs if old is not None and not p.rebuild else [],
                                           set(live), dups_changed=True)
    manifest = st.Manifest(logs=logs, schema=st.schema_hash(source), engine=engine, files=entries,
                           duplicates=dups, features=[(f.name, f.kind) for f in source.features],
                           segments=segments)
    st.write_manifest(root, manifest)
    compact.remove_stale(root, {g.name for g in segments})
    return BuildResult(root=root, engine=engine, rolled=len(p.roll), removed=len(p.drop),
                       kept=len(p.keep), rows=sum(e.rows for e in p.roll), duplicates=dups,
                       seconds=time.perf_counter() - t0, rebuilt=p.rebuild)


def build(config: Config, logs: str | None = None, **kw) -> BuildResult:
    """A full rebuild: every file rolled again."""
    return update(config, logs, full=True, **kw)


def _clean_orphans(root: Path, old: st.Manifest | None) -> None:
    """Part directories no manifest names (an update interrupted before its manifest)."""
    for d in root.glob(".staging-*"):
        shutil.rmtree(d, ignore_errors=True)
    known = {e.part for e in old.files.values()} if old else set()
    known.add(st.DUPS_PART)
    for table in st.TABLES:
        tdir = st.table_dir(root, table)
        if tdir.is_dir():
            for d in tdir.iterdir():
                if d.name.startswith("part=") and d.name[5:] not in known:
                    shutil.rmtree(d, ignore_errors=True)


@dataclass(frozen=True)
class Status:
    root: Path
    exists: bool
    engine: str | None
    built_at: str | None
    covered: tuple[str, ...]     # files whose part matches the file as it is
    stale: tuple[str, ...]       # files changed since their part was rolled
    new: tuple[str, ...]         # files with no part
    removed: tuple[str, ...]     # parts whose file is gone
    rows: int                    # rows of the covered files
    duplicates: int
    size_bytes: int
    schema_changed: bool

    @property
    def up_to_date(self) -> bool:
        return self.exists and not (self.stale or self.new or self.removed or self.schema_changed)


def status(config: Config, logs: str | None = None, *, con: duckdb.DuckDBPyConnection | None = None,
           source: LogSource | None = None) -> Status:
    logs = logs or config.logs
    con = con or connect(config)
    source = source or open_source(logs, config, con)
    root = st.store_root(config, logs)
    m = st.read_manifest(root)
    if m is None:
        return Status(root, False, None, None, (), (), tuple(source.files), (), 0, 0, 0, False)
    covered, stale, new = [], [], []
    for f in source.files:
        e = st.FileEntry.of(f)
        prev = m.files.get(f)
        if prev is None:
            new.append(f)
        elif prev.part == e.part:
            covered.append(f)
        else:
            stale.append(f)
    removed = tuple(sorted(set(m.files) - set(source.files)))
    return Status(root, True, m.engine, m.built_at, tuple(covered), tuple(stale), tuple(new), removed,
                  rows=sum(m.files[f].rows for f in covered), duplicates=m.duplicates,
                  size_bytes=st.size_on_disk(root), schema_changed=m.schema != st.schema_hash(source))

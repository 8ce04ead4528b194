"""Where a rollup store lives, its manifest, and what an update has to redo.

    data_dir/rollups/<key>/
        manifest.json                 one entry per log file: path, size, mtime, part, rows
        <table>/part=<part>/*.parquet one directory per log file and table (tables.PART_TABLES)
        <table>/part=_dups/*.parquet  the duplicate correction: negative counts of the extra
                                      copies of duplicated request ids (across all files)
        dups/members.parquet          every copy of every duplicated id (to redo the
                                      correction without rescanning unchanged files)
        compact-<id>/<table>.parquet  segments: every table but ids, some parts (or the
                                      correction) summed, sorted by time: what readers
                                      read (compact.py)

`key` hashes the resolved logs path and the column mapping, so a store follows its logs
through updates. A part id hashes (path, size, mtime): a changed file gets a new part and
the old one is deleted once the new manifest is in place. The `schema` hash covers the
canonical types and the feature list: when it changes, every part is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import Config
from ..logs.source import LogSource
from .tables import TABLES

MANIFEST_VERSION = 6   # 3: the segments readers read (compact.py); 4: is_error in outcomes and scores,
                       # the prediction and 1 - score's bin in scores (quality without a raw pass);
                       # 5: latency bins by 5 minutes too (the alert engine's grid);
                       # 6: parts hold no coarser grains (tables.DERIVED: segments only)
DUPS_PART = "_dups"


def store_key(logs: str, config: Config) -> str:
    h = hashlib.sha256()
    h.update(os.path.abspath(logs).encode())
    h.update(repr(sorted(config.columns.items())).encode())
    h.update(repr(tuple(config.features)).encode())
    return h.hexdigest()[:16]


def store_root(config: Config, logs: str | None = None) -> Path:
    logs = logs or config.logs
    return Path(config.data_dir) / "rollups" / store_key(logs, config)


def part_id(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(f"{path}\0{size}\0{mtime_ns}".encode()).hexdigest()[:16]


def schema_hash(source: LogSource) -> str:
    facts = (sorted(source.columns.items()), sorted(source.types.items()),
             [(f.name, f.kind, f.dtype) for f in source.features])
    return hashlib.sha256(repr(facts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    mtime_ns: int
    part: str
    rows: int = 0          # rows in the file (all rows, as Parquet metadata says)

    @staticmethod
    def of(path: str, rows: int = 0) -> FileEntry:
        st = os.stat(path)
        return FileEntry(path, st.st_size, st.st_mtime_ns, part_id(path, st.st_size, st.st_mtime_ns), rows)


@dataclass(frozen=True)
class Segment:
    """A compact-<id>/ folder (compact.py) and the parts it sums (("_dups",): the correction)."""
    name: str
    parts: tuple[str, ...]


@dataclass
class Manifest:
    logs: str
    schema: str
    engine: str
    files: dict[str, FileEntry] = field(default_factory=dict)
    built_at: str = ""
    duplicates: int = 0    # extra copies dropped by the correction
    features: list[tuple[str, str]] = field(default_factory=list)   # (name, kind)
    segments: list[Segment] = field(default_factory=list)   # what readers read (compact.py)
    version: int = MANIFEST_VERSION

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "logs": self.logs, "schema": self.schema,
                "engine": self.engine, "built_at": self.built_at, "duplicates": self.duplicates,
                "features": [list(f) for f in self.features], "segments": [{"name": g.name, "parts": list(g.parts)} for g in self.segments],
                "files": [vars(e) for e in sorted(self.files.values(), key=lambda e: e.path)]}

    @staticmethod
    def from_json(d: dict[str, Any]) -> Manifest:
        files = {e["path"]: FileEntry(**e) for e in d["files"]}
        return Manifest(logs=d["logs"], schema=d["schema"], engine=d["engine"], files=files,
                        built_at=d.get("built_at", ""), duplicates=int(d.get("duplicates", 0)),
                        features=[tuple(f) for f in d.get("features", [])], segments=[Segment(g["name"], tuple(g["parts"])) for g in d.get("segments", [])],
                        version=d["version"])


def read_manifest(root: Path) -> Manifest | None:
    """The store's manifest, or None when there is no usable store at `root`."""
    try:
        d = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if d.get("version") != MANIFEST_VERSION:
        return None
    try:
        return Manifest.from_json(d)
    except (KeyError, TypeError):
        return None


def write_manifest(root: Path, manifest: Manifest) -> None:
    manifest.built_at = datetime.now(UTC).isoformat(timespec="seconds")
    tmp = root / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest.to_json(), indent=1))
    os.replace(tmp, root / "manifest.json")


@dataclass(frozen=True)
class Plan:
    """What an update must do: files to roll (new or changed), parts to delete, parts kept."""

    roll: tuple[FileEntry, ...]
    drop: tuple[str, ...]            # part ids no longer backed by a file as it is now
    keep: tuple[FileEntry, ...]
    rebuild: bool                    # the schema changed (or no store): every file is rolled

    @property
    def changed(self) -> bool:
        return bool(self.roll or self.drop)


def plan(source: LogSource, old: Manifest | None) -> Plan:
    now = {f: FileEntry.of(f, source.file_rows.get(f, 0)) for f in source.files}
    if old is None or old.schema != schema_hash(source):
        return Plan(tuple(now.values()), tuple(e.part for e in (old.files.values() if old else ())),
                    (), True)
    roll, keep = [], []
    for path, entry in now.items():
        prev = old.files.get(path)
        (keep if prev is not None and prev.part == entry.part else roll).append(entry)
    live = {e.part for e in now.values()}
    drop = tuple(e.part for e in old.files.values() if e.part not in live)
    return Plan(tuple(roll), drop, tuple(keep), False)


def table_dir(root: Path, table: str) -> Path:
    return root / table


def part_dirs(root: Path, part: str) -> list[Path]:
    return [table_dir(root, t) / f"part={part}" for t in TABLES]


def remove_parts(root: Path, parts: list[str] | tuple[str, ...]) -> None:
    for p in parts:
        for d in part_dirs(root, p):
            shutil.rmtree(d, ignore_errors=True)


def install_staged(root: Path, staging: Path) -> None:
    """Move every staged <table>/part=<id> directory into the store (replacing it)."""
    for table in TABLES:
        src = staging / table
        if not src.is_dir():
            continue
        dst = table_dir(root, table)
        dst.mkdir(parents=True, exist_ok=True)
        for d in src.iterdir():
            if d.is_dir() and d.name.startswith("part="):
                target = dst / d.name
                if target.exists():
                    shutil.rmtree(target)
                os.replace(d, target)
    shutil.rmtree(staging, ignore_errors=True)


def glob_of(root: Path, table: str) -> str:
    return str(table_dir(root, table) / "*" / "*.parquet")


def has_table(root: Path, table: str) -> bool:
    d = table_dir(root, table)
    return d.is_dir() and any(d.glob("*/*.parquet"))


def size_on_disk(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())

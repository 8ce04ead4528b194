"""Finding log files and reading what their Parquet footers say, before any query runs.

    files = resolve_paths("logs/")            # sorted, each real file once (symlink loops too)
    schema, rows, error = inspect("logs/a.parquet")
    flatten(schema)                           # every primitive leaf of every column, dotted

Nothing here runs SQL: it is the part of opening logs that only reads file metadata.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class LogSourceError(Exception):
    """The logs cannot be used at all; the message is one line a person can act on."""


def resolve_paths(path: str) -> list[str]:
    """Expand a file, directory (recursive, following symlinks once) or glob into sorted
    Parquet file paths; a file reached twice (through a link) is read once, and files a
    compacted file replaces (`python -m monitoring compact`) are left out."""
    if not path:
        raise LogSourceError("no log path given (set MONITORING_LOGS or pass --logs)")
    p = Path(path)
    if any(ch in path for ch in "*?["):
        files = [f for f in glob.glob(path, recursive=True) if os.path.isfile(f)]
        if not files:
            raise LogSourceError(f"no files match {path}")
    elif p.is_dir():
        files = [f for f in _walk(p) if _looks_like_parquet_name(Path(f))]
        if not files:
            raise LogSourceError(f"no Parquet files under {path}")
    elif p.is_file():
        files = [str(p)]
    else:
        raise LogSourceError(f"no such file or directory: {path}")
    seen: set[str] = set()
    out = []
    for f in sorted(files):
        real = os.path.realpath(f)
        if real not in seen:
            seen.add(real)
            out.append(f)
    # A compacted day file replaces the small files its footer names: never both, never neither.
    from ..logger.compaction import drop_superseded

    return drop_superseded(out)


def _walk(root: Path) -> Iterator[str]:
    # os.walk follows directory links; remembering real directories stops a link loop.
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames.sort()
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.isfile(full):
                yield full


def _looks_like_parquet_name(f: Path) -> bool:
    # Hidden files, temporary files and side-car files (READMEs, _SUCCESS markers) are not logs.
    name = f.name
    if name.startswith((".", "_")) or name.lower().endswith((".md", ".txt", ".json", ".crc", ".tmp")):
        return False
    return True


def inspect(path: str) -> tuple[pa.Schema | None, int, str | None]:
    """(Arrow schema, row count, None) or (None, 0, reason) from the file's footer."""
    try:
        meta = pq.ParquetFile(path)
        return meta.schema_arrow, meta.metadata.num_rows, None
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "magic bytes" in msg or "Parquet file size is" in msg or "footer" in msg.lower():
            return None, 0, "not a Parquet file, or truncated (no valid footer)"
        return None, 0, f"unreadable Parquet: {msg[:200]}"


def fingerprint(files: list[str], salt: str) -> str:
    """Changes when any file is added, removed, resized or touched, or the mapping changes."""
    h = hashlib.sha256()
    for f in files:
        st = os.stat(f)
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    h.update(salt.encode())
    return h.hexdigest()[:16]


def hive_keys(file: str) -> dict[str, str]:
    """key -> value of the `key=value` directories above a file."""
    out = {}
    for part in Path(file).parent.parts:
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


# -- columns as Arrow sees them ----------------------------------------------------------------

@dataclass(frozen=True)
class Leaf:
    """One primitive value inside a column: `path` from the top-level column down."""

    path: tuple[str, ...]
    type: pa.DataType

    @property
    def name(self) -> str:
        return ".".join(self.path)


def flatten(field: pa.Field) -> tuple[list[Leaf], list[tuple[str, str]]]:
    """Primitive leaves of a column (structs expanded at any depth) and the parts that are
    not features, as (dotted name, reason)."""
    leaves: list[Leaf] = []
    ignored: list[tuple[str, str]] = []

    def walk(path: tuple[str, ...], t: pa.DataType) -> None:
        if pa.types.is_struct(t):
            if t.num_fields == 0:
                ignored.append((".".join(path), "struct with no fields"))
            for i in range(t.num_fields):
                walk((*path, t.field(i).name), t.field(i).type)
        elif kind(t) == "other":
            ignored.append((".".join(path), f"type {t} is not a feature type (numbers, strings, "
                                             "booleans and dictionaries are)"))
        else:
            leaves.append(Leaf(path, t))

    walk((field.name,), field.type)
    return leaves, ignored


def kind(t: pa.DataType) -> str:
    """'numeric', 'categorical', 'time' or 'other' for an Arrow type."""
    if pa.types.is_dictionary(t):
        return "categorical"
    if pa.types.is_boolean(t):
        return "categorical"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "categorical"
    if pa.types.is_null(t):
        return "null"
    return "other"

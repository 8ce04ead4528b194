"""Compaction: the many small files of a past day merged into one, atomically for readers.

    python -m monitoring compact --logs logs/ --older-than 1d

For every `date=YYYY-MM-DD` folder whose day ended at least `older_than` ago and holds two or
more log files, under an exclusive lock on the folder:

1. files already replaced by a compacted file (left by a run that stopped early) are removed;
2. the others are merged, sorted by timestamp, in row groups of `row_group_size` rows, into a
   hidden temporary file that is fsynced; its footer lists the names of the files it
   replaces (`modelwatch.supersedes`), and its row count is checked against theirs;
3. it is renamed to `compacted-<day>-<host>-<pid>-<random>.parquet` (the commit point);
4. the replaced files are removed (with a grace period: kept, hidden, until a later run).

The discovery rule that makes this atomic for readers is `drop_superseded(files)`: a file
named in the footer of a compacted file in its own folder is not a log any more. Readers
applying it see the small files up to step 3 and the compacted file from step 3 on, never
both and never neither, whatever step a crash interrupts. (A reader without the rule sees
both between steps 3 and 4; the source then reports the copies as duplicate requests and
counts them once.) Files that arrive in the folder during a run, and unreadable files, are
not listed and stay as they are. Hidden temporary files of writers that crashed are removed
once they are older than `older_than` (and at least an hour).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .files import fsync_dir

COMPACTED_PREFIX = "compacted-"
SUPERSEDES = b"modelwatch.supersedes"
_DAY_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


# -- the discovery rule readers apply -------------------------------------------------------

def _supersedes(path: str) -> list[str]:
    try:
        meta = pq.read_schema(path).metadata or {}
        names = json.loads(meta.get(SUPERSEDES, b"[]"))
        return [n for n in names if isinstance(n, str) and "/" not in n and n not in ("", ".", "..")]
    except (OSError, ValueError, pa.ArrowException):
        return []   # an unreadable compacted file replaces nothing (the source reports it)


def _superseding(files: Iterable[str]) -> dict[str, list[str]]:
    """path -> the compacted files (of its folder, among `files`) that replace it."""
    files = list(files)
    present = set(files)
    out: dict[str, list[str]] = {}
    for f in files:
        if os.path.basename(f).startswith(COMPACTED_PREFIX):
            folder = os.path.dirname(f)
            for p in (os.path.join(folder, n) for n in _supersedes(f)):
                if p in present:
                    out.setdefault(p, []).append(f)
    return out


def superseded(files: Iterable[str]) -> set[str]:
    """The paths among `files` that a compacted file of the same folder (also in `files`) replaces."""
    return set(_superseding(files))


def drop_superseded(files: list[str]) -> list[str]:
    """`files` without those a compacted file replaces: the list readers should scan."""
    gone = superseded(files)
    return [f for f in files if f not in gone] if gone else files


# -- compaction ---------------------------------------------------------------------------

@dataclass
class DayResult:
    day: str
    folder: str
    action: str                  # "compacted" | "skipped"
    reason: str = ""
    files: int = 0               # files merged
    rows: int = 0
    output: str | None = None
    removed: int = 0             # files removed (merged or left over from an earlier run)
    unreadable: tuple[str, ...] = ()


def parse_duration(text: str, option: str = "--older-than") -> timedelta:
    """'1d', '12h', '30m', '45s', '2w' or a number of seconds -> timedelta."""
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"{option} must look like 1d, 12h, 30m or 2w, got {text!r}")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2) or "s"])


def _log_files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.iterdir()
                  if p.is_file() and p.suffix == ".parquet" and not p.name.startswith((".", "_")))


def day_folders(root: Path) -> list[tuple[date, Path]]:
    out = []
    for p in [root, *root.rglob("date=*")]:
        m = _DAY_DIR.match(p.name)
        if m and p.is_dir() and not any(part.startswith(".") for part in p.relative_to(root).parts):
            try:
                out.append((date.fromisoformat(m.group(1)), p))
            except ValueError:
                continue
    return sorted(out)


def compact(root: str | os.PathLike, older_than: timedelta, *, now: datetime | None = None,
            row_group_size: int = 1_000_000, dry_run: bool = False, grace: timedelta = timedelta(0),
            on_step: Callable[[str, Path], None] | None = None) -> list[DayResult]:
    """Compact every eligible day under `root`; returns one DayResult per day folder.

    grace: replaced files are kept (hidden by the discovery rule) until they have been
    replaced this long, so a reader holding an older file list can still read them; removed
    by a later run. `on_step(step, folder)` is called after each durable step ("merged",
    "renamed", "removed")."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"--logs must be a folder of Hive-partitioned logs (date=YYYY-MM-DD/): {root}")
    if row_group_size <= 0:
        raise ValueError("--row-group-size must be positive")
    now = now or datetime.now(UTC)
    cutoff = now - older_than
    results = []
    for day, folder in day_folders(root):
        day_end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        if day_end > cutoff:
            results.append(DayResult(str(day), str(folder), "skipped", "too recent"))
            continue
        results.append(_compact_day(day, folder, older_than, row_group_size, dry_run, on_step, grace))
    return results


def _compact_day(day: date, folder: Path, older_than: timedelta, row_group_size: int,
                 dry_run: bool, on_step, grace: timedelta = timedelta(0)) -> DayResult:
    import fcntl  # POSIX only: imported here so the logger itself imports anywhere

    res = DayResult(str(day), str(folder), "skipped")
    with open(folder / ".compact.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            res.reason = "another compaction holds this day"
            return res
        files = _log_files(folder)
        hidden = _superseding(files)
        sources = [f for f in files if f not in hidden]
        if dry_run:
            res.reason = "dry run"
            res.files = len(sources) if len(sources) > 1 else 0
            return res
        _remove_stale_temporaries(folder, max(older_than, timedelta(hours=1)))
        # Replaced files are hidden already; they go once hidden for `grace` (by the oldest
        # compacted file naming them). Those kept are named again by the new file below, so
        # they stay hidden when the file that hid them is merged in turn.
        limit = time.time() - grace.total_seconds()
        expired = [f for f, by in hidden.items() if grace <= timedelta(0) or min(_mtime(c) for c in by) <= limit]
        for f in expired:
            _unlink(f)
        if expired:
            fsync_dir(folder)
        kept = [f for f in hidden if f not in expired]
        res.removed = len(expired)
        readable, rows, bad = _readable(sources)
        res.unreadable = tuple(bad)
        if len(readable) < 2:
            res.reason = "already one file" if readable else "no readable log files"
            return res
        name = f"{COMPACTED_PREFIX}{day:%Y%m%d}-{_host()}-{os.getpid()}-{secrets.token_hex(4)}.parquet"
        final = folder / name
        tmp = folder / f".{name}.tmp"
        try:
            written = _merge(readable, tmp, row_group_size, supersedes=readable + kept)
            if written != rows:
                raise RuntimeError(f"merged {written} rows, expected {rows}: nothing changed in {folder}")
            if on_step:
                on_step("merged", folder)
            os.rename(tmp, final)
            fsync_dir(folder)
        finally:
            if tmp.exists():
                _unlink(str(tmp))
        if on_step:
            on_step("renamed", folder)
        if grace <= timedelta(0):
            for f in readable:
                _unlink(f)
            fsync_dir(folder)
            res.removed += len(readable)
        if on_step:
            on_step("removed", folder)
        res.action, res.reason, res.files, res.rows, res.output = "compacted", "", len(readable), rows, str(final)
        return res


def _readable(files: list[str]) -> tuple[list[str], int, list[str]]:
    ok, bad, rows = [], [], 0
    for f in files:
        try:
            rows += pq.ParquetFile(f).metadata.num_rows
            ok.append(f)
        except (OSError, pa.ArrowException):
            bad.append(f)
    return ok, rows, bad


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return time.time()


def _merged_metadata(files: list[str], supersedes: list[str]) -> dict[bytes, bytes]:
    dropped, coerced = 0, Counter()
    for f in files:
        meta = pq.read_schema(f).metadata or {}
        try:
            dropped += int(meta.get(b"modelwatch.dropped_rows", b"0"))
            coerced.update(json.loads(meta.get(b"modelwatch.coerced", b"{}")))
        except (ValueError, TypeError):
            continue
    return {b"modelwatch.supersedes": json.dumps(sorted(os.path.basename(f) for f in supersedes)).encode(),
            b"modelwatch.dropped_rows": str(dropped).encode(),
            b"modelwatch.coerced": json.dumps(dict(coerced), sort_keys=True).encode(),
            b"modelwatch.compacted_at": datetime.now(UTC).isoformat().encode()}


def _merge(files: list[str], tmp: Path, row_group_size: int, supersedes: list[str]) -> int:
    """Sort the union of `files` by time with DuckDB (which spills to disk beyond its memory
    limit) and stream it into `tmp` in row groups of `row_group_size` rows; returns the rows."""
    import duckdb  # only compaction needs it: the logger itself loads pyarrow alone

    spill = tempfile.mkdtemp(prefix="modelwatch-compact-")
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")   # zone-aware timestamps come back in UTC
        con.execute("SET enable_progress_bar = false")
        con.execute("SET memory_limit = '1GB'")
        # SET takes no parameters; the folder is ours (mkdtemp), not user input.
        con.execute(f"SET temp_directory = '{spill.replace(chr(39), chr(39) * 2)}'")
        scan = "read_parquet($files, union_by_name=true, hive_partitioning=false, filename='__file', file_row_number=true)"
        cols = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}", {"files": files}).fetchall()}
        order = ['"timestamp"'] if cols.get("timestamp", "").startswith("TIMESTAMP") else []
        order += ["__file", "file_row_number"]
        keep = ", ".join('"' + c.replace('"', '""') + '"' for c in cols if c not in ("__file", "file_row_number"))
        reader = con.sql(f"SELECT {keep} FROM {scan} ORDER BY {', '.join(order)}",
                         params={"files": files}).to_arrow_reader(min(row_group_size, 1_000_000))
        schema = reader.schema.with_metadata(_merged_metadata(files, supersedes))
        total, pending, pending_rows = 0, [], 0
        with open(tmp, "wb") as f:
            writer = pq.ParquetWriter(f, schema, compression="zstd")
            for batch in reader:
                pending.append(batch)
                pending_rows += batch.num_rows
                while pending_rows >= row_group_size:
                    table = pa.Table.from_batches(pending, schema=schema)
                    writer.write_table(table.slice(0, row_group_size), row_group_size=row_group_size)
                    rest = table.slice(row_group_size)
                    pending, pending_rows = rest.to_batches(), rest.num_rows
                    total += row_group_size
            if pending_rows:
                writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=row_group_size)
                total += pending_rows
            writer.close()
            f.flush()
            os.fsync(f.fileno())
        return total
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _remove_stale_temporaries(folder: Path, age: timedelta) -> None:
    limit = time.time() - age.total_seconds()
    for p in folder.iterdir():
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            try:
                if p.stat().st_mtime < limit:
                    p.unlink()
            except OSError:
                continue


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:40] or "host"


# -- command line ---------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--logs", help="folder of logs written by monitoring.logger (default MONITORING_LOGS)")
    p.add_argument("--config", help="path of monitoring.toml (default MONITORING_CONFIG)")
    p.add_argument("--older-than", default="1d",
                   help="compact days that ended at least this long ago: 1d, 12h, 30m, 2w (default 1d)")
    p.add_argument("--row-group-size", type=int, default=1_000_000, help="rows per row group (default 1M)")
    p.add_argument("--grace", default="0",
                   help="keep replaced files this long (hidden from readers that apply the discovery "
                        "rule), for readers holding an older file list; removed by a later run (default 0)")
    p.add_argument("--dry-run", action="store_true", help="say what would be merged, change nothing")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config

    cfg = load_config(args.config, {"logs": args.logs})
    results = compact(cfg.logs, parse_duration(args.older_than, "--older-than"),
                      row_group_size=args.row_group_size, dry_run=args.dry_run,
                      grace=parse_duration(args.grace, "--grace"))
    done = [r for r in results if r.action == "compacted"]
    for r in results:
        if r.action == "compacted":
            print(f"{r.day}: {r.files} files, {r.rows:,} rows -> {os.path.basename(r.output or '')}")
        elif r.reason == "dry run" and r.files:
            print(f"{r.day}: would merge {r.files} files")
        for f in r.unreadable:
            print(f"{r.day}: left unreadable file {f}")
    print(f"compacted {len(done)} of {len(results)} day(s) under {cfg.logs}")
    return 0

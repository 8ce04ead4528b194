"""Alert evaluations kept on disk, so that a restarted server (or the app after `alerts check`)
shows the episodes at once instead of evaluating every rule over the history again.

    episodes = evaluate_kept(ws)            # read from data_dir/cache/alerts/, else evaluate and keep
    episodes = evaluate_kept(ws, at=t, mark=mark)   # `mark`: the labels mark read before (ui/data.py)

`engine.evaluate` is a pure function of the logs, the labels, the configuration and the code
(no wall clock). One JSON file per evaluation, named by a digest of all of them: the
workspace's fingerprint (files' path/size/mtime, column mapping, and a digest of the whole
configuration), the labels mark (monitoring.quality.marks: labels files' stat, the database's
address and its events), the configuration again as canonical JSON, the drift reference's
files (path, size and mtime: a reference rewritten in place is another evaluation), `at` and
the grid step,
the versions of Python, numpy, polars, duckdb and scipy, and a hash of every .py file of the
monitoring package (computed once per process). A change of any of them is another file.

Never kept: an evaluation whose labels could not be seen (a mark ending "db-unavailable"),
one on logs whose duplicate check has not finished (`ws.exact` False), and one during which
the labels moved (the mark is read again after it). Floats go through JSON as their shortest
repr (nan and inf as NaN/Infinity), datetimes as ISO 8601 with their offset: an episode read
back equals the one evaluated. Files are written whole under a temporary name and renamed; a
file that cannot be read or written is a miss, never an error (a read-only data folder only
costs the evaluation). At most MAX_FILES files are kept: the oldest go first.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import sys
from datetime import datetime
from pathlib import Path

from ..logs.discover import LogSourceError, resolve_paths
from ..logs.workspace import Workspace
from .engine import DEFAULT_STEP_MINUTES, Episode, evaluate

FORMAT = 1
MAX_FILES = 512
_FIELDS = tuple(f.name for f in dataclasses.fields(Episode))
_TIMES = ("start", "end")
_PACKAGE = Path(__file__).resolve().parent.parent   # monitoring/


@functools.cache
def code_hash() -> str:
    """sha256 of every .py file of the monitoring package (paths and contents), once per process."""
    h = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")):
        h.update(str(path.relative_to(_PACKAGE)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


@functools.cache
def _versions() -> str:
    """The libraries the figures come from (their metadata: nothing imported for it)."""
    from importlib.metadata import PackageNotFoundError, version

    out = [f"python={sys.version_info[:3]}"]
    for name in ("numpy", "polars", "duckdb", "scipy"):
        try:
            out.append(f"{name}={version(name)}")
        except PackageNotFoundError:
            out.append(f"{name}=-")
    return " ".join(out)


def _canonical_config(ws: Workspace) -> str:
    cfg = dataclasses.replace(ws.config, db_url=None, warnings=())   # the address is in the mark
    return json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=repr)


def _files(pattern: str | None) -> str:
    """Path, size and mtime of every file the drift reference names (resolved as the logs
    are: logs.discover.resolve_paths); its path is in the configuration, its content is not."""
    if not pattern:
        return "reference=-"
    try:
        paths = resolve_paths(pattern)
    except LogSourceError:   # the evaluation says what is wrong with it; the key only differs
        return f"reference={pattern}:missing"
    out = []
    for f in paths:
        try:
            st = os.stat(f)
            out.append(f"{f}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            out.append(f"{f}:missing")
    return "reference=" + "|".join(out)


def digest(ws: Workspace, mark: str, at: datetime | None = None,
           step_minutes: int = DEFAULT_STEP_MINUTES) -> str:
    """The name of the evaluation of these logs, labels, configuration, reference files, `at`
    and code."""
    parts = [f"format={FORMAT}", ws.fingerprint, mark, _canonical_config(ws), _files(ws.config.reference),
             "at=" + (at.isoformat() if at is not None else "-"), f"step={step_minutes}",
             _versions(), code_hash()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _number(o):
    if hasattr(o, "item"):   # numpy scalars
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def _encode(e: Episode) -> dict:
    out = {}
    for name in _FIELDS:
        v = getattr(e, name)
        out[name] = v.isoformat() if name in _TIMES and v is not None else v
    return out


def _decode(d: dict) -> Episode:
    if set(d) != set(_FIELDS):
        raise KeyError("fields")
    values = {}
    for name in _FIELDS:
        v = d[name]
        if name in _TIMES:
            v = None if v is None else datetime.fromisoformat(v)
            if name == "start" and v is None:
                raise ValueError("no start")
        elif name in ("peak", "threshold"):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise TypeError(name)
        elif not isinstance(v, str):
            raise TypeError(name)
        values[name] = v
    return Episode(**values)


class EvalStore:
    """The evaluation files of one folder (created on the first write)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"EvalStore({str(self.folder)!r})"

    def _path(self, digest: str) -> Path:
        return self.folder / f"{digest}.json"

    def read(self, digest: str) -> list[Episode] | None:
        """The episodes kept under this digest; None when none can be read (a miss)."""
        try:
            info = json.loads(self._path(digest).read_text(encoding="utf-8"))
            if info.get("format") != FORMAT or info.get("digest") != digest:
                return None
            return [_decode(d) for d in info["episodes"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def write(self, digest: str, episodes: list[Episode]) -> None:
        """Keep `episodes` under this digest; silently nothing when the folder cannot be written."""
        path = self._path(digest)
        text = json.dumps({"format": FORMAT, "digest": digest,
                           "episodes": [_encode(e) for e in episodes]}, default=_number)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
            self._prune()
        except OSError:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass

    def _prune(self) -> None:
        files = list(self.folder.glob("*.json"))
        if len(files) <= MAX_FILES:
            return

        def mtime(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except OSError:
                return math.inf
        for old in sorted(files, key=mtime)[:len(files) - MAX_FILES]:
            old.unlink(missing_ok=True)


def for_folder(data_dir: str | os.PathLike | None) -> EvalStore | None:
    """The evaluation store of a data folder (`data_dir/cache/alerts`); None without one."""
    return EvalStore(Path(data_dir) / "cache" / "alerts") if data_dir else None


def keepable(mark: str) -> bool:
    """False for a mark of labels that could not be seen: such an evaluation is never kept nor read."""
    from ..quality.marks import UNAVAILABLE

    return not mark.endswith(UNAVAILABLE)


def evaluate_kept(ws: Workspace, at: datetime | None = None, step_minutes: int = DEFAULT_STEP_MINUTES,
                  mark: str | None = None) -> list[Episode]:
    """`engine.evaluate(ws, at, step_minutes)`, read from the data folder when this very
    evaluation was kept there, else evaluated and kept. `mark`: the labels mark read before
    this call (None: read here), so that a caller's mark is the one in the key."""
    from ..quality.marks import labels_mark

    if mark is None:
        mark = labels_mark(ws.config)
    store = for_folder(ws.config.data_dir)
    if store is None or not ws.exact or not keepable(mark):
        return evaluate(ws, at=at, step_minutes=step_minutes)
    key = digest(ws, mark, at, step_minutes)
    kept = store.read(key)
    if kept is not None:
        return kept
    found = evaluate(ws, at=at, step_minutes=step_minutes)
    # Labels that moved meanwhile may be in `found`: it is no answer for `mark` alone.
    if ws.exact and labels_mark(ws.config) == mark:
        store.write(key, found)
    return found

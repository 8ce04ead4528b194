"""Is the data on screen still what the files hold? A cheap fingerprint of the files now.

    snapshot("logs/")                 # '3f9a…': changes when a file appears, changes or goes
    w = Watcher(); w.check("logs/", every=30)   # the same, recomputed at most every 30 s

The fingerprint lists the files the log path names (the same discovery as the log source,
`source.resolve_paths`) with their sizes and modification times: no file is opened, so it
costs one directory walk. It covers every candidate file, readable or not, so a file that is
truncated, rewritten or removed while the app runs changes it too; `extra` paths (the
configuration file, a reference or labels file) are included the same way.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from .source import LogSourceError, resolve_paths


def snapshot(path: str, extra: Iterable[str | None] = ()) -> str:
    """A 16-hex-digit fingerprint of the files under `path` (and the `extra` files) now.

    A path that names no file has a fingerprint too (of its error), so "the logs are gone"
    and "the logs are back" are changes like any other.
    """
    h = hashlib.sha256()
    try:
        files = resolve_paths(path)
    except LogSourceError as exc:
        files = []
        h.update(f"error\0{exc}\n".encode())
    for f in [*files, *(e for e in extra if e)]:
        try:
            st = os.stat(f)
        except OSError:              # gone between the listing and now: absent
            h.update(f"{f}\0absent\n".encode())
            continue
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Check:
    fingerprint: str
    checked_at: datetime     # when the files were last looked at (UTC)


class Watcher:
    """Remembers each path's fingerprint and looks at the files again at most every
    `every` seconds; safe to share between threads (one per process in the app)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple, tuple[float, Check]] = {}

    def check(self, path: str, every: float, extra: Iterable[str | None] = ()) -> Check:
        key = (path, *extra)
        now = self._clock()
        with self._lock:
            hit = self._seen.get(key)
            if hit is not None and now - hit[0] < every:
                return hit[1]
        result = Check(snapshot(path, extra), datetime.now(UTC))
        with self._lock:
            self._seen[key] = (now, result)
        return result

    def forget(self, path: str | None = None) -> None:
        """Look at the files again on the next check (all paths when `path` is None)."""
        with self._lock:
            for key in [k for k in self._seen if path is None or k[0] == path]:
                del self._seen[key]

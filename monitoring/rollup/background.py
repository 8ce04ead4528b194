"""Building the rollup store in a background thread, with progress a UI can read.

    job = background.start(config)          # one builder per store; returns at once
    p = job.progress()                      # Progress(state, files_done, files_total, ...)
    p.fraction, p.text                      # for a progress bar
    job.wait(timeout)                       # tests and scripts

No page waits for it. A long build lands in up to MAX_STEPS steps, each an update of the
files rolled so far that writes the manifest: the caller re-reads the store when the
manifest changes (`refresh`, one stat while it does not) and pages read the rolled files
from it and the rest from the raw logs (rollup.partial), complete at every step. This
module never imports a UI library: the progress is a plain, immutable object read under a
lock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .. import exits
from ..config import Config
from ..logs.source import LogSource, LogSourceError, connect, open_source
from . import build
from . import store as st
from .settings import load as load_settings

IDLE, RUNNING, DONE, FAILED = "idle", "running", "done", "failed"
# A build of many files lands in at most this many steps (each at least batch_rows rows):
# each step re-checks duplicates over the parts so far and writes a segment, so more steps
# cost more (about (steps + 1) / 2 duplicate checks of the whole store) and pay off sooner.
MAX_STEPS = 4


@dataclass(frozen=True)
class Progress:
    state: str = IDLE
    files_done: int = 0
    files_total: int = 0
    rows_done: int = 0
    rows_total: int = 0
    started: float = 0.0
    finished: float = 0.0
    message: str = ""            # one sentence when it failed, or what it is doing
    fingerprint: str = ""        # the files (LogSource.fingerprint) this build was started for

    @property
    def fraction(self) -> float:
        if self.state == DONE:
            return 1.0
        if self.rows_total:
            return min(1.0, self.rows_done / self.rows_total)
        return self.files_done / self.files_total if self.files_total else 0.0

    @property
    def text(self) -> str:
        if self.state == RUNNING:
            return (f"Building rollups: {self.files_done:,} of {self.files_total:,} files "
                    f"({self.rows_done:,} of {self.rows_total:,} rows); files not rolled yet are read raw meanwhile")
        if self.state == DONE:
            return f"Rollups up to date ({self.files_total:,} files, {self.finished - self.started:.1f} s)"
        if self.state == FAILED:
            return f"Rollups could not be built: {self.message}"
        return "Rollups not built"


class Job:
    """One background build of one store; `start` reuses a running job of the same store."""

    def __init__(self, config: Config, logs: str, batch_rows: int):
        self.config, self.logs, self.batch_rows = config, logs, batch_rows
        self._lock = threading.Lock()
        self._progress = Progress()
        self._thread: threading.Thread | None = None

    def progress(self) -> Progress:
        with self._lock:
            return self._progress

    def _set(self, **kw) -> None:
        with self._lock:
            self._progress = replace(self._progress, **kw)

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, fingerprint: str = "") -> Job:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._progress = Progress(state=RUNNING, started=time.time(), message="looking at the files",
                                      fingerprint=fingerprint)
            self._thread = exits.thread(self._run, name="modelwatch-rollups")   # stopped at exit
        return self

    def wait(self, timeout: float | None = None) -> Progress:
        t = self._thread
        if t is not None:
            t.join(timeout)
        return self.progress()

    def _run(self) -> None:
        try:
            con = exits.uses(connect(self.config))   # its own connection: never the UI's
            source = open_source(self.logs, self.config, con)
            todo = st.plan(source, st.read_manifest(st.store_root(self.config, self.logs)))
            self._set(files_total=len(source.files), files_done=len(todo.keep),
                      rows_total=sum(e.rows for e in (*todo.keep, *todo.roll)),
                      rows_done=sum(e.rows for e in todo.keep), message="rolling")
            done_rows, done_files = sum(e.rows for e in todo.keep), len(todo.keep)
            landed = {e.path for e in todo.keep}
            r = None
            for group in steps(list(todo.roll), self.batch_rows):
                landed |= {e.path for e in group}
                # the files rolled so far (and those kept): the step's update drops no part of
                # a file still to come, and writes a manifest pages can read
                sub = replace(source, files=[f for f in source.files if f in landed])

                def step(rows: int, total: int, files: int = 0, total_files: int = 0,
                         base: tuple[int, int] = (done_rows, done_files)) -> None:
                    self._set(rows_done=base[0] + rows, files_done=base[1] + files)

                r = build.update(self.config, self.logs, source=sub, con=con, progress=step,
                                 batch_rows=self.batch_rows)
                done_rows += sum(e.rows for e in group)
                done_files += len(group)
                self._set(rows_done=done_rows, files_done=done_files)
            if r is None:      # nothing to roll (removed files only, or none): one update
                r = build.update(self.config, self.logs, source=source, con=con, batch_rows=self.batch_rows)
            self._set(state=DONE, files_done=len(source.files), files_total=len(source.files),
                      rows_done=self._progress.rows_total, finished=time.time(), message="")
        except (LogSourceError, OSError, ValueError) as exc:
            self._set(state=FAILED, finished=time.time(), message=str(exc).splitlines()[0][:300])
        except Exception as exc:
            self._set(state=FAILED, finished=time.time(),
                      message=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")


def steps(roll: list[st.FileEntry], batch_rows: int) -> list[list[st.FileEntry]]:
    """The files to roll in groups of at least batch_rows rows and at most MAX_STEPS groups,
    in their order (files are never split)."""
    size = max(batch_rows, -(-sum(e.rows for e in roll) // MAX_STEPS))
    out: list[list[st.FileEntry]] = []
    n = 0
    for e in roll:
        if not out or n >= size:
            out.append([])
            n = 0
        out[-1].append(e)
        n += e.rows
    return out


_JOBS: dict[Path, Job] = {}
_JOBS_LOCK = threading.Lock()


def job_for(config: Config, logs: str | None = None) -> Job:
    logs = logs or config.logs
    root = st.store_root(config, logs)
    with _JOBS_LOCK:
        job = _JOBS.get(root)
        if job is None:
            job = _JOBS[root] = Job(config, logs, load_settings(config).batch_rows)
        return job


def start(config: Config, logs: str | None = None, fingerprint: str = "") -> Job:
    """Start (or find running) the background update of the store of `logs`."""
    return job_for(config, logs).start(fingerprint)


def wanted(config: Config, rows: int) -> bool:
    """Whether the [rollups] settings ask for a background build of logs of `rows` rows."""
    return load_settings(config).wanted(rows)


_REFUSED: dict[tuple[Path, str], int] = {}      # (store, fingerprint) -> manifest stamp refused


def refresh(config: Config, source: LogSource, current=None, logs: str | None = None):
    """The store to attach to `source`: `current` while the manifest has not changed (one
    stat), else the store re-read as it answers for these files (`partial.cover`: whole,
    its covered files, or None when it cannot help)."""
    from .partial import cover
    from .read import NotCovered, open_store

    root = st.store_root(config, logs or config.logs)
    try:
        stamp = (root / "manifest.json").stat().st_mtime_ns
    except OSError:
        return None
    if current is not None and current.stamp == stamp and current.root == root:
        return current
    if _REFUSED.get((root, source.fingerprint)) == stamp:
        return None
    try:
        store = open_store(config, logs or config.logs)
        return cover(store, source) if store is not None else None
    except (NotCovered, OSError, ValueError):
        _REFUSED[(root, source.fingerprint)] = stamp
        return None


def covering_store(config: Config, source: LogSource, logs: str | None = None):
    """The store when it covers every file of `source` as it is now, else None."""
    from .read import NotCovered, open_store

    try:
        store = open_store(config, logs or config.logs)
        if store is not None:
            store.check(source)
        return store
    except (NotCovered, OSError, ValueError):
        return None

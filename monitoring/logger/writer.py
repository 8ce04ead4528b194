"""PredictionLogger: rows queued by the serving threads, written by one background thread.

    logger = PredictionLogger("logs/", "credit", "v3")
    with logger.request(endpoint="/v1/predict", features=row) as r:
        r.prediction, r.score = model.predict(row)

The calling thread only stamps the row and appends it to a bounded deque: it takes no lock
the writer takes (only the request-id counter's, ids.py) and never waits on disk. The writer thread wakes every `poll_seconds`; when
`flush_rows` rows are queued or the oldest queued row is `flush_seconds` old, it writes them
as one Parquet file per UTC day: `DIR/date=YYYY-MM-DD/part-<time>-<host>-<pid>-<n>-<rand>.parquet`,
first under a hidden temporary name (which readers skip), fsynced, then renamed into place
and the directory fsynced. A file on disk is therefore complete, and a crash loses only
the rows queued since the last completed file.

The writer takes no lock that a serving thread holds either, so a flush from a signal
handler (SIGTERM) cannot deadlock with the code it interrupted.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import json
import logging
import operator
import os
import re
import secrets
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from . import lifecycle
from .files import dictionary_columns, write_atomically
from .ids import new_id
from .record import RequestRecord, _current, as_features
from .schema import TableBuilder

log = logging.getLogger("monitoring.logger")

_DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOST = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:40] or "host"
_by_time = operator.itemgetter(1)   # rows are (request_id, ts_us, ...)
_file_counter = itertools.count()   # per process; next() is atomic under the GIL
LOGGER_VERSION = "1"


class PredictionLogger:
    """Writes prediction logs in the modelwatch log contract under `directory`.

    flush_rows / flush_seconds: a file is written when this many rows are queued, or when the
        oldest queued row is this old (and on close, at exit and on SIGTERM).
    max_queue_rows: rows held in memory at most; beyond it new rows are dropped (never
        blocking the caller), counted in `stats()["dropped"]`, in a warning and in the
        `modelwatch.dropped_rows` metadata of the next file written.
    types: optional fixed column kinds, e.g. {"age": "float64", "prediction": "string"};
        other columns take the kind of their first value (see schema.py).
    """

    def __init__(self, directory: str | os.PathLike, model_name: str, model_version: str, *,
                 flush_rows: int = 10_000, flush_seconds: float = 5.0,
                 max_queue_rows: int = 100_000, types: dict[str, str] | None = None,
                 compression: str = "zstd", poll_seconds: float = 0.05,
                 install_signal_handler: bool = True):
        if flush_rows <= 0 or max_queue_rows <= 0 or flush_seconds <= 0 or poll_seconds <= 0:
            raise ValueError("flush_rows, flush_seconds, max_queue_rows and poll_seconds must be positive")
        if not model_name or not model_version:
            raise ValueError("model_name and model_version must be non-empty strings")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.model_name, self.model_version = str(model_name), str(model_version)
        self.flush_rows, self.flush_seconds = int(flush_rows), float(flush_seconds)
        self.max_queue_rows = int(max_queue_rows)
        self.compression = compression
        self.poll_seconds = min(float(poll_seconds), self.flush_seconds)
        self._builder = TableBuilder(self.model_name, self.model_version, types)
        # pyarrow imports pandas (when installed) on its first conversion of a Python list.
        # Pay that here, at start-up in the caller's thread: not in the writer while requests
        # wait for the GIL, and not at exit, when imports that register atexit hooks fail.
        pa.array([0])
        self._reset_state()
        self._lock_drops = threading.Lock()   # the rare drop path only
        lifecycle.register(self, install_signal_handler)
        self._start()

    def _reset_state(self) -> None:
        self._queue: deque[tuple] = deque()
        self._pending: list[tuple] = []         # rows of a write that failed, retried first
        self._dropped = 0                       # written by callers only
        self._dropped_reported = 0              # written by the writer only
        self._dropped_warned = 0
        self._written_rows = 0
        self._write_cpu_s = 0.0                 # CPU seconds spent writing (thread time)
        self._failed_rows = 0
        self._files: list[str] = []
        self._coerced: Counter = Counter()
        self._closing = False
        self._closed = False
        self._flush_wanted = 0                  # generation counters: lock-free flush requests
        self._flush_done = 0
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="modelwatch-logger", daemon=True)
        self._thread.start()

    def _after_fork_in_child(self) -> None:
        # The parent writes the rows it had queued; the child starts empty with its own thread.
        self._reset_state()
        self._lock_drops = threading.Lock()
        self._start()

    # -- the calling thread -----------------------------------------------------------------
    def request(self, endpoint: str | None = None, features: Mapping[str, Any] | None = None) -> RequestRecord:
        """A context manager timing one request; see RequestRecord."""
        return RequestRecord(self, endpoint, features)  # type: ignore[arg-type]

    def log(self, *, latency_ms: float, prediction: Any = None,
            features: Mapping[str, Any] | None = None, status: str = "ok",
            endpoint: str | None = None, score: Any = None, label: Any = None,
            error_type: str | None = None, request_id: str | None = None,
            timestamp: datetime | None = None) -> str:
        """Log one request measured elsewhere; returns its request id."""
        if timestamp is not None and not isinstance(timestamp, datetime):
            raise TypeError(f"timestamp must be a datetime, got {type(timestamp).__name__}")
        if timestamp is None:
            ts_us = time.time_ns() // 1000
        else:   # naive means UTC, as in the log contract
            aware = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
            ts_us = (aware - _EPOCH) // timedelta(microseconds=1)
        rid = request_id or new_id(ts_us)
        self._put((rid, ts_us, endpoint, latency_ms, status, error_type, prediction, score, label,
                   as_features(features) or None))
        return rid

    def logged(self, endpoint: str | None = None, *,
               features: Callable[..., Mapping[str, Any]] | None = None,
               prediction: Callable[[Any], Any] | None = None,
               score: Callable[[Any], Any] | None = None) -> Callable:
        """Decorator logging every call of a plain function (sync or async).

        features(*args, **kwargs) -> dict gives the inputs (default: the first argument when
        it is a mapping, else the keyword arguments); prediction(result) and score(result)
        pick the output (default: the result itself, no score). Inside the function,
        `current_request()` is the record, e.g. to set the score.
        """
        def pick_features(args, kwargs):
            if features is not None:
                return features(*args, **kwargs)
            if args and isinstance(args[0], Mapping):
                return args[0]
            return kwargs

        def finish(r: RequestRecord, result: Any) -> None:
            if r.prediction is None:
                r.prediction = prediction(result) if prediction else result
            if score is not None and r.score is None:
                r.score = score(result)

        def decorate(fn: Callable) -> Callable:
            name = endpoint if endpoint is not None else fn.__qualname__
            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def async_wrapper(*args, **kwargs):
                    with self.request(name, pick_features(args, kwargs)) as r:
                        result = await fn(*args, **kwargs)
                        finish(r, result)
                        return result
                return async_wrapper

            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                with self.request(name, pick_features(args, kwargs)) as r:
                    result = fn(*args, **kwargs)
                    finish(r, result)
                    return result
            return wrapper
        return decorate

    def _put(self, row: tuple) -> None:
        if len(self._queue) < self.max_queue_rows and not self._closed:
            self._queue.append(row)
            return
        with self._lock_drops:
            self._dropped += 1

    # -- control ----------------------------------------------------------------------------
    def flush(self, timeout: float | None = 30.0) -> bool:
        """Have every row queued so far written; True when the writer got to it within
        `timeout` seconds (a failed write is logged and retried: see stats())."""
        if self._thread is None or not self._thread.is_alive():
            self._write_in_caller()
            return True
        self._flush_wanted += 1
        want = self._flush_wanted
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._flush_done < want:
            if not self._thread.is_alive():
                self._write_in_caller()
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is queued and stop; rows logged afterwards are dropped and counted."""
        if self._closed:
            return
        self._closing = True
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.error("prediction logger: the writer did not finish within %s s; %d rows "
                          "not written", timeout, len(self._queue))
                self._closed = True
                return
        self._closed = True   # from here on callers drop (and count) instead of queueing
        self._write_in_caller()
        if self._queue:       # appended in the instant between the check and the append
            with self._lock_drops:
                self._dropped += len(self._queue)
            self._queue.clear()
        if self._dropped > self._dropped_warned:
            log.warning("prediction logger: %d row(s) logged during close() were dropped",
                        self._dropped - self._dropped_warned)
            self._dropped_warned = self._dropped
        lifecycle.unregister(self)

    def _write_in_caller(self) -> None:
        try:
            self._write_queued()
        except Exception:   # close() and flush() never raise: the loss is reported instead
            log.exception("prediction logger: write failed; %d row(s) not written",
                          len(self._pending) + len(self._queue))

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        """Counts so far: rows written and files, rows queued, dropped (queue full or closed)
        and failed (could not be converted: a bug, reported in the log), coerced values, and
        the CPU seconds the writing took (converting, encoding, fsync: the thread's own time,
        whatever else the machine runs)."""
        return {"written": self._written_rows, "files": len(self._files), "queued": len(self._queue),
                "dropped": self._dropped, "failed": self._failed_rows, "coerced": dict(self._coerced),
                "write_cpu_seconds": self._write_cpu_s}

    @property
    def files(self) -> list[str]:
        return list(self._files)

    # -- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        oldest: float | None = None
        while not self._closing:
            time.sleep(self.poll_seconds)
            want = self._flush_wanted
            n = len(self._queue)
            if n and oldest is None:
                oldest = time.monotonic()
            due = want > self._flush_done or n >= self.flush_rows or self._pending or (
                oldest is not None and time.monotonic() - oldest >= self.flush_seconds)
            if due:
                try:
                    self._write_queued()
                except Exception:   # never let the thread die: the rows are kept for a retry
                    log.exception("prediction logger: write failed, retrying")
                oldest = time.monotonic() if self._queue else None
                self._flush_done = want

    def _write_queued(self) -> None:
        """Write the rows queued now (after a failed write's rows), one file a day per batch.
        Rows arriving meanwhile wait for the next flush: a steady trickle must not turn
        into a stream of tiny files."""
        t0 = time.thread_time()
        try:
            left = len(self._queue) - self._write_batch()
            while left > 0:   # rows left behind while a failed write's rows took the room
                took = self._write_batch()
                if not took:
                    break
                left -= took
        finally:   # CPU of the thread that wrote (the writer's, or close()'s caller's)
            self._write_cpu_s += time.thread_time() - t0

    def _write_batch(self) -> int:
        """Write one batch; returns how many rows it took from the queue."""
        rows, self._pending = self._pending, []
        q = self._queue
        # While a failed write is retried, its rows count against the bound: the queue then
        # stays full and callers drop (and count) instead of memory growing without end.
        took = max(0, min(len(q), self.max_queue_rows - len(rows)))
        rows.extend(itertools.starmap(q.popleft, itertools.repeat((), took)))   # no Python loop
        dropped = self._dropped - self._dropped_reported
        if self._dropped > self._dropped_warned:
            log.warning("prediction logger: %d row(s) dropped: the queue was full "
                        "(max_queue_rows=%d) or the logger closed", self._dropped - self._dropped_warned,
                        self.max_queue_rows)
            self._dropped_warned = self._dropped
        if not rows:
            return 0
        rows.sort(key=_by_time)
        if rows[0][1] // _DAY_US == rows[-1][1] // _DAY_US:   # one day: the common case
            groups = [rows]
        else:
            groups = [list(g) for _, g in itertools.groupby(rows, key=lambda r: r[1] // _DAY_US)]
        for i, group in enumerate(groups):
            try:
                self._write_file(group, dropped if i == 0 else 0)
            except OSError:   # disk full, permissions, ...: kept and retried at the next flush
                self._pending = [r for g in groups[i:] for r in g]
                raise
            except Exception:
                # A row that cannot be converted would fail every retry: find such rows one by
                # one, count them as lost, write the others.
                good = [r for r in group if self._convertible(r)]
                self._failed_rows += len(group) - len(good)
                log.exception("prediction logger: %d row(s) could not be written and are lost",
                              len(group) - len(good))
                if not good:
                    continue
                self._write_file(good, dropped if i == 0 else 0)
                group = good
            if i == 0:
                self._dropped_reported += dropped
            self._written_rows += len(group)
        return took

    def _convertible(self, row: tuple) -> bool:
        try:
            self._builder.build([row])
            return True
        except Exception:
            return False

    def _write_file(self, rows: list[tuple], dropped: int) -> None:
        table, coerced = self._builder.build(rows, presorted=True)   # _write_batch sorted them
        self._coerced.update(coerced)
        first = datetime.fromtimestamp(rows[0][1] / 1e6, UTC)
        meta = {
            "modelwatch.logger": LOGGER_VERSION,
            "modelwatch.writer": json.dumps({"host": socket.gethostname(), "pid": os.getpid()}),
            "modelwatch.dropped_rows": str(dropped),
            "modelwatch.coerced": json.dumps(dict(coerced), sort_keys=True),
        }
        table = table.replace_schema_metadata(meta)
        day_dir = self.directory / f"date={first:%Y-%m-%d}"
        day_dir.mkdir(parents=True, exist_ok=True)
        name = (f"part-{first:%Y%m%dT%H%M%S%f}-{_HOST}-{os.getpid()}-{next(_file_counter):06d}-"
                f"{secrets.token_hex(4)}.parquet")
        final = day_dir / name
        write_atomically(table, final, compression=self.compression,
                         use_dictionary=dictionary_columns(table.schema))
        self._files.append(str(final))


__all__ = ["PredictionLogger", "_current", "write_atomically"]

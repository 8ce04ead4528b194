"""Writing the sample logs: one Parquet file per UTC day, in row groups of at most
`ROW_GROUP_ROWS` rows, written aside and renamed; `generate()` drives it."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .columns import _hour_columns
from .incidents import Incident
from .profile import (
    _DICTIONARY_COLUMNS,
    CATEGORICAL_FEATURES,
    CLASSES,
    DEFAULT_START,
    ENDPOINTS,
    ERROR_TYPES,
    MODEL_NAME,
    NUMERIC_FEATURES,
    SCHEMA,
    VERSIONS,
    _utc_midnight,
)
from .traffic import (
    _minute_counts,
    _Plan,
)

ROW_GROUP_ROWS = 1_000_000
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3

@dataclass(frozen=True)
class GenerateResult:
    """What `generate()` wrote: row count, Parquet files (one per day), and the incidents."""

    rows: int
    files: tuple[Path, ...]
    out_dir: Path
    incidents: tuple[Incident, ...]


def generate(
    out_dir: str | Path,
    *,
    days: int = 30,
    rows_per_day: int = 3000,
    seed: int = 7,
    start: datetime = DEFAULT_START,
    progress: Callable[[int, int], None] | None = None,
) -> GenerateResult:
    """Write `days` days of logs from `start` to ``out_dir/date=YYYY-MM-DD/part-0.parquet``.

    Files are zstd-compressed, sorted by timestamp, in row groups of at most
    `ROW_GROUP_ROWS` rows; a file of the same name is replaced (written aside, then
    renamed), other files are left alone. `rows_per_day` is the expected number of rows of
    the average day of the range without incidents (the spike adds rows, the gap removes
    some); weekdays get more and weekends fewer.
    `start` must be a UTC midnight (naive values are taken as UTC). `progress(done, total)`
    is called after each day. Returns a `GenerateResult`.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if rows_per_day < 1:
        raise ValueError(f"rows_per_day must be at least 1, got {rows_per_day}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    start = _utc_midnight(start)
    out = Path(out_dir)
    plan = _Plan.build(start, days, rows_per_day, seed)
    files: list[Path] = []
    rows = 0
    # Building a chunk (numpy) overlaps with encoding the previous one (Parquet, which
    # releases the GIL) in one writer thread. Waiting for every queued task before queueing
    # the next keeps at most two chunks in memory, and `progress` runs on this thread.
    queue: deque[Future] = deque()

    def drain() -> None:
        nonlocal rows
        while queue:
            done = queue.popleft().result()
            if done is not None:
                files.append(done[0])
                rows += done[1]
                if progress is not None:
                    progress(len(files), days)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sample-data-writer") as writer:
        for day in range(days):
            day_file = _DayFile(out, start + timedelta(days=day))
            for table in _day_tables(plan, day):
                drain()
                queue.append(writer.submit(day_file.write, table))
            queue.append(writer.submit(day_file.close))
        drain()
    return GenerateResult(rows, tuple(files), out, tuple(plan.incidents))

class _DayFile:
    """One day's Parquet file, written under a temporary name and renamed when complete."""

    def __init__(self, out: Path, day_start: datetime) -> None:
        folder = out / f"date={day_start:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "part-0.parquet"
        # Not *.parquet, so readers of the directory never see a half-written file.
        self.partial = folder / "part-0.parquet.partial"
        self.writer = pq.ParquetWriter(
            self.partial,
            SCHEMA,
            compression=COMPRESSION,
            compression_level=COMPRESSION_LEVEL,
            use_dictionary=_DICTIONARY_COLUMNS,
        )
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.rows += table.num_rows

    def close(self) -> tuple[Path, int]:
        self.writer.close()
        os.replace(self.partial, self.path)
        return self.path, self.rows

def _day_tables(plan: _Plan, day: int) -> Iterator[pa.Table]:
    """The day's rows in time order, as tables of at most ROW_GROUP_ROWS rows (or one hour)."""
    counts = _minute_counts(plan, day)
    for hours in _hour_chunks(counts.reshape(24, 60).sum(axis=1)):
        parts = [_hour_columns(plan, day, h, counts[h * 60 : h * 60 + 60]) for h in hours]
        yield _to_table({name: np.concatenate([p[name] for p in parts]) for name in parts[0]})

def _hour_chunks(hour_counts: np.ndarray) -> list[list[int]]:
    """Consecutive hours grouped so each group holds at most ROW_GROUP_ROWS rows (or one hour)."""
    chunks: list[list[int]] = [[]]
    size = 0
    for hour, count in enumerate(hour_counts):
        if chunks[-1] and size + count > ROW_GROUP_ROWS:
            chunks.append([])
            size = 0
        chunks[-1].append(hour)
        size += int(count)
    return chunks

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_ids(ids: np.ndarray) -> pa.Array:
    """16 lower-case hex characters per uint64, built straight into an Arrow string array."""
    n = ids.size
    raw = ids.astype(">u8").view(np.uint8).reshape(n, 8)
    chars = np.empty((n, 16), dtype=np.uint8)
    chars[:, 0::2] = _HEX[raw >> 4]
    chars[:, 1::2] = _HEX[raw & 15]
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chars)])


def _strings(
    values: tuple[str, ...], codes: np.ndarray, null: np.ndarray | None = None
) -> pa.Array:
    return pc.take(pa.array(values, pa.string()), pa.array(codes, mask=null))


def _to_table(cols: dict[str, np.ndarray]) -> pa.Table:
    failed = cols["failed"]
    n = failed.size
    arrays = {
        "request_id": _hex_ids(cols["request_id"]),
        "timestamp": pa.array(
            cols["timestamp"].view("datetime64[us]"), SCHEMA.field("timestamp").type
        ),
        "model_name": _strings((MODEL_NAME,), np.zeros(n, dtype=np.int8)),
        "model_version": _strings(VERSIONS, cols["model_version"]),
        "endpoint": _strings(tuple(ENDPOINTS), cols["endpoint"]),
        "latency_ms": pa.array(cols["latency_ms"]),
        "status": _strings(("ok", "error"), failed.astype(np.int8)),
        "error_type": _strings(tuple(ERROR_TYPES), cols["error_type"], ~failed),
        "prediction": _strings(CLASSES, cols["prediction"], failed),
        "score": pa.array(np.round(cols["score"], 4), mask=failed),
        "label": _strings(CLASSES, cols["label"], ~cols["labeled"]),
    }
    for name in NUMERIC_FEATURES:
        arrays[name] = pa.array(cols[name])
    for name, shares in CATEGORICAL_FEATURES.items():
        arrays[name] = _strings(tuple(shares), cols[name])
    return pa.Table.from_arrays([arrays[f.name] for f in SCHEMA], schema=SCHEMA)

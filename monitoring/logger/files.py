"""Log files on disk: written whole or not at all, encoded for logs.

`write_atomically` writes a table under a hidden temporary name (which readers skip), fsyncs
it, renames it into place and fsyncs the folder: a reader, or a crash, never sees part of a
file. The writer thread writes one such file per flush; compaction fsyncs its folders too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth dictionary-encoding: text, which repeats (endpoint, status, model,
    categorical features), but not the request id, unique on every row. Numbers are left
    plain: on logs the dictionary made files larger and the writer slower."""
    return [f.name for f in schema if pa.types.is_string(f.type) and f.name != "request_id"]


def write_atomically(table: pa.Table, final: Path, **options: Any) -> None:
    """Write `table` to a hidden temporary name next to `final`, fsync, rename, fsync the folder."""
    tmp = final.with_name(f".{final.name}.tmp")
    try:
        # An Arrow file, not a Python one: Arrow's encoder then writes without taking the GIL
        # back for every chunk (each time waiting up to the interpreter's switch interval
        # while request threads run), so encoding and writing overlap with the requests.
        with pa.OSFile(str(tmp), "wb") as f:
            pq.write_table(table, f, row_group_size=options.pop("row_group_size", max(1, table.num_rows)),
                           **options)
            os.fsync(f.fileno())
        os.rename(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(final.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

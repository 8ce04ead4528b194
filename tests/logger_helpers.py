"""Shared by the logger tests: read back what a logger wrote, and check it with the source."""

from __future__ import annotations

import glob
import os

import pyarrow as pa
import pyarrow.parquet as pq

from monitoring.config import load_config
from monitoring.logger.compaction import drop_superseded
from monitoring.logs.workspace import open_workspace


def visible_files(directory) -> list[str]:
    """Log files a reader sees: non-hidden Parquet files, minus those compaction replaced."""
    files = sorted(f for f in glob.glob(os.path.join(str(directory), "**", "*.parquet"), recursive=True)
                   if not os.path.basename(f).startswith((".", "_")))
    return drop_superseded(files)


def read_rows(directory) -> pa.Table:
    """Every row of every visible file (each file must be readable)."""
    tables = [pq.read_table(f) for f in visible_files(directory)]
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


def health_of(directory, data_dir):
    """The source's own verdict on the logs: (workspace, health)."""
    cfg = load_config(overrides={"logs": str(directory), "data_dir": str(data_dir)})
    ws = open_workspace(cfg)
    return ws, ws.health

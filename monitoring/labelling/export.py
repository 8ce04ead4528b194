"""Export label events (the audit trail) and resolved labels as CSV, JSON lines or Parquet.

    data = export_bytes(engine, qid, "labels", "csv")     # for a download button
    write_export(engine, qid, "events", "parquet", "events.parquet")

Times are UTC (ISO 8601 in CSV and JSON lines); `inputs` is the JSON text of the features
exactly as reviewers saw them. CSV is what spreadsheets open, so a text cell starting like a
formula (=, +, -, @, tab, CR) gets a leading apostrophe (the OWASP rule, `fmt.safe_frame`);
JSON lines and Parquet keep every value exactly.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
from sqlalchemy.engine import Engine

from ..fmt import safe_frame
from .results import events_frame, resolved_frame

FORMATS = {"csv": "text/csv", "jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}
KINDS = ("labels", "events")


def export_frame(engine: Engine, queue_id: int, kind: str) -> pl.DataFrame:
    """`labels`: one resolved row per answered item; `events`: every event in order."""
    if kind not in KINDS:
        raise ValueError(f"export kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return resolved_frame(engine, queue_id) if kind == "labels" else events_frame(engine, queue_id)


def frame_bytes(df: pl.DataFrame, fmt: str) -> bytes:
    """Serialise a frame as `fmt` (csv, jsonl, parquet)."""
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    buf = io.BytesIO()
    if fmt == "csv":
        safe_frame(df).write_csv(buf, datetime_format="%Y-%m-%dT%H:%M:%S%.fZ")
    elif fmt == "jsonl":
        df.write_ndjson(buf)
    else:
        df.write_parquet(buf, compression="zstd")
    return buf.getvalue()


def export_bytes(engine: Engine, queue_id: int, kind: str, fmt: str) -> bytes:
    return frame_bytes(export_frame(engine, queue_id, kind), fmt)


def write_export(engine: Engine, queue_id: int, kind: str, fmt: str, out: str | Path) -> int:
    """Write the export to `out` (parent folders created); returns the number of rows."""
    df = export_frame(engine, queue_id, kind)
    data = frame_bytes(df, fmt)
    path = Path(out)
    tmp = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(path)  # never leave half a file under the final name
    except OSError as exc:
        raise ValueError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return df.height


def file_name(queue_id: int, kind: str, fmt: str) -> str:
    return f"queue-{queue_id}-{kind}.{fmt}"

"""Labelling: review queues sampled from the logs, and what the reviewers' answers say.

    from monitoring.labelling import open_db, create_queue, claim_next, answer, queue_report

Modules: `db` (engine, tables, schema version, migrations), `sampling` (the sample, in
DuckDB), `queues` (create, list, close, progress), `claims` (claim, answer, skip, undo,
release), `records` (Item, Progress, errors), `results` (resolved labels,
accuracy, agreement, ground truth), `stats` (pure statistics), `export`, `cli`.
Names are loaded on first use, so the main CLI does not pay for SQLAlchemy until a queue
command runs.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DatabaseError": "db", "SCHEMA_VERSION": "db", "open_db": "db", "reading": "db",
    "schema_version": "db", "upgrade": "db", "writing": "db",
    "QueueSpec": "sampling", "Sample": "sampling", "SamplingError": "sampling", "Segment": "sampling",
    "allocate": "sampling", "draw": "sampling",
    "FLAG_REASONS": "records", "Item": "records", "LabellingError": "records", "LeaseLost": "records",
    "Progress": "records", "VERDICTS": "records", "normalize_reviewer": "records",
    "answer": "claims", "answer_and_next": "claims", "claim_next": "claims", "release": "claims",
    "skip": "claims", "skip_and_next": "claims", "undo_last": "claims",
    "create_queue": "queues", "get_queue": "queues", "list_queues": "queues", "progress": "queues",
    "last_change": "queues", "set_status": "queues", "store_sample": "queues",
    "accuracy": "results", "agreement": "results", "events_frame": "results",
    "ground_truth": "results", "queue_report": "results", "register_ground_truth": "results",
    "resolved_frame": "results", "reviewer_stats": "results", "trend": "results", "window_accuracy": "results",
    "export_bytes": "export", "write_export": "export",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

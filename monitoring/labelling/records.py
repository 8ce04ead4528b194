"""What the labelling queues hand out and report: the claimed `Item`, a queue's `Progress`,
the errors, and the rules for reviewer names and free text. Shared by `queues` (queue
lifecycle and progress) and `claims` (claim, answer, skip, undo)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .db import queues

VERDICTS = ("correct", "wrong", "unsure")
FLAG_REASONS = (
    "Needs a second look",
    "Inputs look wrong or incomplete",
    "Cannot judge from what is shown",
    "Sensitive or personal data",
    "Other (see comment)",
)
MAX_NAME = 100
MAX_TEXT = 5_000


class LabellingError(ValueError):
    """A labelling action cannot be done as asked; the message says why, in one line."""


class LeaseLost(LabellingError):
    """The reviewer's claim on the item ended (expired and taken, or already answered)."""


@dataclass(frozen=True)
class Item:
    """One claimed item, as a reviewer sees it, with the claim that lets them answer."""

    id: int
    queue_id: int
    position: int
    request_id: str
    ts: datetime | None
    model_name: str | None
    model_version: str | None
    endpoint: str | None
    prediction: str | None
    score: float | None
    inputs: dict[str, Any]
    calibration: bool
    claim_token: str
    claimed_at: float
    lease_until: float


@dataclass(frozen=True)
class Progress:
    """Where a queue stands. `done`: items with all the answers they need."""

    size: int
    done: int
    answers: int
    left: int
    in_progress: int
    skipped: int          # items skipped at least once and not done yet
    skips: int            # skip events
    flagged: int          # items whose current answers carry a flag
    mine_done: int = 0    # for one reviewer: their current answers
    mine_skipped: int = 0


def normalize_reviewer(name: str | None) -> str:
    """Trim and collapse spaces; raises LabellingError when empty or too long."""
    clean = " ".join((name or "").split())
    if not clean:
        raise LabellingError("a reviewer needs a name")
    if len(clean) > MAX_NAME:
        raise LabellingError(f"reviewer names are at most {MAX_NAME} characters")
    return clean


def _queue(conn: Connection, queue_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(queues).where(queues.c.id == int(queue_id))).mappings().first()
    if row is None:
        raise LabellingError(f"no queue {queue_id} in this database")
    return dict(row)



def _item(row) -> Item:
    inputs = row["inputs"]
    if isinstance(inputs, str):
        inputs = json.loads(inputs)
    return Item(id=int(row["id"]), queue_id=int(row["queue_id"]), position=int(row["position"]),
                request_id=row["request_id"], ts=row["ts"], model_name=row["model_name"],
                model_version=row["model_version"], endpoint=row["endpoint"],
                prediction=row["prediction"], score=row["score"], inputs=dict(inputs or {}),
                calibration=bool(row["calibration"]), claim_token=row["claim_token"],
                claimed_at=float(row["claimed_at"]), lease_until=float(row["lease_until"]))



def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    if len(value) > MAX_TEXT:
        raise LabellingError(f"text is limited to {MAX_TEXT:,} characters")
    return value


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None

"""The documented incidents injected into the sample logs, at fixed offsets from the start."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from .profile import (
    DEFAULT_START,
    _us,
    _utc_midnight,
)


@dataclass(frozen=True)
class Incident:
    """One injected anomaly: what it is, when (UTC, end exclusive) and its parameters.

    `details` holds what the generator applies, by `kind`:
    latency {"model_version", "factor"}; errors {"error_rate", "error_types"};
    traffic_spike {"factor"}; gap {}; input_drift {"feature", "factor"} for a numeric
    feature or {"feature", "shares"} for a categorical one; prediction_drift {"shares"}.
    """

    name: str
    kind: str
    start: datetime
    end: datetime
    description: str
    details: dict = field(default_factory=dict, hash=False)


# (name, kind, start offset, end offset or None to persist to the end, description, details)
_INCIDENTS: tuple[tuple[str, str, timedelta, timedelta | None, str, dict], ...] = (
    (
        "income_drift",
        "input_drift",
        timedelta(days=10),
        None,
        "Applicant income jumps by 35% and stays there.",
        {"feature": "income", "factor": 1.35},
    ),
    (
        "error_burst",
        "errors",
        timedelta(days=12, hours=14),
        timedelta(days=12, hours=15, minutes=30),
        "A quarter of all requests fail with internal or upstream errors for 90 minutes.",
        {"error_rate": 0.25, "error_types": {"internal_error": 0.7, "upstream_unavailable": 0.3}},
    ),
    (
        "traffic_spike",
        "traffic_spike",
        timedelta(days=15, hours=19),
        timedelta(days=15, hours=20),
        "Traffic jumps to six times its usual level for one hour.",
        {"factor": 6},
    ),
    (
        "downtime_gap",
        "gap",
        timedelta(days=20, hours=2, minutes=10),
        timedelta(days=20, hours=3, minutes=25),
        "The service is down and logs no request for 75 minutes.",
        {},
    ),
    (
        "device_drift",
        "input_drift",
        timedelta(days=22, hours=12),
        None,
        "Android requests grow from 30% to 65% of traffic and stay there.",
        {"feature": "device", "shares": {"web": 0.20, "ios": 0.15, "android": 0.65}},
    ),
    (
        "latency_regression",
        "latency",
        timedelta(days=24, hours=9),
        timedelta(days=26, hours=18),
        "Model v3 answers twenty times slower than usual, pushing the overall P95 past 2 s.",
        {"model_version": "v3", "factor": 20},
    ),
    (
        "prediction_shift",
        "prediction_drift",
        timedelta(days=26),
        timedelta(days=28),
        "The model predicts far more high-risk loans while true risk is unchanged.",
        {"shares": {"low": 0.35, "medium": 0.25, "high": 0.40}},
    ),
)


def incidents(start: datetime = DEFAULT_START, days: int = 30) -> list[Incident]:
    """Incidents that fall inside [start, start + days), in order of start time.

    Each sits at a fixed offset from `start`; its end is clipped to the end of the range,
    and drifts that persist end there. Returns a new list of `Incident`.
    """
    start = _utc_midnight(start)
    end = start + timedelta(days=days)
    found = []
    for name, kind, begin, finish, description, details in _INCIDENTS:
        inc_start = start + begin
        inc_end = end if finish is None else min(start + finish, end)
        if inc_start < end:
            found.append(
                Incident(name, kind, inc_start, inc_end, description, copy.deepcopy(details))
            )
    return found

def _window(t_us: np.ndarray, inc: Incident) -> np.ndarray:
    return (t_us >= _us(inc.start)) & (t_us < _us(inc.end))

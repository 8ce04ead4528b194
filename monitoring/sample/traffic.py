"""How many requests arrive when: the daily and weekly cycle, the rollout and the plan of a
whole range (everything that does not depend on the day)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from .incidents import (
    Incident,
    _window,
    incidents,
)
from .profile import (
    _US_PER_DAY,
    _US_PER_MINUTE,
    LABEL_DELAY,
    PEAK_HOUR,
    ROLLOUT,
    TROUGH_HOUR,
    TROUGH_LEVEL,
    VERSIONS,
    WEEKEND_LEVEL,
    _cumulative,
    _us,
)


def _daily_profile(hours: np.ndarray) -> np.ndarray:
    """Traffic level at an hour of the UTC day, 1 at the peak and TROUGH_LEVEL at the trough."""
    # A raised cosine, stretched to rise over the 11 h from trough to peak and fall over 13 h.
    rise = (PEAK_HOUR - TROUGH_HOUR) % 24
    since = (hours - TROUGH_HOUR) % 24
    phase = np.where(since < rise, 0.5 * since / rise, 0.5 + 0.5 * (since - rise) / (24 - rise))
    return TROUGH_LEVEL + (1 - TROUGH_LEVEL) * (1 - np.cos(2 * np.pi * phase)) / 2

@dataclass(frozen=True)
class _Plan:
    start: datetime
    start_us: int
    seed: int
    label_cutoff_us: int
    per_minute: np.ndarray  # (1440,) expected requests per minute of a weekday, no incident
    rollout_us: np.ndarray  # start of each rollout phase
    version_cum: np.ndarray  # (phases, versions) cumulative shares
    incidents: list[Incident]

    @classmethod
    def build(cls, start: datetime, days: int, rows_per_day: int, seed: int) -> _Plan:
        minute_hours = (np.arange(24 * 60) + 0.5) / 60
        profile = _daily_profile(minute_hours)
        weekly = np.array([_weekly_level(start + timedelta(days=d)) for d in range(days)])
        # Scale so the range holds rows_per_day rows per day on average before incidents.
        per_minute = profile * rows_per_day * days / (profile.sum() * weekly.sum())
        return cls(
            start=start,
            start_us=_us(start),
            seed=seed,
            label_cutoff_us=_us(start + timedelta(days=days) - LABEL_DELAY),
            per_minute=per_minute,
            rollout_us=np.array([_us(start + offset) for offset, _ in ROLLOUT], dtype=np.int64),
            version_cum=np.stack([_cumulative(shares, VERSIONS) for _, shares in ROLLOUT]),
            incidents=incidents(start, days),
        )

    def of_kind(self, kind: str) -> list[Incident]:
        return [inc for inc in self.incidents if inc.kind == kind]

    def rng(self, day: int, stream: int) -> np.random.Generator:
        return np.random.Generator(
            np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(day, stream)))
        )

def _weekly_level(day: datetime) -> float:
    return WEEKEND_LEVEL if day.weekday() >= 5 else 1.0

def _minute_counts(plan: _Plan, day: int) -> np.ndarray:
    """Requests in each of the day's 1440 minutes: Poisson around the traffic intensity."""
    day_start_us = plan.start_us + day * _US_PER_DAY
    lam = plan.per_minute * _weekly_level(plan.start + timedelta(days=day))
    midpoints = (
        day_start_us + np.arange(24 * 60, dtype=np.int64) * _US_PER_MINUTE + _US_PER_MINUTE // 2
    )
    for inc in plan.of_kind("traffic_spike"):
        lam = np.where(_window(midpoints, inc), lam * inc.details["factor"], lam)
    return plan.rng(day, 0).poisson(lam)

"""`auto`'s chunk choice by hand (drift.chunks.choose): the finest unit whose chunks hold the
rows a stable decision needs; when no column can decide at any size, the coarsest unit that
still makes a series. The NannyML case is in test_drift_thirdparty.py."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.drift.chunks import MIN_CHUNKS, choose

H0 = 17_532 * 24     # 2018-01-01 00:00 UTC as an hour number


def hours(days: int, per_hour: int) -> np.ndarray:
    h = np.arange(H0, H0 + 24 * days)
    return np.column_stack([h, np.full(h.size, per_hour)])


@pytest.mark.parametrize("days, need, by, left_out, unit", [
    (10, 1, None, ("a", "b"), "day"),      # nothing decides: 10 days (weeks would be 2)
    (60, 1, None, ("a",), "week"),         # nothing decides: 9 weeks (months would be 2)
    (400, 1, None, ("a",), "month"),       # nothing decides: 14 months
    (10, 100, "x", (), "day"),             # 100 rows a chunk: hours hold 7, days 168
    (10, 1, "x", ("a",), "hour"),          # one column decides at any size: the finest unit
    (10, 5, "x", ("a",), "hour"),
])
def test_choice(days, need, by, left_out, unit):
    c = choose(need, by, 7 * 24 * days, hours(days, 7), left_out)
    assert c.spec.unit == unit, c.reason
    if by is None:
        assert f"at least {MIN_CHUNKS} chunks" in c.reason and "a" in c.reason


def test_nothing_decides_and_too_short_for_a_series_of_hours_falls_back_to_rows():
    three = np.column_stack([np.arange(H0, H0 + 3), np.full(3, 40)])    # 3 hours: no unit has 4 chunks
    c = choose(1, None, 120, three, ("a",))
    assert c.spec.unit == "rows" and c.spec.rows * MIN_CHUNKS <= 120, c.reason

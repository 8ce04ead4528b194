"""A drift alert is stamped when the drift began, not at the start of the chunk (a day) that
first showed it: oracle, the onsets the generator injected (midnight and noon onsets), on
two seeds."""

from __future__ import annotations

import pytest

from monitoring import sample
from monitoring.alerts.engine import evaluate
from monitoring.config import load_config
from monitoring.logs.workspace import open_workspace

# incident -> the drift alert's subject
SUBJECTS = {"income_drift": "income", "device_drift": "device", "prediction_shift": "prediction"}


@pytest.fixture(scope="module", params=[11, 23])
def drift_episodes(request, tmp_path_factory):
    logs = tmp_path_factory.mktemp(f"onset{request.param}") / "logs"
    sample.generate(logs, days=30, rows_per_day=1500, seed=request.param)
    ws = open_workspace(load_config(overrides={"logs": str(logs)}))
    episodes = [e for e in evaluate(ws) if e.rule == "drift"]
    return {inc.name: inc for inc in sample.incidents(days=30)}, episodes


@pytest.mark.slow
@pytest.mark.parametrize("incident", sorted(SUBJECTS))
def test_the_alert_starts_when_the_drift_began(drift_episodes, incident):
    incidents, episodes = drift_episodes
    inc = incidents[incident]
    assert inc.start.hour in (0, 12)                    # midnight and noon onsets, in day chunks
    mine = [e for e in episodes if e.subject == SUBJECTS[incident]]
    assert mine, [(e.subject, e.start) for e in episodes]
    first = min(mine, key=lambda e: e.start)
    assert first.start == inc.start, (first.start, inc.start)


# states per hour: 1 drifted, 0 inconclusive, -1 clean -> index of the onset hour
@pytest.mark.parametrize("states, expected", [
    ([], None),
    ([-1, -1, 0, -1], None),                       # no drifted hour: no onset
    ([1, 1, 1], 0),                                # drifted from the first hour
    ([-1, -1, 1, 1], 2),                           # a clean step
    ([-1, 1, -1, -1, 1, 1, 1], 4),                 # an early blip: 1 misfit at 4, 2 at 1
    ([-1, 0, 0, 1, 1], 3),                         # inconclusive hours count for neither
    ([-1, 1, -1, 1, 1], 1),                        # a tie (one misfit either way): the earliest
    ([1, -1, -1, -1], 0),                          # one drifted hour then clean: still its hour
])
def test_step_onset_fits_a_step_from_clean_to_drifted(states, expected):
    from monitoring.alerts.engine import step_onset
    assert step_onset(states) == expected


@pytest.mark.slow
def test_a_chunk_too_sparse_for_hours_keeps_its_start(tmp_path):
    """Below ONSET_MIN_ROWS_PER_HOUR rows an hour, the noon onset of device_drift is not
    re-read hour by hour: the alert starts at its day's midnight (the chunk that showed it)."""
    from monitoring.alerts import engine
    logs = tmp_path / "logs"
    per_day = 24 * engine.ONSET_MIN_ROWS_PER_HOUR // 2            # half the gate's rows an hour
    sample.generate(logs, days=30, rows_per_day=per_day, seed=11)
    inc = {i.name: i for i in sample.incidents(days=30)}["device_drift"]
    assert inc.start.hour == 12
    ws = open_workspace(load_config(overrides={"logs": str(logs)}))
    mine = [e for e in evaluate(ws) if e.rule == "drift" and e.subject == "device"]
    assert mine
    first = min(mine, key=lambda e: e.start)
    assert first.start.hour == 0 and first.start.date() == inc.start.date(), (first.start, inc.start)

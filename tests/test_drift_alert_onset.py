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

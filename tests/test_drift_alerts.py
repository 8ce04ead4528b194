"""The drift alert rule at low volume, on NannyML's census set as a 4-year history (190
rows a day, reference file = 2015): `alerts check` fires for RELP, AGEP and SCHL at the
spike and for nothing during the stable first year; no floor on rows per day."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitoring.cli.main import main
from tests.test_drift_thirdparty import SHIFTED, census


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("census_alerts")
    return census(tmp, with_time=True), tmp / "census_logs"


def _check(history, at: str, capsys) -> tuple[int, set[str]]:
    cfg, logs = history
    code = main(["alerts", "check", "--config", str(cfg), "--logs", str(logs), "--at", at,
                 "--no-store", "--no-webhook", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    rows = out["firing"]
    return code, {r["subject"] for r in rows if r["rule"] == "drift"}


@pytest.mark.parametrize("at, fires", [
    ("2017-12-24", set(SHIFTED)),   # inside the spike (rows ~133000-144000: Dec 2017 - Jan 2018)
    ("2016-12-31", set()),          # the first year after the reference: stable
])
def test_alerts_check_fires_at_the_spike_and_not_on_the_stable_year(history, capsys, at, fires):
    code, firing = _check(history, at, capsys)
    assert fires <= firing, firing
    if not fires:
        assert firing == set() and code == 0
    else:
        assert code == 1


SILENCE = [  # requests per minute, grid points inside the data -> minutes silent, requests expected in them
    ([1, 0, 0, 1, 0, 0, 0], [True] * 7, [0, 1, 2, 0, 1, 2, 3], [0, 1, 2, 0, 1, 2, 3]),
    ([0, 1, 0, 0], [True] * 6, [0, 0, 1, 2, 2, 2], [0, 0, 1, 2, 2, 2]),   # nothing seen yet; past the data
    ([1, 0, 0, 0], [True, True, False, True], [0, 1, 0, 3], [0, 1, 0, 3]),  # outside the data: 0
]


@pytest.mark.parametrize("counts,within,minutes,expected", SILENCE)
def test_silence_over_the_grid_hand_counted(counts, within, minutes, expected):
    """The gap rule's input, computed for every grid point at once (the drift speed-up of
    the 4-year history): one-minute grid from the epoch, one expected request a minute."""
    from datetime import UTC, datetime, timedelta

    from monitoring.alerts.engine import Context

    n = len(within)
    ctx = Context(step_s=60, b0=0, times=[datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=i + 1) for i in range(n)],
                  series={}, hist=np.zeros((0, 0)), bins=np.zeros(0), minute0=0,
                  minute_counts=np.asarray(counts, dtype=float), minute_expected=np.ones(len(counts)),
                  within_data=np.asarray(within))
    got_min, got_exp = ctx.silence()
    assert got_min.tolist() == minutes and got_exp.tolist() == expected

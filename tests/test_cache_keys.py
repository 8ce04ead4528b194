"""The app's cache keys (`Workspace.fingerprint`) follow the settings as well as the files:
an edited monitoring.toml (an SLO, an alert rule) opens a new workspace, and its figures and
alert episodes are computed again instead of being served from the old settings' cache
until the TTL ran out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from monitoring import sample
from monitoring.config import load_config
from monitoring.logs.workspace import open_workspace


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    out = tmp_path_factory.mktemp("keys") / "logs"
    sample.generate(out, days=2, rows_per_day=200, seed=5)
    return out


def _ws(logs, tmp_path, toml: str = "", db: str = "a"):
    path = tmp_path / f"{abs(hash(toml))}.toml"
    path.write_text(toml)
    cfg = load_config(str(path), {"logs": str(logs)})
    return open_workspace(replace(cfg, data_dir=str(tmp_path / "data"), db_url=f"sqlite:///{tmp_path / db}.sqlite"))


def test_the_fingerprint_changes_with_the_settings_and_only_with_them(logs, tmp_path):
    base = _ws(logs, tmp_path)
    assert _ws(logs, tmp_path).fingerprint == base.fingerprint                 # same files, same settings
    assert _ws(logs, tmp_path, db="b").fingerprint == base.fingerprint         # the database's address
    strict = _ws(logs, tmp_path, "[slo]\nerror_rate = 0.5\n")
    rules = _ws(logs, tmp_path, "[alerts.rules.error_rate]\nenabled = false\n")
    assert len({base.fingerprint, strict.fingerprint, rules.fingerprint}) == 3
    assert all(w.fingerprint.startswith(base.source.fingerprint) for w in (strict, rules))


def test_alert_episodes_are_evaluated_again_for_new_settings(logs, tmp_path, monkeypatch, clear_streamlit_cache):
    from ui import data

    seen = []

    def evaluate(ws):      # stands in for the evaluation: what it was given
        seen.append(ws.config.slo.error_rate)
        return [ws.config.slo.error_rate]

    monkeypatch.setattr(data, "_evaluate", evaluate)
    first, edited = _ws(logs, tmp_path), _ws(logs, tmp_path, "[slo]\nerror_rate = 0.5\n")
    assert data._episodes_future(first, first.fingerprint).result(timeout=60) == [0.01]
    assert data._episodes_future(edited, edited.fingerprint).result(timeout=60) == [0.5]
    assert data._episodes_future(first, first.fingerprint).result(timeout=60) == [0.01]   # cached
    assert seen == [0.01, 0.5]

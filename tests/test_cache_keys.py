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

    def evaluate(ws, run=None):      # stands in for the evaluation: what it was given
        run.mark = data.labels_mark(ws)   # the labels it read, as the real one records them
        seen.append(ws.config.slo.error_rate)
        return [ws.config.slo.error_rate]

    monkeypatch.setattr(data, "_evaluate", evaluate)
    first, edited = _ws(logs, tmp_path), _ws(logs, tmp_path, "[slo]\nerror_rate = 0.5\n")
    assert _newest(data, first) == [0.01]
    assert _newest(data, edited) == [0.5]
    assert _newest(data, first) == [0.01]   # cached
    assert seen == [0.01, 0.5]


def _newest(data, ws, mark=None) -> list:
    """The newest evaluation's episodes for `ws`, waited for here (not through the page's wait,
    which would start the warm-up's imports)."""
    return data._evaluation(ws, ws.fingerprint, mark)[1].future.result(timeout=60)


def _held_at_m2(data, monkeypatch):
    """Labels whose mark the test sets, and an evaluation standing in for the real one: it
    reads the mark when it starts, as the real one does, and the one of mark "m2" holds until
    `hold` is set (`started` once it does). Returns (labels, hold, started, marks seen)."""
    import threading

    labels = {"mark": "m1"}
    hold, started = threading.Event(), threading.Event()
    seen = []

    def evaluate(ws, run):
        run.mark = labels["mark"]
        seen.append(run.mark)
        if run.mark == "m2":
            started.set()
            assert hold.wait(60)
        return [run.mark]

    monkeypatch.setattr(data, "_evaluate", evaluate)
    monkeypatch.setattr(data, "labels_mark", lambda ws: labels["mark"])
    return labels, hold, started, seen


def test_new_labels_start_a_new_evaluation_and_the_last_one_is_shown_meanwhile(logs, tmp_path, monkeypatch,
                                                                           clear_streamlit_cache):
    """A reviewer's verdict (a new labels mark) means a new evaluation of the alert rules; the
    pages that show episodes when ready keep the finished one until it is done."""
    from ui import data

    labels, hold, started, seen = _held_at_m2(data, monkeypatch)
    ws = _ws(logs, tmp_path)
    fp = ws.fingerprint
    assert _newest(data, ws) == ["m1"]
    assert data.alert_episodes_ready(ws, fp) and data.alert_episodes(ws, fp) == ["m1"]
    assert seen == ["m1"]                                    # the same labels: no new evaluation
    labels["mark"] = "m2"
    try:
        assert data.alert_episodes_ready(ws, fp)             # a new one started ...
        assert data.alert_episodes(ws, fp) == ["m1"]         # ... the finished one shown meanwhile
        assert started.wait(60)
        shown, newest = data._evaluation(ws, fp)
        assert shown.mark == "m1" and newest.mark == "m2" and not newest.future.done()
    finally:
        hold.set()
    assert _newest(data, ws, "m2") == ["m2"]
    assert data.alert_episodes(ws, fp) == data.alert_episodes(ws, fp, "m2") == ["m2"]
    assert seen == ["m1", "m2"]                              # one evaluation per mark


def test_verdicts_recorded_while_an_evaluation_runs_queue_one_more_however_many(logs, tmp_path, monkeypatch,
                                                                             clear_streamlit_cache):
    """A reviewer answering item after item while the rules are evaluated (26 s at 100M rows)
    starts one more evaluation, not one per answer: a queued one reads the labels when it
    starts, newer than any page's mark meanwhile."""
    from ui import data

    labels, hold, started, seen = _held_at_m2(data, monkeypatch)
    ws = _ws(logs, tmp_path)
    fp = ws.fingerprint
    assert _newest(data, ws) == ["m1"]
    labels["mark"] = "m2"
    try:
        assert data.alert_episodes_ready(ws, fp) and started.wait(60)   # m2's evaluation runs, held
        for answer in range(3, 8):                              # five more answers, a page run each
            labels["mark"] = f"m{answer}"
            assert data.alert_episodes(ws, fp) == ["m1"]
        assert len(data._evaluations(ws, fp).runs) == 3         # shown m1, running m2, one queued
    finally:
        hold.set()
    assert _newest(data, ws, "m7") == ["m7"]
    assert seen == ["m1", "m2", "m7"]


def test_the_fleet_shows_a_verdict_recorded_after_it_was_computed(logs, tmp_path, clear_streamlit_cache):
    """The Models page's production accuracy (ui.compare.models, cached ten minutes) is keyed
    by the labels mark: answers recorded after a first computation are in the next one, and
    its labelled count and accuracy are sqlite3's count of the answers."""
    import sqlite3

    from monitoring.labelling import db, queues
    from monitoring.labelling.sampling import QueueSpec
    from ui import compare as uc

    ws = _ws(logs, tmp_path)
    before = {r.version: r.labelled for r in uc.models(ws, ws.fingerprint).rows}
    engine = db.open_db(ws.config.database_url)
    q = queues.create_queue(engine, ws.source, ws.con, QueueSpec(size=5, seed=2))
    for verdict in ("correct", "wrong", "correct"):
        queues.answer(engine, queues.claim_next(engine, q, "ana"), "ana", verdict)
    engine.dispose()
    after = {r.version: (r.labelled, r.accuracy) for r in uc.models(ws, ws.fingerprint).rows}
    con = sqlite3.connect(ws.config.database_url.removeprefix("sqlite:///"))
    oracle = {v: (n, k / n) for v, n, k in con.execute(
        "SELECT i.model_version, count(*), count(*) FILTER (WHERE e.verdict = 'correct') FROM labelling_events e "
        "JOIN labelling_items i ON i.id = e.item_id WHERE e.action = 'answer' GROUP BY 1")}
    con.close()
    assert sum(n for n, _ in oracle.values()) == 3
    assert {v: after[v] for v in oracle} == oracle and before != {v: a[0] for v, a in after.items()}


def test_the_weekly_summary_shows_a_verdict_recorded_after_it_was_written(logs, tmp_path, monkeypatch,
                                                                         clear_streamlit_cache):
    """Weekly health (ui.data.weekly, cached ten minutes) is keyed by the labels mark: its
    accuracy after three answers is sqlite3's count of them (the alert evaluation it waits for
    is stood in for: its keying is the test above)."""
    import sqlite3

    from monitoring.labelling import db, queues
    from monitoring.labelling.sampling import QueueSpec
    from monitoring.reports.summary import default_week
    from ui import data, warm

    monkeypatch.setattr(data, "_evaluate", lambda ws, run=None: [])
    monkeypatch.setattr(warm, "start", lambda modules=None: None)   # a wait here imports no page
    ws = _ws(logs, tmp_path)
    week = default_week(ws)
    assert data.weekly(ws, ws.fingerprint, week)["areas"]["accuracy"]["labelled"] == 0   # no labels yet
    engine = db.open_db(ws.config.database_url)
    q = queues.create_queue(engine, ws.source, ws.con, QueueSpec(size=5, seed=2))
    for verdict in ("correct", "wrong", "correct"):
        queues.answer(engine, queues.claim_next(engine, q, "ana"), "ana", verdict)
    engine.dispose()
    acc = data.weekly(ws, ws.fingerprint, week)["areas"]["accuracy"]
    con = sqlite3.connect(ws.config.database_url.removeprefix("sqlite:///"))
    n, k = con.execute("SELECT count(*), count(*) FILTER (WHERE verdict = 'correct') FROM labelling_events "
                       "WHERE action = 'answer'").fetchone()
    con.close()
    assert (acc["labelled"], acc["accuracy"]) == (n, k / n) == (3, 2 / 3)

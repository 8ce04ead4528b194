"""The check is where the write happens: every write function in monitoring/ refuses the
wrong role with PermissionDenied, changes nothing then, and records both the refusal and
every accepted write in the audit trail under the user who made it.

Runs on a SQLite file and on the PostgreSQL server the suite starts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from monitoring.alerts.engine import Episode
from monitoring.alerts.store import acknowledge, history, open_alerts_db, sync
from monitoring.auth import audit
from monitoring.auth.roles import Actor, PermissionDenied
from monitoring.auth.settings import ROLES, load
from monitoring.drift.settings import save_reference_window
from monitoring.labelling import db, export, queues
from tests.test_labelling_queue import T0, synthetic_queue

PASSWORD = load({"mode": "password"})
ROLE_OF = {"viewer": 0, "reviewer": 1, "lead": 2, "admin": 3}


def who(role: str, name: str | None = None) -> Actor:
    return Actor(name or f"{role}-user", role, session=f"s-{role}", via="web", authenticated=True)


@pytest.fixture
def engine(any_db_url):
    e = db.open_db(any_db_url)
    yield e
    e.dispose()


def _episode(engine) -> int:
    ep = Episode(rule="error_rate", subject="all", area="errors", title="Error rate", page="Errors",
                 start=datetime(2026, 11, 5, 14, tzinfo=UTC), end=None, peak=0.2, threshold=0.01,
                 unit="", message="error rate 20%")
    alerts = open_alerts_db(str(engine.url.render_as_string(hide_password=False)))
    sync(alerts, "logs", [ep])
    return alerts, int(history(alerts, "logs")["id"][0])


def synthetic_queue_as(engine, actor):
    import polars as pl

    from monitoring.labelling.sampling import QueueSpec, Sample

    items = pl.DataFrame({"request_id": ["r0"], "ts": [datetime(2026, 11, 1, tzinfo=UTC)],
                          "model_name": ["m"], "model_version": ["v1"], "endpoint": ["/p"],
                          "prediction": ["a"], "score": [0.5], "inputs": ["{}"], "stratum": ["all"],
                          "reason": ["random"], "weight": [1.0], "position": [1], "calibration": [False]})
    sample = Sample(items=items, population=10, strata={"all": 10}, allocation={"all": 1},
                    features=[], classes=["a", "b"])
    return queues.store_sample(engine, sample, QueueSpec(size=1, seed=1), logs="x", actor=actor)


# Each write and the least role that may make it (the table).
WRITES = {
    "queue.create": ("lead", lambda e, q, a: synthetic_queue_as(e, a)),
    "queue.close": ("lead", lambda e, q, a: queues.set_status(e, q, "closed", actor=a)),
    "queue.export": ("lead", lambda e, q, a: export.export_bytes(e, q, "events", "csv", actor=a)),
    "label.claim": ("reviewer", lambda e, q, a: queues.claim_next(e, q, a.name, now=T0, actor=a)),
    "label.answer": ("reviewer", lambda e, q, a: queues.answer(
        e, queues.claim_next(e, q, a.name, now=T0, actor=a), a.name, "correct", now=T0, actor=a)),
    "label.undo": ("reviewer", lambda e, q, a: queues.undo_last(e, q, a.name, now=T0, actor=a)),
    "alert.acknowledge": ("lead", None),
    "drift.reference": ("lead", None),
}


def _state(engine, q):
    import sqlalchemy as sa

    with engine.connect() as conn:
        return [tuple(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in
                      ("labelling_queues", "labelling_events"))] + [queues.get_queue(engine, q)["status"]]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("write", ["queue.create", "queue.close", "queue.export", "label.claim",
                                   "label.answer"])
def test_labelling_writes_check_the_role(engine, write, role):
    q = synthetic_queue(engine, 3)
    least, call = WRITES[write]
    actor = who(role)
    if ROLE_OF[role] >= ROLE_OF[least]:
        call(engine, q, actor)
        return
    before = _state(engine, q) if write != "label.answer" else None
    if write == "label.answer":   # the item is claimed first by a lead; the answer is what is checked
        item = queues.claim_next(engine, q, "boss", now=T0, actor=who("lead", "boss"))
        before = _state(engine, q)
        with pytest.raises(PermissionDenied, match="needs the reviewer role"):
            queues.answer(engine, item, actor.name, "correct", now=T0, actor=actor)
    else:
        with pytest.raises(PermissionDenied, match=f"needs the {least} role"):
            call(engine, q, actor)
    assert _state(engine, q) == before
    denied = audit.query(engine, outcome="denied")
    assert denied["actor"].to_list() == [actor.name] and denied["session"][0] == f"s-{role}"


def test_a_signed_in_reviewer_cannot_answer_as_someone_else(engine):
    """The impostor of the issue: mallory, signed in, names ana and tries her leased item."""
    q = synthetic_queue(engine, 2)
    ana, mallory = who("reviewer", "ana"), who("reviewer", "mallory")
    item = queues.claim_next(engine, q, "ana", now=T0, actor=ana)
    for call in (lambda: queues.claim_next(engine, q, "ana", now=T0, actor=mallory),
                 lambda: queues.answer(engine, item, "ana", "wrong", now=T0, actor=mallory),
                 lambda: queues.skip(engine, item, "ana", now=T0, actor=mallory),
                 lambda: queues.undo_last(engine, q, "ana", now=T0, actor=mallory),
                 lambda: queues.release(engine, item, "ana", actor=mallory)):
        with pytest.raises(PermissionDenied, match="signed in as mallory"):
            call()
    # ana's claim is untouched and her answer goes through
    queues.answer(engine, item, "ana", "correct", now=T0, actor=ana)
    assert queues.progress(engine, q, "ana").mine_done == 1
    # with an actor, the name can be left out: the answer carries the signed-in user
    item2 = queues.claim_next(engine, q, "", now=T0, actor=ana)
    assert queues.answer(engine, item2, "", "correct", now=T0, actor=ana)
    assert queues.progress(engine, q, "ana").mine_done == 2


def test_every_write_is_on_the_trail_under_its_user(engine):
    lea, ana = who("lead", "lea"), who("reviewer", "ana")
    q = synthetic_queue_as(engine, lea)
    item = queues.claim_next(engine, q, "", now=T0, actor=ana)
    queues.answer(engine, item, "", "wrong", correct_label="b", now=T0, actor=ana)
    queues.undo_last(engine, q, "", now=T0 + 1, actor=ana)
    item = queues.claim_next(engine, q, "", now=T0 + 2, actor=ana)
    queues.skip(engine, item, "", now=T0 + 3, actor=ana)
    export.export_bytes(engine, q, "labels", "csv", actor=lea)
    queues.set_status(engine, q, "closed", actor=lea)
    trail = audit.query(engine).reverse()
    assert list(zip(trail["actor"], trail["action"], trail["session"], strict=True)) == [
        ("lea", "queue.create", "s-lead"), ("ana", "label.answer", "s-reviewer"),
        ("ana", "label.undo", "s-reviewer"), ("ana", "label.skip", "s-reviewer"),
        ("lea", "queue.export", "s-lead"), ("lea", "queue.close", "s-lead")]
    answer = json.loads(trail["detail"][1])
    assert (answer["verdict"], answer["correct_label"], answer["reviewer"]) == ("wrong", "b", "ana")
    assert queues.get_queue(engine, q)["created_by"] == "lea"


@pytest.mark.parametrize("role", ROLES)
def test_acknowledging_an_alert_needs_lead(engine, role):
    alerts, eid = _episode(engine)
    actor = who(role)
    if ROLE_OF[role] >= ROLE_OF["lead"]:
        acknowledge(alerts, eid, "", "on it", actor=actor)
        assert history(alerts, "logs")["ack_by"][0] == actor.name   # no typed name
        assert audit.query(alerts, action="alert")["actor"].to_list() == [actor.name]
    else:
        with pytest.raises(PermissionDenied, match="needs the lead role"):
            acknowledge(alerts, eid, actor.name, actor=actor)
        assert history(alerts, "logs")["ack_by"][0] is None
    with pytest.raises(PermissionDenied):
        acknowledge(alerts, eid, "somebody else", actor=who("admin", "root"))
    alerts.dispose()


@pytest.mark.parametrize("role", ROLES)
def test_saving_the_drift_reference_needs_lead(engine, role, tmp_path):
    cfg = tmp_path / "monitoring.toml"
    cfg.write_text("# mine\n")
    start, end = datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)
    actor = who(role)
    if ROLE_OF[role] >= ROLE_OF["lead"]:
        save_reference_window(cfg, start, end, actor=actor, audit_db=engine)
        assert 'reference_start = "2026-10-24T00:00:00Z"' in cfg.read_text()
        row = audit.query(engine, action="drift")
        assert row["actor"].to_list() == [actor.name]
        assert json.loads(row["detail"][0])["reference_end"] == "2026-10-31T00:00:00Z"
    else:
        with pytest.raises(PermissionDenied, match="change the drift reference"):
            save_reference_window(cfg, start, end, actor=actor, audit_db=engine)
        assert cfg.read_text() == "# mine\n"


def test_with_sign_in_on_a_write_without_a_user_is_refused(engine, tmp_path, monkeypatch):
    cfg = tmp_path / "monitoring.toml"
    cfg.write_text('[auth]\nmode = "password"\n')
    monkeypatch.setenv("MONITORING_CONFIG", str(cfg))
    q = synthetic_queue_as(engine, who("lead"))
    for call in (lambda: queues.claim_next(engine, q, "ana", now=T0),
                 lambda: queues.set_status(engine, q, "closed"),
                 lambda: export.export_bytes(engine, q, "labels", "csv"),
                 lambda: synthetic_queue_as(engine, None)):
        with pytest.raises(PermissionDenied, match="sign in first"):
            call()


def test_in_none_mode_writes_default_to_the_local_user(engine):
    """The laptop: no actor is needed, typed names stand, and the trail names the login user."""
    from monitoring.auth.roles import local_actor

    q = synthetic_queue(engine, 2)
    item = queues.claim_next(engine, q, "ana", now=T0)
    queues.answer(engine, item, "ana", "correct", now=T0)
    queues.set_status(engine, q, "closed")
    trail = audit.query(engine).reverse()
    me = local_actor().name
    assert list(zip(trail["actor"], trail["action"], trail["via"], strict=True)) == [
        (me, "queue.create", "local"), (me, "label.answer", "local"), (me, "queue.close", "local")]
    assert json.loads(trail["detail"][1])["reviewer"] == "ana"

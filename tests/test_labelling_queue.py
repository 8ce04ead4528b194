"""Queues in the database: claims, leases, answers, skips, undo, calibration, results, export.

Each test runs on a SQLite file and on the PostgreSQL server the suite starts. Queues are
built from small synthetic samples so every count can be checked by hand.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl
import pytest

from monitoring.labelling import db, export, queues, results
from monitoring.labelling.queues import LabellingError, LeaseLost
from monitoring.labelling.sampling import QueueSpec, Sample
from monitoring.labelling.stats import wilson_interval

T0 = 1_800_000_000.0   # a fixed clock: leases are checked without sleeping


def synthetic_queue(engine, n: int = 10, *, calibration: int = 0, reviewers: int = 2,
                    versions=("v1", "v2"), lease: float = 60.0, weights=None, reason=None) -> int:
    """A queue of `n` items r0..r{n-1}: predictions cycle a/b, versions alternate."""
    ts = datetime(2026, 11, 1, tzinfo=UTC)
    items = pl.DataFrame({
        "request_id": [f"r{i}" for i in range(n)],
        "ts": [ts + timedelta(minutes=i) for i in range(n)],
        "model_name": ["m"] * n,
        "model_version": [versions[i % len(versions)] for i in range(n)],
        "endpoint": ["/predict"] * n,
        "prediction": ["a" if i % 2 == 0 else "b" for i in range(n)],
        "score": [0.5 + i / (2 * n) for i in range(n)],
        "inputs": [json.dumps({"x": i, "city": "Lyon"}) for i in range(n)],
        "stratum": ["all"] * n,
        "reason": [reason(i) if reason else "random" for i in range(n)],
        "weight": [weights[i] if weights else 1.0 for i in range(n)],
        "position": list(range(1, n + 1)),
        "calibration": [i < calibration for i in range(n)],
    })
    sample = Sample(items=items, population=1000, strata={"all": 1000}, allocation={"all": n},
                    features=["x", "city"], classes=["a", "b", "c"])
    spec = QueueSpec(size=n, seed=1, lease_seconds=lease, calibration_share=calibration / n,
                     calibration_reviewers=reviewers)
    return queues.store_sample(engine, sample, spec, logs="synthetic")


@pytest.fixture
def engine(any_db_url):
    e = db.open_db(any_db_url)
    yield e
    e.dispose()


def test_claims_are_exclusive_and_own_claim_comes_back_first(engine):
    q = synthetic_queue(engine, 3)
    a = queues.claim_next(engine, q, "ana", now=T0)
    b = queues.claim_next(engine, q, "ben", now=T0)
    assert (a.position, b.position) == (1, 2)
    again = queues.claim_next(engine, q, " ana ", now=T0 + 30)   # names are trimmed
    assert again.id == a.id and again.claim_token == a.claim_token
    assert again.lease_until == T0 + 30 + 60                      # lease renewed
    assert a.inputs == {"x": 0, "city": "Lyon"} and a.prediction == "a" and a.model_version == "v1"
    c = queues.claim_next(engine, q, "cat", now=T0)
    assert c.position == 3
    assert queues.claim_next(engine, q, "dan", now=T0) is None   # all held


def test_an_expired_lease_returns_the_item_and_the_late_answer_is_refused(engine):
    q = synthetic_queue(engine, 1, lease=10)
    a = queues.claim_next(engine, q, "ana", now=T0)
    assert queues.claim_next(engine, q, "ben", now=T0 + 9) is None
    b = queues.claim_next(engine, q, "ben", now=T0 + 11)
    assert b.id == a.id
    with pytest.raises(LeaseLost):
        queues.answer(engine, a, "ana", "correct", now=T0 + 12)
    queues.answer(engine, b, "ben", "wrong", correct_label="c", now=T0 + 15)
    p = queues.progress(engine, q)
    assert (p.done, p.answers, p.left) == (1, 1, 0)
    ev = results.events_frame(engine, q)
    assert ev["reviewer"].to_list() == ["ben"] and ev["seconds_spent"][0] == pytest.approx(4.0)


def test_an_expired_lease_nobody_took_still_accepts_the_answer(engine):
    q = synthetic_queue(engine, 1, lease=10)
    a = queues.claim_next(engine, q, "ana", now=T0)
    queues.answer(engine, a, "ana", "correct", now=T0 + 100)
    assert queues.progress(engine, q).done == 1


def test_skip_returns_the_item_to_others_and_is_recorded(engine):
    q = synthetic_queue(engine, 2)
    a = queues.claim_next(engine, q, "ana", now=T0)
    queues.skip(engine, a, "ana", now=T0 + 1)
    nxt = queues.claim_next(engine, q, "ana", now=T0 + 2)
    assert nxt.position == 2                                     # not the skipped one
    queues.answer(engine, nxt, "ana", "correct", now=T0 + 3)
    assert queues.claim_next(engine, q, "ana", now=T0 + 4) is None
    p = queues.progress(engine, q, "ana")
    assert (p.skipped, p.skips, p.mine_skipped, p.left) == (1, 1, 1, 1)
    back = queues.claim_next(engine, q, "ana", revisit_skipped=True, now=T0 + 5)
    assert back.id == a.id
    ben = synthetic_queue(engine, 1)
    x = queues.claim_next(engine, ben, "ana", now=T0)
    queues.skip(engine, x, "ana", now=T0)
    assert queues.claim_next(engine, ben, "ben", now=T0).id == x.id   # others get it


def test_undo_supersedes_the_answer_and_gives_the_item_back(engine):
    q = synthetic_queue(engine, 3)
    first = queues.claim_next(engine, q, "ana", now=T0)
    e1 = queues.answer(engine, first, "ana", "wrong", correct_label="b", flag_reason="odd", now=T0 + 5)
    second = queues.claim_next(engine, q, "ana", now=T0 + 6)
    queues.release(engine, second, "ana")
    back = queues.undo_last(engine, q, "ana", now=T0 + 7)
    assert back.id == first.id
    assert queues.progress(engine, q).done == 0
    assert queues.claim_next(engine, q, "ana", now=T0 + 8).id == first.id
    queues.answer(engine, back, "ana", "correct", now=T0 + 9)
    ev = results.events_frame(engine, q)
    assert ev["action"].to_list() == ["answer", "undo", "answer"]       # nothing deleted
    assert ev.filter(pl.col("action") == "undo")["supersedes"].to_list() == [e1]
    r = results.resolved_frame(engine, q)
    assert r.select("request_id", "verdict", "flagged").rows() == [("r0", "correct", False)]
    queues.undo_last(engine, q, "ana", now=T0 + 10)
    with pytest.raises(LabellingError, match="nothing to undo"):
        queues.undo_last(engine, q, "ana", now=T0 + 11)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"verdict": "maybe"}, "verdict"),
    ({"verdict": "correct", "correct_label": "b"}, "goes with a 'wrong'"),
    ({"verdict": "wrong", "correct_label": "a"}, "prediction itself"),
    ({"verdict": "wrong", "comment": "x" * 6000}, "limited"),
])
def test_bad_answers_are_refused_and_leave_the_claim(engine, kwargs, match):
    q = synthetic_queue(engine, 1)
    a = queues.claim_next(engine, q, "ana", now=T0)
    kwargs = dict(kwargs)
    verdict = kwargs.pop("verdict")
    with pytest.raises(LabellingError, match=match):
        queues.answer(engine, a, "ana", verdict, now=T0 + 1, **kwargs)
    assert queues.claim_next(engine, q, "ana", now=T0 + 2).id == a.id


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_reviewer_names_are_checked(engine, name):
    q = synthetic_queue(engine, 1)
    with pytest.raises(LabellingError):
        queues.claim_next(engine, q, name)


def test_a_closed_queue_hands_out_nothing(engine):
    q = synthetic_queue(engine, 2)
    queues.set_status(engine, q, "closed")
    assert queues.claim_next(engine, q, "ana") is None
    queues.set_status(engine, q, "open")
    assert queues.claim_next(engine, q, "ana") is not None
    with pytest.raises(LabellingError, match="no queue 999"):
        queues.claim_next(engine, 999, "ana")


def _answer_all(engine, q, reviewer, verdicts, t=T0):
    for v in verdicts:
        item = queues.claim_next(engine, q, reviewer, now=t)
        assert item is not None, f"{reviewer} found nothing for {v}"
        label = None
        if isinstance(v, tuple):
            v, label = v
        queues.answer(engine, item, reviewer, v, correct_label=label, now=t + 2)


def test_calibration_items_need_distinct_reviewers_and_agreement_is_kappa(engine):
    q = synthetic_queue(engine, 4, calibration=2)
    _answer_all(engine, q, "ana", ["correct", "wrong", "correct", "correct"])
    assert queues.claim_next(engine, q, "ana", now=T0) is None    # calibration items wait for others
    p = queues.progress(engine, q)
    assert (p.done, p.answers, p.left) == (2, 4, 2)
    _answer_all(engine, q, "ben", ["correct", "correct"])         # the two calibration items
    assert queues.progress(engine, q).done == 4
    ag = results.agreement(engine, q)
    # ana: correct, wrong; ben: correct, correct -> p_o 0.5, p_e 0.5 * 1 + 0.5 * 0 -> kappa 0.
    assert ag["method"] == "cohen_kappa" and ag["items"] == 2
    assert ag["value"] == pytest.approx(0.0) and ag["percent_agreement"] == 0.5
    r = results.resolved_frame(engine, q).sort("position")
    assert r["tie"].to_list() == [False, True, False, False]
    rep = results.queue_report(engine, q)
    assert rep["ties"] == 1 and rep["accuracy_n"] == 3


def test_three_reviewers_use_krippendorff_alpha(engine):
    q = synthetic_queue(engine, 2, calibration=2, reviewers=3)
    for r in ("ana", "ben", "cat"):
        _answer_all(engine, q, r, ["correct", "wrong" if r == "cat" else "correct"])
    ag = results.agreement(engine, q)
    assert ag["method"] == "krippendorff_alpha" and ag["items"] == 2
    assert ag["reviewers"] == ["ana", "ben", "cat"]
    assert ag["percent_agreement"] == pytest.approx((6 + 2) / 12)


def test_accuracy_progress_and_results_by_hand(engine):
    # r0..r9 alternate prediction a/b and version v1/v2; ana answers r0-r4, ben r5-r9.
    q = synthetic_queue(engine, 10)
    verdicts = ["correct", ("wrong", "a"), "correct", "correct", "unsure",
                "correct", "wrong", "correct", ("wrong", "c"), "correct"]
    _answer_all(engine, q, "ana", verdicts[:5])
    _answer_all(engine, q, "ben", verdicts[5:])
    rep = results.queue_report(engine, q)
    # 9 decisive answers (the unsure one is counted apart), 6 of them correct.
    assert (rep["size"], rep["labelled"], rep["unsure"], rep["accuracy_n"]) == (10, 10, 1, 9)
    assert rep["accuracy"] == pytest.approx(6 / 9)
    assert rep["accuracy_ci"] == pytest.approx(list(wilson_interval(6, 9)))
    by_v = {r["model_version"]: (r["correct"], r["n"]) for r in rep["by_version"]}
    assert by_v == {"v1": (2, 4), "v2": (4, 5)}
    assert {r["prediction"]: (r["correct"], r["n"]) for r in rep["by_class"]} == {"a": (2, 4), "b": (4, 5)}
    # Known true labels: a a a b b b b (from correct answers and given labels) and c (r8);
    # r6 was wrong without a label, so it has none.
    s = {r["class"]: r for r in rep["class_scores"]}
    assert (s["a"]["precision"], s["a"]["recall"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert (s["b"]["precision"], s["b"]["recall"]) == (pytest.approx(4 / 5), 1.0)
    assert (s["c"]["precision"], s["c"]["recall"], s["c"]["support"]) == (None, 0.0, 1)
    assert {r["reviewer"]: r["answers"] for r in rep["reviewers"]} == {"ana": 5, "ben": 5}
    assert rep["reviewers"][0]["median_seconds"] == pytest.approx(2.0)
    assert rep["reviewers"][0]["items_per_hour"] == pytest.approx(1800.0)


def test_design_weights_widen_the_interval_and_targeted_items_stay_apart(engine):
    weights = [1.0, 1.0, 3.0, 3.0, 1.0, 1.0]
    q = synthetic_queue(engine, 6, weights=weights,
                        reason=lambda i: "low_score" if i >= 4 else "random")
    _answer_all(engine, q, "ana", ["correct", "wrong", "correct", "correct", "wrong", "wrong"])
    rep = results.queue_report(engine, q)
    assert rep["accuracy"] == pytest.approx(7 / 8) and rep["effective_n"] == pytest.approx(3.2)
    assert rep["accuracy_ci"] == pytest.approx(list(wilson_interval(0.875 * 3.2, 3.2)))
    assert rep["targeted"] == [{"reason": "low_score", "correct": 0, "n": 2, "accuracy": 0.0,
                                "ci_low": 0.0, "ci_high": pytest.approx(wilson_interval(0, 2)[1]),
                                "effective_n": 2.0}]


def test_trend_has_a_point_per_queue_and_version(engine):
    for _ in range(2):
        q = synthetic_queue(engine, 4)
        _answer_all(engine, q, "ana", ["correct", "wrong", "correct", "correct"])
    t = results.trend(engine)
    assert t.filter(pl.col("group") == "all")["accuracy"].to_list() == [0.75, 0.75]
    assert sorted(set(t["group"].to_list())) == ["all", "v1", "v2"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_exports_round_trip(engine, fmt, tmp_path):
    q = synthetic_queue(engine, 4, calibration=1)
    _answer_all(engine, q, "ana", ["correct", ("wrong", "a"), "unsure", "correct"])
    _answer_all(engine, q, "ben", ["wrong"])
    queues.undo_last(engine, q, "ana")
    for kind, rows in (("labels", 3), ("events", 6)):
        data = export.export_bytes(engine, q, kind, fmt)
        read = {"csv": pl.read_csv, "jsonl": pl.read_ndjson, "parquet": pl.read_parquet}[fmt]
        df = read(io.BytesIO(data))
        assert df.height == rows, kind
        if kind == "labels":
            r0 = df.filter(pl.col("request_id") == "r0").row(0, named=True)
            assert (r0["votes"], r0["tie"], r0["calibration"]) == (2, True, True)
            assert json.loads(r0["inputs"]) == {"x": 0, "city": "Lyon"}
        else:
            assert df["action"].to_list() == ["answer", "answer", "answer", "answer", "answer", "undo"]
    out = tmp_path / "x" / f"labels.{fmt}"
    assert export.write_export(engine, q, "labels", fmt, out) == 3 and out.stat().st_size > 0


def test_ground_truth_joins_the_logs_in_duckdb(engine):
    q1 = synthetic_queue(engine, 3)
    _answer_all(engine, q1, "ana", ["correct", ("wrong", "c"), "unsure"])
    q2 = synthetic_queue(engine, 2)                     # r0 and r1 reviewed again, later
    _answer_all(engine, q2, "ben", ["wrong", "correct"], t=T0 + 100)
    truth = results.ground_truth(engine)
    assert truth.columns[:3] == ["request_id", "label", "labeled_at"]
    assert truth.select("request_id", "label", "correct", "queue_id").rows() == [
        ("r0", None, False, q2), ("r1", "b", True, q2)]           # r2 unsure: no truth
    con = duckdb.connect()
    con.execute("CREATE TABLE logs AS SELECT * FROM (VALUES ('r0', 'a'), ('r1', 'b'), ('r9', 'a')) "
                "AS t(request_id, prediction)")
    assert results.register_ground_truth(con, engine) == 2
    joined = con.execute("SELECT l.request_id, g.label, g.correct FROM logs l JOIN review_labels g "
                         "USING (request_id) ORDER BY 1").fetchall()
    assert joined == [("r0", None, False), ("r1", "b", True)]
    with pytest.raises(ValueError):
        results.register_ground_truth(con, engine, name="x; DROP TABLE logs")


def test_window_accuracy_pools_queues_by_request_time(engine):
    q1 = synthetic_queue(engine, 4)                      # r0..r3 served 2026-11-01 00:00..00:03
    _answer_all(engine, q1, "ana", ["correct", "wrong", "correct", "unsure"])
    q2 = synthetic_queue(engine, 2, weights=[5.0, 5.0])
    _answer_all(engine, q2, "ben", ["correct", "correct"])
    start = datetime(2026, 11, 1, tzinfo=UTC)
    w = results.window_accuracy(engine, start, start + timedelta(days=1))
    assert (w["accuracy"], w["n"], w["labelled"], w["queues"]) == (0.8, 5, 6, [q1, q2])
    assert w["accuracy_ci"] == pytest.approx(list(wilson_interval(4, 5)))
    late = results.window_accuracy(engine, start + timedelta(minutes=2), start + timedelta(days=1))
    assert (late["accuracy"], late["n"]) == (1.0, 1)
    none = results.window_accuracy(engine, start - timedelta(days=2), start)
    assert none["accuracy"] is None and none["labelled"] == 0

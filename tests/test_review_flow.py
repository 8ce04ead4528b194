"""The reviewer's day: fixed keys per label value, the answer and the next item in one
transaction, a reload that keeps the reviewer and the held item, values formatted for people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitoring.fmt import value
from monitoring.labelling import db, queues, results
from tests.page_helpers import make_queue, open_review, shown_request


def label_buttons(at) -> dict[str, tuple[str, str]]:
    """shortcut -> (label value, button type) for the label-value buttons."""
    out = {}
    for b in at.button:
        if (b.key or "").startswith("label_key_"):
            out[b.proto.shortcut] = (b.label.removesuffix(" (predicted)"), b.proto.type)
    return out


@pytest.mark.parametrize("v, expected", [
    (48680.0, "48,680"), (7, "7"), (1_000_000, "1,000,000"), (-0.5, "-0.5"), (3.14159, "3.142"),
    (0.123456, "0.1235"), (48680.5, "48,680.5"), (1234567.891, "1,234,567.89"), (1e20, "1e+20"),
    (float("nan"), "–"), (None, "–"), (True, "true"),
    (datetime(2026, 11, 3, 10, tzinfo=timezone(timedelta(hours=1))), "2026-11-03 09:00:00 UTC"),
    (datetime(2026, 11, 3, 10), "2026-11-03 10:00:00 UTC"),            # naive logs are UTC
    ("2026-11-03T10:00:00+01:00", "2026-11-03 09:00:00 UTC"),          # a datetime input, as stored
    ("00123", "00123"), ("48680.0", "48680.0"), ("<b>x</b>", "<b>x</b>"),  # text stays text
])
def test_values_read_like_numbers_and_utc_times(v, expected):
    assert value(v) == expected


@pytest.mark.parametrize("text, expected", [("48680.0", "48,680"), ("-12", "-12"), ("0.25", "0.25"),
                                            ("high", "high"), ("1e3", "1,000")])
def test_a_numeric_prediction_stored_as_text_reads_as_a_number(text, expected):
    assert value(text, numeric_text=True) == expected


def test_each_label_value_keeps_its_key_and_the_prediction_is_highlighted(app_env, generated_logs, tmp_path):
    url = f"sqlite:///{tmp_path / 'keys.sqlite'}"
    q = make_queue(generated_logs, url, size=12)
    engine = db.open_db(url)
    classes = queues.get_queue(engine, q)["classes"]
    engine.dispose()
    assert classes == sorted(classes) and len(classes) >= 2
    want = {str(i + 1): c for i, c in enumerate(classes)}          # the oracle: fixed per queue
    at = open_review(app_env(generated_logs, db_url=url))
    predictions = set()
    for _ in range(6):
        pred = next(m for m in at.metric if m.label == "Prediction").value
        predictions.add(pred)
        keys = label_buttons(at)
        assert {k: v for k, (v, _) in keys.items()} == want
        assert [v for v, kind in keys.values() if kind == "primary"] == [pred]
        at.button(key="answer_unsure").click()
        at.run()
    assert len(predictions) >= 2            # the mapping held across different predictions


def test_the_predicted_values_key_means_correct_and_another_means_wrong_with_it(app_env, generated_logs,
                                                                                tmp_path):
    url = f"sqlite:///{tmp_path / 'k.sqlite'}"
    q = make_queue(generated_logs, url, size=12)
    at = open_review(app_env(generated_logs, db_url=url))
    expected = []
    for i in range(4):
        pred = next(m for m in at.metric if m.label == "Prediction").value
        keys = label_buttons(at)
        key = next(k for k, (v, _) in keys.items() if (v == pred) == (i % 2 == 0))
        expected.append(("correct", None) if i % 2 == 0 else ("wrong", keys[key][0]))
        at.button(key=f"label_key_{int(key) - 1}").click()
        at.run()
        assert not at.exception
    engine = db.open_db(url)
    ev = results.events_frame(engine, q)
    engine.dispose()
    assert list(zip(ev["verdict"].to_list(), ev["correct_label"].to_list(), strict=True)) == expected


def test_a_reload_keeps_the_reviewer_the_queue_and_the_held_item(app_env, generated_logs, tmp_path):
    url = f"sqlite:///{tmp_path / 'reload.sqlite'}"
    make_queue(generated_logs, url, size=8)
    q2 = make_queue(generated_logs, url, size=6)
    at = open_review(app_env(generated_logs, db_url=url))
    at.selectbox(key="review_queue").set_value(q2)
    at.run()
    at.button(key="answer_correct").click()
    at.run()
    held = shown_request(at)
    assert (at.query_params.get("reviewer"), at.query_params.get("queue")) == ("ana", str(q2))
    params = dict(at.query_params)

    fresh = app_env(generated_logs, db_url=url)                    # a reload: a new session, same URL
    fresh.query_params.update(params)
    fresh.run()
    fresh.switch_page("pages/review.py")
    fresh.run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    assert fresh.text_input(key="reviewer_input").value == "ana"
    assert fresh.selectbox(key="review_queue").value == q2
    assert shown_request(fresh) == held
    engine = db.open_db(url)
    p = queues.progress(engine, q2)
    engine.dispose()
    assert (p.done, p.in_progress) == (1, 1)                       # one answer, one item held, not two


def test_answer_and_next_writes_then_hands_out_in_one_transaction(generated_logs, tmp_path):
    url = f"sqlite:///{tmp_path / 'tx.sqlite'}"
    q = make_queue(generated_logs, url, size=3)
    engine = db.open_db(url)
    t = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    item = queues.claim_next(engine, q, "ana", now=t)
    order = [item.position]
    for verdict in ("correct", "wrong", "unsure"):
        eid, nxt = queues.answer_and_next(engine, item, "ana", verdict, now=t + len(order))
        assert eid > 0
        if nxt is None:
            break
        order.append(nxt.position)
        item = nxt
    assert order == [1, 2, 3]
    ev = results.events_frame(engine, q)
    assert ev["verdict"].to_list() == ["correct", "wrong", "unsure"]
    assert queues.progress(engine, q).done == 3
    with pytest.raises(queues.LeaseLost):                          # a stale claim records nothing
        queues.answer_and_next(engine, item, "ana", "correct")
    assert results.events_frame(engine, q).height == 3
    engine.dispose()

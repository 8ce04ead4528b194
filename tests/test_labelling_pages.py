"""The Review and Queues pages in-process (AppTest): labelling with buttons, results for the
lead, creating a queue, and hostile strings from the logs shown as plain text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.labelling import db, queues, results
from tests.page_helpers import make_queue, open_review, shown_request

HOSTILE = {
    "note": "<script>window.__pwned = 1</script>",
    "customer": "'; DROP TABLE labelling_events; --",
    "bio": "**bold** [click](javascript:alert(1)) <img src=x onerror=alert(1)> :red[x] $x$",
}


def test_a_reviewer_labels_five_items_and_the_lead_sees_the_accuracy(app_env, generated_logs, tmp_path):
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    q = make_queue(generated_logs, url)
    at = open_review(app_env(generated_logs, db_url=url))
    assert at.title[0].value == "Review"
    shortcuts = {b.key: b.proto.shortcut for b in at.button}
    assert {shortcuts[k] for k in ("answer_correct", "answer_wrong", "answer_unsure", "skip", "undo",
                                   "flag")} == {"y", "n", "u", "s", "z", "f"}
    assert "Done 0 · Skipped 0 · Flagged 0 · Left 20" in at.get("progress")[0].proto.text

    seen = []
    for key in ["answer_correct", "answer_correct", "wrong_label", "answer_correct", "answer_unsure"]:
        seen.append(shown_request(at))
        if key == "wrong_label":        # the first label key that is not the prediction
            pred = next(m for m in at.metric if m.label == "Prediction").value
            key = next(b.key for b in at.button if (b.key or "").startswith("label_key_")
                       and "(predicted)" not in b.label and b.label != pred)
        at.button(key=key).click()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert len(set(seen)) == 5 and shown_request(at) not in seen
    assert "Done 5 · Skipped 0 · Flagged 0 · Left 15" in at.get("progress")[0].proto.text

    at.switch_page("pages/queues.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    acc = next(m for m in at.metric if m.label == "Accuracy")
    assert acc.value == "75.0%"                                    # 3 correct of 4 decisive
    assert any("95% Wilson interval 30.1% – 95.4% · 4 decisive items · 1 unsure" in c.value
               for c in at.caption)
    at.switch_page("pages/review.py")                              # the name is remembered
    at.run()
    assert at.text_input(key="reviewer_input").value == "ana" and shown_request(at) not in seen
    engine = db.open_db(url)
    assert results.queue_report(engine, q)["accuracy"] == 0.75
    assert set(results.events_frame(engine, q)["reviewer"].to_list()) == {"ana"}
    engine.dispose()


def test_skip_flag_comment_and_undo_from_the_page(app_env, generated_logs, tmp_path):
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    q = make_queue(generated_logs, url)
    at = open_review(app_env(generated_logs, db_url=url))
    first = shown_request(at)
    at.button(key="skip").click()
    at.run()
    second = shown_request(at)
    assert second != first
    at.button(key="flag").click()
    at.run()
    reason = next(w for w in at.selectbox if (w.key or "").startswith("flag_reason_"))
    reason.set_value("Inputs look wrong or incomplete")
    at.text_input(key=reason.key.replace("flag_reason_", "comment_")).set_value("income is negative")
    at.button(key="answer_wrong").click()
    at.run()
    assert "Skipped 1 · Flagged 1" in at.get("progress")[0].proto.text
    at.button(key="undo").click()
    at.run()
    assert shown_request(at) == second                              # the undone item is back
    assert "Flagged 0" in at.get("progress")[0].proto.text
    engine = db.open_db(url)
    ev = results.events_frame(engine, q)
    assert ev["action"].to_list() == ["skip", "answer", "undo"]
    assert ev["flag_reason"][1] == "Inputs look wrong or incomplete" and ev["comment"][1] == "income is negative"
    engine.dispose()


def test_review_explains_what_is_missing(app_env, generated_logs, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    at = open_review(app_env(generated_logs, db_url=url), name=None)
    assert "No open queue yet" in at.info[0].value
    make_queue(generated_logs, url, size=2)
    at.run()
    assert "Type your name" in at.info[0].value
    at.text_input(key="reviewer_input").set_value("ana")
    at.run()
    skipped = shown_request(at)
    at.button(key="skip").click()
    at.run()
    at.button(key="answer_correct").click()
    at.run()
    assert "Only items you skipped are left for you (1)" in at.info[0].value
    at.button(key="revisit").click()
    at.run()
    assert shown_request(at) == skipped
    at.button(key="answer_correct").click()
    at.run()
    assert "All 2 items of this queue are done" in at.success[0].value


def test_the_lead_creates_a_queue_and_every_tab_renders(app_env, generated_logs, tmp_path):
    url = f"sqlite:///{tmp_path / 'lead.sqlite'}"
    at = app_env(generated_logs, db_url=url)
    at.run()
    at.switch_page("pages/queues.py")
    at.run()
    assert "No queue yet" in at.info[-1].value
    at.number_input(key="q_size").set_value(30)
    at.selectbox(key="q_strat").set_value("model_version")
    at.slider(key="q_cal").set_value(20)
    at.run()
    at.button(key="q_create").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Queue #1 created" in at.success[0].value
    engine = db.open_db(url)
    q = queues.get_queue(engine, 1)
    assert (q["size"], q["stratify_by"], q["calibration_share"]) == (30, "model_version", 0.2)
    engine.dispose()
    assert {b.proto.label for b in at.get("download_button")} >= {"Labels · csv", "Events · parquet"}
    assert any("calibration items" in i.value for i in at.info)
    at.button(key="close_queue").click()
    at.run()
    engine = db.open_db(url)
    assert queues.get_queue(engine, 1)["status"] == "closed"
    engine.dispose()
    assert at.button(key="close_queue").label == "Reopen queue"


@pytest.fixture
def hostile_logs(tmp_path):
    n = 6
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    table = pa.table({
        "request_id": [f"<b>id-{i}</b>" for i in range(n)],
        "timestamp": pa.array([t0 + timedelta(minutes=i) for i in range(n)], pa.timestamp("us", "UTC")),
        "model_version": ["v1<script>x</script>"] * n, "latency_ms": [10.0] * n, "status": ["ok"] * n,
        "prediction": ["**yes**", "[no](javascript:alert(1))"] * 3, "score": [0.9] * n,
        **{k: [v] * n for k, v in HOSTILE.items()},
    })
    path = tmp_path / "hostile"
    path.mkdir()
    pq.write_table(table, path / "part-0.parquet")
    return path


def test_hostile_strings_are_text_not_markup(app_env, hostile_logs, tmp_path):
    url = f"sqlite:///{tmp_path / 'hostile.sqlite'}"
    make_queue(hostile_logs, url, size=6)
    at = open_review(app_env(hostile_logs, db_url=url))
    frame = at.dataframe[0].value
    shown = dict(zip(frame["input"], frame["value"], strict=True))
    assert shown == HOSTILE                                         # verbatim, as data
    pred = next(m for m in at.metric if m.label == "Prediction").value
    assert pred in (r"\*\*yes\*\*", r"\[no\]\(javascript\:alert\(1\)\)")
    version = next(m for m in at.metric if m.label == "Version").value
    assert version == r"v1\<script\>x\<\/script\>"
    markdown = " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.metric, *at.button])
    assert "<script>" not in markdown and "](javascript" not in markdown and "**yes**" not in markdown
    for _ in range(2):                                              # answering stores them safely
        at.button(key="answer_correct").click()
        at.run()
    engine = db.open_db(url)
    assert results.events_frame(engine).height == 2               # the table is still there
    engine.dispose()

"""The lead's live view and every action's confirmation (AppTest).

Live: answers written by other sessions (straight into the database) change Done, accuracy
and agreement together on the next refresh, against a hand count of what was written.
Confirmations: creating, closing, exporting and acknowledging each say so at the top of the
page after the rerun, outside any expander."""

from __future__ import annotations

from collections import Counter

import pytest

from monitoring.labelling import db, queues
from tests.page_helpers import make_queue, open_page


def metric(at, label: str) -> str:
    return next(m for m in at.metric if m.label == label).value


def rule(position: int) -> str:
    return "wrong" if position % 3 == 0 else "correct"


def kappa(pairs: list[tuple[str, str]]) -> float:
    """Cohen's kappa from its definition: (observed - chance) / (1 - chance)."""
    n = len(pairs)
    po = sum(a == b for a, b in pairs) / n
    cats = {x for p in pairs for x in p}
    pe = sum((sum(a == c for a, _ in pairs) / n) * (sum(b == c for _, b in pairs) / n) for c in cats)
    return (po - pe) / (1 - pe)


def expected(answers: dict[int, dict[str, str]], needed: dict[int, int]) -> tuple[int, float, float, int]:
    """Hand count: done items, accuracy over decisive majorities, kappa, items with 2 answers."""
    done = sum(len(a) >= needed[i] for i, a in answers.items())
    decisive = []
    for a in answers.values():
        top = Counter(a.values()).most_common()
        if len(top) > 1 and top[0][1] == top[1][1]:
            continue                                             # a tie decides nothing
        if top[0][0] in ("correct", "wrong"):
            decisive.append(top[0][0] == "correct")
    pairs = [(a["ana"], a["ben"]) for a in answers.values() if len(a) == 2]
    return done, sum(decisive) / len(decisive), kappa(pairs) if pairs else None, len(pairs)


def test_progress_accuracy_and_agreement_refresh_together(app_env, generated_logs, tmp_path):
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    q = make_queue(generated_logs, url, size=12, calibration_share=0.5)
    at = open_page(app_env(generated_logs, db_url=url), "pages/queues.py")
    at.toggle(key="live_progress").set_value(True)
    at.run()
    assert metric(at, "Done") == "0 / 12"

    engine = db.open_db(url)
    answers: dict[int, dict[str, str]] = {}
    needed: dict[int, int] = {}
    with db.reading(engine) as conn:
        for r in conn.execute(db.items.select().where(db.items.c.queue_id == q)).mappings():
            needed[r["id"]] = r["needed"]
    assert 2 in needed.values()                                   # there are calibration items

    def label(reviewer: str, n: int, disagree_once: bool = False) -> None:
        for _ in range(n):
            item = queues.claim_next(engine, q, reviewer)
            verdict = rule(item.position)
            if disagree_once and item.id in answers:            # a calibration item ana answered
                verdict, disagree_once = ("correct" if verdict == "wrong" else "wrong"), False
            queues.answer(engine, item, reviewer, verdict)
            answers.setdefault(item.id, {})[reviewer] = verdict

    seen = []
    for reviewer, n, disagree in (("ana", 6, False), ("ben", 6, True)):
        label(reviewer, n, disagree)
        at.run()                                                  # the next refresh
        assert not at.exception, [e.value for e in at.exception]
        done, acc, k, pairs = expected(answers, needed)
        figures = (metric(at, "Done"), metric(at, "Accuracy"))
        assert figures == (f"{done} / 12", f"{acc * 100:.1f}%")
        if pairs:
            assert metric(at, "Cohen's kappa") == f"{k:.3f}" and metric(at, "Items") == str(pairs)
        seen.append((*figures, pairs))
    assert seen[0] != seen[1] and seen[1][2] > 0                   # all three moved
    engine.dispose()


def top_messages(at) -> list[str]:
    """Success messages outside any expander (what a person sees without opening anything)."""
    inside = {id(e.proto) for x in at.expander for e in x.success}
    return [s.value for s in at.success if id(s.proto) not in inside]


def test_create_close_and_export_confirm_at_the_top(app_env, generated_logs, tmp_path):
    url = f"sqlite:///{tmp_path / 'confirm.sqlite'}"
    at = open_page(app_env(generated_logs, db_url=url), "pages/queues.py")
    at.number_input(key="q_size").set_value(10)
    at.button(key="q_create").click()
    at.run()
    assert any(m.startswith("Queue #1 created") for m in top_messages(at)), top_messages(at)
    assert any(t.value.startswith("Queue #1 created") for t in at.toast)
    at.run()                                                     # shown once, then gone
    assert not top_messages(at)

    at.button(key="close_queue").click()
    at.run()
    assert top_messages(at) == ["Queue #1 closed: it hands out no more items."]
    at.button(key="close_queue").click()
    at.run()
    assert top_messages(at) == ["Queue #1 reopened."]

    at.download_button(key="dl_labels_csv").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    msgs = top_messages(at)
    assert len(msgs) == 1 and msgs[0].startswith("Exported the resolved labels of queue #1 as csv")


def test_a_failed_create_says_why_at_the_top(app_env, generated_logs, tmp_path):
    url = f"sqlite:///{tmp_path / 'fail.sqlite'}"
    at = open_page(app_env(generated_logs, db_url=url), "pages/queues.py")
    at.number_input(key="q_low").set_value(9)                   # more than half of 10 is targeted
    at.number_input(key="q_size").set_value(10)
    at.button(key="q_create").click()
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("No queue created: ")


@pytest.mark.slow
def test_acknowledging_an_alert_confirms_after_the_rerun(app_env, generated_logs, tmp_path):
    url = f"sqlite:///{tmp_path / 'ack.sqlite'}"
    at = app_env(generated_logs, db_url=url)
    at.run()
    at.switch_page("pages/alerts.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    next(t for t in at.text_input if t.label == "Your name").set_value("ana")
    chosen = next(b for b in at.selectbox if b.label == "Alert").value   # an episode id
    next(b for b in at.button if b.label == "Acknowledge").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    msgs = [s.value for s in at.success if s.value.startswith("Acknowledged")]
    assert len(msgs) == 1 and msgs[0].startswith(f"Acknowledged \\#{chosen} "), msgs
    history = at.dataframe[0].value                              # and the history says who
    assert history.loc[history["id"] == chosen, "ack_by"].tolist() == ["ana"]

"""No answer lost or doubled: many reviewers at once, and a reviewer's process killed.

Run on a SQLite file (WAL, BEGIN IMMEDIATE) and on the PostgreSQL server the suite starts
(FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from monitoring.labelling import db, queues, results
from monitoring.labelling.sampling import QueueSpec, Sample

ROOT = Path(__file__).resolve().parent.parent


def make_queue(engine, n: int, lease: float) -> int:
    items = pl.DataFrame({
        "request_id": [f"req-{i:03d}" for i in range(n)], "ts": [datetime(2026, 11, 1, tzinfo=UTC)] * n,
        "model_name": ["m"] * n, "model_version": ["v1"] * n, "endpoint": ["/p"] * n,
        "prediction": ["a"] * n, "score": [0.9] * n, "inputs": [json.dumps({"i": i}) for i in range(n)],
        "stratum": ["all"] * n, "reason": ["random"] * n, "weight": [1.0] * n,
        "position": list(range(1, n + 1)), "calibration": [False] * n,
    })
    sample = Sample(items=items, population=n, strata={"all": n}, allocation={"all": n},
                    features=["i"], classes=["a", "b"])
    return queues.store_sample(engine, sample, QueueSpec(size=n, lease_seconds=lease))


def standing_answers(engine, q) -> Counter:
    ev = results.events_frame(engine, q)
    undone = set(ev["supersedes"].drop_nulls().to_list())
    return Counter(ev.filter((pl.col("action") == "answer") & ~pl.col("id").is_in(list(undone)))
                   ["item_id"].to_list())


@pytest.fixture
def engine(any_db_url):
    e = db.open_db(any_db_url)
    yield e
    e.dispose()


def test_eight_reviewers_answer_a_hundred_items_once_each(engine):
    q = make_queue(engine, 100, lease=120)
    log: list[tuple[int, str, float, float]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)
    # Everyone holds a first claim before anyone answers: otherwise one thread can, by the
    # scheduler's whim, drain the queue alone and the test would not be concurrent at all.
    first_claims = threading.Barrier(8)

    def reviewer(name: str) -> None:
        try:
            start.wait()
            first = True
            while True:
                t0 = time.monotonic()
                item = queues.claim_next(engine, q, name)
                if first:
                    first_claims.wait()
                    first = False
                if item is None:
                    return
                queues.answer(engine, item, name, "correct" if item.id % 3 else "wrong")
                with lock:
                    log.append((item.id, name, t0, time.monotonic()))
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=reviewer, args=(f"reviewer-{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)

    per_item = Counter(item_id for item_id, *_ in log)
    assert len(per_item) == 100 and set(per_item.values()) == {1}      # none lost, none twice
    assert len({name for _, name, *_ in log}) > 1                       # the work was shared
    answers = standing_answers(engine, q)
    assert len(answers) == 100 and set(answers.values()) == {1}
    p = queues.progress(engine, q)
    assert (p.done, p.answers, p.left, p.in_progress) == (100, 100, 0, 0)
    ev = results.events_frame(engine, q)
    # Each event names the reviewer whose claim it closed.
    assert dict(zip(ev["item_id"].to_list(), ev["reviewer"].to_list(), strict=True)) == \
        {item_id: name for item_id, name, *_ in log}


CHILD = r"""
import sys, time
from monitoring.labelling import db, queues
url, qid, mode, hold_after = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
engine = db.open_db(url)
n = 0
while True:
    item = queues.claim_next(engine, qid, "doomed")
    if item is None:
        print("EMPTY", flush=True)
        time.sleep(3600)
    if mode == "hold" and n == hold_after:
        print(f"HOLD {item.id}", flush=True)
        time.sleep(3600)
    queues.answer(engine, item, "doomed", "wrong", correct_label="b")
    n += 1
    print(f"DONE {item.id}", flush=True)
"""


def _run_child(url: str, q: int, mode: str, hold_after: int, until) -> tuple[list[int], int | None]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, url, str(q), mode, str(hold_after)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    done, held = [], None
    try:
        for line in proc.stdout:
            kind, _, value = line.strip().partition(" ")
            if kind == "DONE":
                done.append(int(value))
            elif kind == "HOLD":
                held = int(value)
            if until(done, held) or kind == "EMPTY":
                break
        else:
            pytest.fail(f"child ended early: {proc.stderr.read()[-2000:]}")
        proc.send_signal(signal.SIGKILL)   # no cleanup, no rollback handler: a crash
    finally:
        proc.kill()
        proc.wait(timeout=30)
    # The child may have run ahead of this reader: whatever it printed before it died is
    # still in the pipe, and counts as reported.
    for line in proc.stdout:
        kind, _, value = line.strip().partition(" ")
        if kind == "DONE":
            done.append(int(value))
    return done, held


def test_a_killed_reviewer_keeps_its_answers_and_its_claim_comes_back(any_db_url):
    engine = db.open_db(any_db_url)
    # A long lease, so a slow machine cannot expire it while the rescuer works; its end is
    # then simulated with claim_next(now=...) instead of waited for.
    q = make_queue(engine, 12, lease=60)
    done, held = _run_child(any_db_url, q, "hold", 5, lambda d, h: h is not None)
    assert len(done) == 5 and held is not None and held not in done

    answers = standing_answers(engine, q)
    assert set(answers) == set(done) and set(answers.values()) == {1}   # every committed answer
    with db.reading(engine) as conn:
        row = conn.execute(sa.select(db.items.c.claimed_by).where(db.items.c.id == held)).one()
    assert row.claimed_by == "doomed"                                     # still leased ...
    got = []
    while (item := queues.claim_next(engine, q, "rescuer")) is not None:
        got.append(item.id)
        queues.answer(engine, item, "rescuer", "correct")
    assert held not in got and len(got) == 12 - 5 - 1
    item = queues.claim_next(engine, q, "rescuer", now=time.time() + 61)  # ... until the lease ends
    assert item is not None and item.id == held
    queues.answer(engine, item, "rescuer", "correct")
    assert queues.progress(engine, q).done == 12
    assert Counter(standing_answers(engine, q).values()) == {1: 12}
    engine.dispose()


def test_a_kill_at_any_moment_loses_no_committed_answer(any_db_url):
    engine = db.open_db(any_db_url)
    q = make_queue(engine, 40, lease=1.0)
    done, _ = _run_child(any_db_url, q, "run", -1, lambda d, h: len(d) >= 8)
    answers = standing_answers(engine, q)
    assert set(done) <= set(answers)                 # everything reported as committed is there
    assert len(answers) - len(done) in (0, 1)        # at most the answer being printed
    assert set(answers.values()) == {1}
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    time.sleep(1.1)
    while (item := queues.claim_next(engine, q, "rescuer")) is not None:
        queues.answer(engine, item, "rescuer", "correct")
    p = queues.progress(engine, q)
    assert (p.done, p.answers) == (40, 40)
    engine.dispose()

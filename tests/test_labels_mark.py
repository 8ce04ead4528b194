"""monitoring.quality.marks: the labels mark moves with every reviewer answer, undo and
re-answer and with a rewritten labels file, stays put when nothing changed, and is one stable
string for a database that cannot be used. Its figures are checked against a raw sqlite3
count of the event table."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring import sample
from monitoring.config import load_config
from monitoring.labelling import db, queues
from monitoring.labelling.sampling import QueueSpec
from monitoring.logs.workspace import open_workspace
from monitoring.quality.marks import UNAVAILABLE, file_mark, labels_mark, labels_mark_from
from tests.test_database_failures import CASES, broken_db


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    out = tmp_path_factory.mktemp("mark") / "logs"
    sample.generate(out, days=2, rows_per_day=100, seed=5)
    return out


def _events(path) -> tuple[int, int]:
    """The oracle: count(*) and max(id) of labelling_events, read by sqlite3 itself."""
    con = sqlite3.connect(path)
    try:
        n, top = con.execute("SELECT count(*), max(id) FROM labelling_events").fetchone()
    finally:
        con.close()
    return n, top or 0


def test_the_mark_follows_every_answer_undo_and_re_answer(logs, tmp_path):
    path = tmp_path / "m.sqlite"
    cfg = replace(load_config(overrides={"logs": str(logs)}), db_url=f"sqlite:///{path}")
    ws = open_workspace(cfg)
    engine = db.open_db(cfg.database_url)
    q = queues.create_queue(engine, ws.source, ws.con, QueueSpec(size=4, seed=1))
    marks = [labels_mark(cfg)]
    assert labels_mark(cfg) == marks[0]                          # nothing changed: the same mark
    assert marks[0].endswith("|events=0:0") and _events(path) == (0, 0)

    item = queues.claim_next(engine, q, "ana")
    queues.answer(engine, item, "ana", "correct")                # a new verdict
    marks.append(labels_mark(cfg))
    queues.undo_last(engine, q, "ana")                           # the verdict withdrawn ...
    marks.append(labels_mark(cfg))
    again = queues.claim_next(engine, q, "ana")
    assert again.id == item.id
    queues.answer(engine, again, "ana", "wrong", correct_label="other")   # ... and changed
    marks.append(labels_mark(cfg))
    assert len(set(marks)) == 4
    n, top = _events(path)
    assert (n, top) == (3, 3)                                    # an edit appends, it never updates
    assert marks[-1].endswith(f"|events={n}:{top}")
    assert labels_mark_from(cfg, engine) == marks[-1]            # an open engine gives the same mark
    engine.dispose()


def test_the_mark_follows_the_labels_file(logs, tmp_path):
    labels = tmp_path / "labels.parquet"
    cfg = replace(load_config(overrides={"logs": str(logs), "labels": str(labels)}),
                  db_url=f"sqlite:///{tmp_path / 'm.sqlite'}")
    absent = labels_mark(cfg)
    assert absent.startswith("|")                                # configured but not there yet
    pq.write_table(pa.table({"request_id": ["a", "b"], "label": ["x", "y"]}), labels)
    written = labels_mark(cfg)
    st = os.stat(labels)
    assert written.startswith(f"{labels}:{st.st_size}:{st.st_mtime_ns}|")
    assert labels_mark(cfg) == written
    pq.write_table(pa.table({"request_id": ["a", "b"], "label": ["y", "x"]}), labels)   # same size
    os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert os.stat(labels).st_size == st.st_size and labels_mark(cfg) not in (absent, written)


def test_a_folder_of_labels_files_is_marked_file_by_file(tmp_path):
    folder = tmp_path / "labels"
    folder.mkdir()
    for name in ("a", "b"):
        pq.write_table(pa.table({"request_id": [name], "label": ["x"]}), folder / f"{name}.parquet")
    parts = file_mark(str(folder)).split(";")
    assert [p.rsplit(":", 2)[0] for p in parts] == [str(folder / "a.parquet"), str(folder / "b.parquet")]
    assert file_mark(str(tmp_path / "none" / "*.parquet")) == "" and file_mark(None) == ""


@pytest.mark.parametrize("kind", CASES)
def test_a_broken_database_gives_one_stable_mark(logs, tmp_path, kind):
    url = broken_db(kind, tmp_path)
    cfg = replace(load_config(overrides={"logs": str(logs)}), db_url=url)
    mark = labels_mark(cfg)
    assert mark.endswith(f"|{UNAVAILABLE}") and labels_mark(cfg) == mark
    assert "secret" not in mark                                  # the password never in a key
    assert labels_mark_from(cfg, None) == mark

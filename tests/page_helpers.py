"""Helpers shared by the page tests: open a page in AppTest, draw a labelling queue, read the
Review page's current item, write sample logs whose only labels are the reviewers'."""

from __future__ import annotations

from monitoring.config import load_config
from monitoring.labelling import db, queues
from monitoring.labelling.sampling import QueueSpec
from monitoring.logs.workspace import open_workspace


def open_page(at, page: str):
    """Run the app, switch to `page`, run again; fails on any exception shown."""
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_review(at, name: str | None = "ana"):
    """The Review page, signed in as reviewer `name` (None: nobody typed yet)."""
    open_page(at, "pages/review.py")
    if name:
        at.text_input(key="reviewer_input").set_value(name)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    return at


def make_queue(logs, url: str, size: int = 20, **spec) -> int:
    """A queue of `size` items drawn (seed 5) from the logs at `logs` into the database `url`."""
    ws = open_workspace(load_config(overrides={"logs": str(logs)}))
    engine = db.open_db(url)
    q = queues.create_queue(engine, ws.source, ws.con, QueueSpec(**{"size": size, "seed": 5, **spec}))
    engine.dispose()
    return q


def shown_request(at) -> str:
    """The request id of the item the Review page shows."""
    return next(c.value for c in at.caption if c.value.startswith("Item ")).split("request ")[1].split(" ·")[0]


def sample_without_labels(out, days: int, rows_per_day: int, seed: int):
    """Sample logs in `out` without their label column: accuracy can only come from reviewers."""
    import pyarrow.parquet as pq

    from monitoring import sample

    sample.generate(out, days=days, rows_per_day=rows_per_day, seed=seed)
    for f in out.rglob("*.parquet"):
        t = pq.read_table(f)
        if "label" in t.column_names:
            pq.write_table(t.drop(["label"]), f)
    return out

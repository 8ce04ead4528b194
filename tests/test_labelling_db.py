"""The labelling database: engine settings, schema version and migrations that keep data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from monitoring import database
from monitoring.labelling import db


def test_sqlite_runs_in_wal_with_a_busy_timeout(tmp_path):
    engine = db.open_db(f"sqlite:///{tmp_path / 'sub' / 'x.sqlite'}")   # folder created
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2   # FULL
    assert db.schema_version(engine) == db.SCHEMA_VERSION == len(db.MIGRATIONS)
    engine.dispose()


@pytest.mark.parametrize(("url", "driver"), [
    ("postgresql://u:p@db.example/x", "postgresql+psycopg"),
    ("postgres://u@db.example/x", "postgresql+psycopg"),
    ("postgresql+psycopg://u@h/x", "postgresql+psycopg"),
    ("sqlite:///a/b.sqlite", "sqlite"),
])
def test_urls_are_normalised(url, driver):
    assert database.normalize_url(url).drivername == driver


@pytest.mark.parametrize("url", ["not a url", "mysql://u@h/x", ""])
def test_bad_urls_are_one_line_errors(url):
    with pytest.raises(db.DatabaseError):
        db.open_db(url)


def test_safe_url_hides_the_password():
    assert "secret" not in db.safe_url("postgresql://u:secret@h/x")


def _columns(engine) -> dict[str, set[str]]:
    insp = sa.inspect(engine)
    return {t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names()}


def test_migrated_schema_matches_the_declared_tables(any_db_url):
    engine = db.open_db(any_db_url)
    cols = _columns(engine)
    for table in db.metadata.sorted_tables:
        assert cols[table.name] == {c.name for c in table.columns}, table.name
    assert db.upgrade(engine) == db.SCHEMA_VERSION        # idempotent
    engine.dispose()


def test_upgrade_from_v1_keeps_every_row(any_db_url):
    engine = db.create_engine(any_db_url)
    assert db.upgrade(engine, to=1) == 1
    assert "reason" not in _columns(engine)["labelling_items"]
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    with db.writing(engine) as conn:  # rows as version 1 wrote them, in its own columns
        conn.execute(sa.text(
            "INSERT INTO labelling_queues (name, created_at, strategy, seed, size_requested, size, "
            "population, lease_seconds, settings, features, classes) VALUES ('old', :t, 'uniform', "
            "7, 2, 2, 100, 600, '{}', '[\"age\"]', '[\"a\", \"b\"]')"), {"t": now.replace(tzinfo=None)})
        for pos, rid in enumerate(["r1", "r2"], start=1):
            conn.execute(sa.text(
                "INSERT INTO labelling_items (queue_id, position, request_id, prediction, inputs, "
                "answers) VALUES (1, :p, :r, 'a', '{\"age\": 40}', :a)"), {"p": pos, "r": rid, "a": pos - 1})
        conn.execute(sa.text(
            "INSERT INTO labelling_events (queue_id, item_id, request_id, reviewer, action, verdict, "
            "at) VALUES (1, 2, 'r2', 'ana', 'answer', 'correct', :t)"), {"t": now.replace(tzinfo=None)})

    assert db.upgrade(engine) == db.SCHEMA_VERSION
    assert db.schema_version(engine) == db.SCHEMA_VERSION
    with db.reading(engine) as conn:
        q = conn.execute(sa.select(db.queues)).mappings().one()
        rows = conn.execute(sa.select(db.items).order_by(db.items.c.position)).mappings().all()
        ev = conn.execute(sa.select(db.events)).mappings().one()
    assert (q["name"], q["seed"], q["classes"], q["created_at"]) == ("old", 7, ["a", "b"], now)
    assert [(r["request_id"], r["answers"], r["inputs"], r["reason"], r["weight"]) for r in rows] == [
        ("r1", 0, {"age": 40}, "random", 1.0), ("r2", 1, {"age": 40}, "random", 1.0)]
    assert (ev["reviewer"], ev["verdict"], ev["at"]) == ("ana", "correct", now)
    engine.dispose()


def test_a_newer_database_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    engine = db.open_db(url)
    with db.writing(engine) as conn:
        conn.execute(db.schema_versions.update().values(version=db.SCHEMA_VERSION + 1))
    engine.dispose()
    with pytest.raises(db.DatabaseError, match="newer than this modelwatch"):
        db.open_db(url)


def test_times_come_back_aware_utc(tmp_path):
    engine = db.open_db(f"sqlite:///{tmp_path / 'x.sqlite'}")
    paris = datetime(2026, 11, 1, 13, 30, tzinfo=timezone(timedelta(hours=1)))
    with db.writing(engine) as conn:
        conn.execute(db.schema_versions.insert().values(component="t", version=1, upgraded_at=paris))
    with db.reading(engine) as conn:
        got = conn.execute(sa.select(db.schema_versions.c.upgraded_at)
                           .where(db.schema_versions.c.component == "t")).scalar_one()
    assert got == paris and got.tzinfo == UTC and got.hour == 12
    engine.dispose()

"""`python -m monitoring queue ...`: create, list, status, export; bad input is one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from monitoring.cli.main import main
from monitoring.labelling import db, queues

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'cli.sqlite'}"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def request_ids(url, q):
    engine = db.open_db(url)
    with db.reading(engine) as conn:
        got = [r[0] for r in conn.execute(
            db.items.select().with_only_columns(db.items.c.request_id)
            .where(db.items.c.queue_id == q).order_by(db.items.c.position))]
    engine.dispose()
    return got


def test_create_list_status_export(capsys, generated_logs, url, tmp_path):
    args = ("queue", "create", "--logs", generated_logs, "--size", 60, "--seed", 7, "--db", url,
            "--start", "2026-11-10", "--end", "2026-11-20T00:00:00Z")
    code, out, _ = run(capsys, *args)
    assert code == 0 and out.strip() == "1"
    code, out, _ = run(capsys, *args)
    assert out.strip() == "2"
    assert request_ids(url, 1) == request_ids(url, 2) and len(request_ids(url, 1)) == 60  # same seed

    code, out, _ = run(capsys, "queue", "list", "--db", url, "--format", "json")
    assert code == 0 and [q["id"] for q in json.loads(out)] == [2, 1]

    engine = db.open_db(url)
    for verdict in ["correct"] * 8 + ["wrong"] * 2:
        item = queues.claim_next(engine, 1, "ana")
        queues.answer(engine, item, "ana", verdict, flag_reason="odd" if verdict == "wrong" else None)
    item = queues.claim_next(engine, 1, "ana")
    queues.skip(engine, item, "ana")
    engine.dispose()

    code, out, _ = run(capsys, "queue", "status", 1, "--format", "json", "--db", url)
    s = json.loads(out)
    assert code == 0
    assert (s["size"], s["labelled"], s["skipped"], s["flagged"]) == (60, 10, 1, 2)
    assert s["accuracy"] == pytest.approx(0.8) and s["strategy"] == "uniform"
    assert len(s["accuracy_ci"]) == 2 and s["accuracy_ci"][0] < 0.8 < s["accuracy_ci"][1]
    assert s["window"] == {"start": "2026-11-10T00:00:00Z", "end": "2026-11-20T00:00:00Z"}
    code, out, _ = run(capsys, "queue", "status", 1, "--db", url)
    assert "accuracy 80.0%" in out and "labelled 10/60" in out

    for fmt, reader in (("csv", pl.read_csv), ("jsonl", pl.read_ndjson), ("parquet", pl.read_parquet)):
        out_file = tmp_path / f"labels.{fmt}"
        code, out, _ = run(capsys, "queue", "export", 1, "--format", fmt, "--out", out_file, "--db", url)
        assert code == 0 and reader(out_file).height == 10
        code, _, _ = run(capsys, "queue", "export", 1, "--format", fmt, "--out", out_file, "--db", url,
                         "--what", "events")
        assert reader(out_file).height == 11


def test_db_defaults_to_the_environment(capsys, monkeypatch, generated_logs, url):
    monkeypatch.setenv("MONITORING_DB_URL", url)
    code, out, _ = run(capsys, "queue", "create", "--logs", generated_logs, "--size", 10, "--seed", 1,
                       "--calibration", "0.2", "--calibration-reviewers", "3", "--name", "weekly",
                       "--stratify-by", "endpoint")
    assert code == 0 and len(request_ids(url, int(out))) == 10
    code, out, _ = run(capsys, "queue", "status", out.strip(), "--format", "json")
    s = json.loads(out)
    assert s["name"] == "weekly" and s["settings"]["calibration_share"] == 0.2
    assert s["stratify_by"] == "endpoint" and set(s["settings"]["allocation"].values()) == {5}
    assert s["settings"]["calibration_reviewers"] == 3


@pytest.mark.parametrize(("argv", "message"), [
    (["queue", "status", "9"], "no queue 9"),
    (["queue", "create", "--logs", "/nonexistent", "--size", "5"], "no such file"),
    (["queue", "create", "--logs", "{logs}", "--size", "0"], "size must be"),
    (["queue", "create", "--logs", "{logs}", "--start", "yesterday"], "not an ISO 8601 time"),
    (["queue", "create", "--logs", "{logs}", "--size", "10", "--low-score", "6"], "at most half"),
    (["queue", "create", "--logs", "{logs}", "--segment", "device", "--segment-size", "1"], "segment"),
    (["queue", "create", "--logs", "{logs}", "--start", "2030-01-01"], "no successful requests"),
    (["queue", "list", "--db", "mysql://u@h/x"], "unsupported database"),
    (["queue", "list", "--db", "postgresql://u@127.0.0.1:1/x"], "cannot open the database"),
    (["queue", "export", "1", "--format", "csv", "--out", "/proc/none/x.csv"], "no queue 1"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, generated_logs, url, argv, message):
    argv = [a.replace("{logs}", str(generated_logs)) for a in argv]
    if "--db" not in argv:
        argv += ["--db", url]
    code, out, err = run(capsys, *argv)
    assert code == 2, err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_unwritable_export_and_usage_errors_in_a_real_process(generated_logs, url, tmp_path):
    def cli(*argv):
        return subprocess.run([sys.executable, "-m", "monitoring", *map(str, argv)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    r = cli("queue", "create", "--logs", generated_logs, "--size", 3, "--db", url)
    assert r.returncode == 0 and r.stdout.strip() == "1"
    r = cli("queue", "export", 1, "--format", "csv", "--out", "/proc/none/x.csv", "--db", url)
    assert r.returncode == 2 and r.stderr.startswith("error: cannot write") and "Traceback" not in r.stderr
    r = cli("queue", "export", 1, "--format", "xlsx", "--out", tmp_path / "x", "--db", url)
    assert r.returncode == 2 and "invalid choice" in r.stderr and "Traceback" not in r.stderr

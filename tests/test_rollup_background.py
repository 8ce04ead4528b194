"""The background rollup build: progress a UI can read, the store it leaves equal to a build
in the foreground, bad input said in one sentence, the [rollups] settings, and the app's
sidebar progress bar (AppTest)."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from monitoring.config import ConfigError, load_config
from monitoring.logs.workspace import open_workspace
from monitoring.rollup import background, build, read
from monitoring.rollup.settings import RollupSettings
from monitoring.rollup.settings import load as load_settings
from tests.test_rollup import assert_same_tables, compact_tables, tables_of


def _cfg(logs: Path, data: Path):
    return replace(load_config(overrides={"logs": str(logs)}), data_dir=str(data))


def test_background_build_reports_progress_and_equals_a_foreground_build(generated_logs, tmp_path):
    cfg = _cfg(generated_logs, tmp_path / "bg")
    job = background.Job(cfg, cfg.logs, batch_rows=4000)      # about three day files a pass
    job.start("fp")
    seen = [job.progress()]
    while job.running():
        seen.append(job.progress())
        time.sleep(0.01)
    final = job.wait()
    seen.append(final)
    files = sorted(generated_logs.rglob("*.parquet"))
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)   # independent count
    assert final.state == background.DONE, final.message
    assert (final.files_done, final.files_total, final.rows_done, final.rows_total) == (len(files), len(files), rows, rows)
    assert final.fraction == 1.0 and final.fingerprint == "fp" and final.finished >= final.started
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions)                          # never goes back
    assert seen[0].state == background.RUNNING and "Building rollups" in seen[0].text
    fg = build.build(_cfg(generated_logs, tmp_path / "fg"))
    root = read.open_store(cfg).root
    assert_same_tables(tables_of(root), tables_of(fg.root))
    assert_same_tables(compact_tables(root), compact_tables(fg.root))
    ws = open_workspace(cfg)
    assert background.covering_store(cfg, ws.source) is not None


def test_an_update_counts_the_files_already_rolled_as_done(generated_logs, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(generated_logs, logs)
    last = sorted(logs.iterdir())[-1]
    shutil.move(last, tmp_path / last.name)
    cfg = _cfg(logs, tmp_path / "data")
    build.build(cfg)
    shutil.move(tmp_path / last.name, last)
    job = background.Job(cfg, cfg.logs, batch_rows=10**9)
    p = job.start().wait(120)
    assert p.state == background.DONE and (p.files_done, p.files_total) == (30, 30)


@pytest.mark.parametrize(("logs", "message"), [
    ("/nonexistent/logs", "no such file or directory"),
])
def test_a_failed_build_is_one_sentence(tmp_path, logs, message):
    cfg = _cfg(Path(logs), tmp_path)
    p = background.Job(cfg, logs, batch_rows=1000).start().wait(60)
    assert p.state == background.FAILED and message in p.message.lower()
    assert "\n" not in p.message and "Traceback" not in p.message
    assert p.text.startswith("Rollups could not be built: ")


def test_one_job_per_store(generated_logs, tmp_path):
    cfg = _cfg(generated_logs, tmp_path)
    assert background.job_for(cfg) is background.job_for(cfg)
    assert background.job_for(cfg) is not background.job_for(replace(cfg, data_dir=str(tmp_path / "other")))


@pytest.mark.parametrize(("table", "rows", "wanted"), [
    ({}, 4_999_999, False),
    ({}, 5_000_000, True),
    ({"background": "on"}, 10, True),
    ({"background": "off"}, 10**9, False),
    ({"auto_rows": 100}, 100, True),
    ({"auto_rows": 100}, 99, False),
])
def test_settings_decide_when_the_app_builds(tmp_path, table, rows, wanted):
    toml = tmp_path / "monitoring.toml"
    toml.write_text("[rollups]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in table.items()))
    cfg = load_config(str(toml))
    assert load_settings(cfg).wanted(rows) is wanted
    assert background.wanted(cfg, rows) is wanted


@pytest.mark.parametrize(("line", "message"), [
    ('background = "sometimes"', "must be one of"),
    ("auto_rows = 0", "must be at least 1"),
    ("batch_size = 5", "unknown"),
])
def test_bad_rollups_settings_are_one_sentence(tmp_path, line, message):
    toml = tmp_path / "monitoring.toml"
    toml.write_text(f"[rollups]\n{line}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(str(toml))


def test_defaults(tmp_path):
    assert load_settings(load_config(overrides={})) == RollupSettings()


def test_sidebar_shows_the_progress_then_pages_read_the_store(app_env, generated_logs, tmp_path):
    toml = tmp_path / "monitoring.toml"
    toml.write_text('[rollups]\nbackground = "on"\nbatch_rows = 3000\n')
    at = app_env(generated_logs, MONITORING_CONFIG=toml)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    bars = at.get("progress")
    assert bars and "Building rollups" in str(bars[0].proto.text), "no progress bar while building"
    assert at.metric, "the page renders from the raw logs meanwhile"
    cfg = _cfg(generated_logs, tmp_path / "data")
    assert background.job_for(cfg).wait(180).state == background.DONE
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.get("progress")
    assert any("Rollups up to date" in c.value for c in at.caption)
    from ui import data
    assert data.workspace().source.rollups is not None       # pages now read the store


@pytest.mark.parametrize(("rows", "batch", "groups"), [
    ([10] * 30, 1000, [30]),                      # one pass's worth: one step
    ([10] * 30, 1, [8, 8, 8, 6]),                 # many small files: at most MAX_STEPS steps
    ([100, 1, 1, 100, 1, 1, 100], 50, [1, 3, 3]),  # files are never split
    ([5] * 8, 20, [4, 4]),                        # steps of at least batch_rows
    ([], 10, []),
])
def test_a_build_lands_in_steps(rows, batch, groups):
    from monitoring.rollup import store as st
    entries = [st.FileEntry(f"f{i}", 1, 1, f"p{i}", n) for i, n in enumerate(rows)]
    got = background.steps(entries, batch)
    assert [len(g) for g in got] == groups
    assert [e for g in got for e in g] == entries           # every file once, in order
    assert len(got) <= background.MAX_STEPS


def test_pages_read_each_step_as_it_lands(generated_logs, tmp_path, monkeypatch):
    """After every step of a background build the manifest covers the files rolled so far;
    `refresh` then gives a store (partial until the last step) whose figures equal the raw
    logs', and an unchanged manifest gives back the same store (no re-read)."""
    from datetime import timedelta

    from monitoring.metrics import anomalies
    from monitoring.metrics import service as metrics
    from monitoring.query.filters import Filters
    from monitoring.rollup import partial

    cfg = _cfg(generated_logs, tmp_path / "data")
    ws = open_workspace(cfg)
    raw = replace(ws.source, rollups=None)
    f = Filters(start=ws.extent.first.replace(hour=0, minute=0, second=0, microsecond=0),
                end=ws.extent.last.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
    monkeypatch.setattr(partial, "MIN_COVERED_ROWS", 0)
    seen, real = [], build.update

    def update_and_look(*args, **kw):
        r = real(*args, **kw)
        store = background.refresh(cfg, ws.source, None)
        assert background.refresh(cfg, ws.source, store) is store
        src = replace(ws.source, rollups=store)
        same = (metrics.rollup(src, ws.con, f, 3600).sort("bucket", "is_error", "bin")
                .equals(metrics.rollup(raw, ws.con, f, 3600).sort("bucket", "is_error", "bin"))
                and anomalies.minute_counts(src, ws.con, f).equals(anomalies.minute_counts(raw, ws.con, f)))
        seen.append((len(store.manifest.files), store.complete, same))
        return r

    monkeypatch.setattr(build, "update", update_and_look)
    p = background.Job(cfg, cfg.logs, batch_rows=1000).start().wait(300)
    assert p.state == background.DONE, p.message
    n = len(ws.source.files)
    assert len(seen) == background.MAX_STEPS
    assert [s[0] for s in seen] == sorted(s[0] for s in seen) and seen[-1][0] == n
    assert [s[1] for s in seen] == [False] * (len(seen) - 1) + [True]
    assert all(s[2] for s in seen), seen

"""Weekly health does not wait for the alert evaluation (15 s at 100M rows): until it is done
the summary is complete but for its alerts, which the page says and adds when ready; a
failed evaluation is said, not raised. The week's percentiles on the page follow the
configured exact limit, as on the Latency page; the CLI stays exact unless --fast."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from monitoring import sample
from monitoring.alerts import evaluate
from monitoring.cli.main import main
from monitoring.config import load_config
from monitoring.logs.workspace import open_workspace
from monitoring.metrics import sketch
from monitoring.metrics.service import APPROX, EXACT
from monitoring.reports.export import to_markdown
from monitoring.reports.providers import standard_providers
from monitoring.reports.summary import default_week, week_bounds, weekly_summary

WEEK = "2026-W47"   # the generator's latency incident on v3 (docs/sample logs)


def _ws(logs, tmp_path, **cfg):
    base = load_config(overrides={"logs": str(logs)})
    return open_workspace(replace(base, data_dir=str(tmp_path / "data"), db_url=f"sqlite:///{tmp_path}/a.sqlite",
                                  **cfg))


def _held(data, monkeypatch, fail: bool = False):
    """The app's evaluation, held until `release` is set; then the real one (or a failure)."""
    release = threading.Event()

    def held(ws, run=None):
        if run is not None:
            run.mark = data.labels_mark(ws)
        assert release.wait(120)
        if fail:
            raise RuntimeError("the rules could not be read")
        return evaluate(ws)

    monkeypatch.setattr(data, "_evaluate", held)
    return release


def _same(a, b) -> bool:
    """Equal, floats to 12 digits (drift scores differ in their last bits between two runs:
    DuckDB's thread order)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list | tuple) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12, nan_ok=True)
    return a == b


def _wait(data, ws):
    data._evaluation(ws, ws.fingerprint)[1].future.exception(timeout=120)


def test_the_summary_is_complete_but_for_its_alerts_until_the_evaluation_is_done(
        generated_logs, tmp_path, monkeypatch, clear_streamlit_cache):
    from ui import data, warm

    monkeypatch.setattr(warm, "start", lambda modules=None: None)
    release = _held(data, monkeypatch)
    ws = _ws(generated_logs, tmp_path)
    pending = data.weekly(ws, ws.fingerprint, WEEK)
    assert pending["alerts_pending"] is True and pending["alerts"] == []
    # the CLI's summary of the same week (its own evaluation): every area equal, and its alerts
    cli = weekly_summary(ws, WEEK, standard_providers(ws.config.database_url), exact=False)
    release.set()   # before any assert, so that a failure does not leave it waiting
    assert _same(pending["areas"], cli["areas"]) and pending["headline"] == cli["headline"]
    assert cli["alerts"], "the incident week fires alerts"
    _wait(data, ws)
    done = data.weekly(ws, ws.fingerprint, WEEK)
    assert done["alerts_pending"] is False and _same(done["alerts"], cli["alerts"])
    # the oracle: episodes of the whole history that overlap the week, by hand
    start, end = week_bounds(WEEK)
    by_hand = [e for e in evaluate(ws) if e.start < end and (e.end is None or e.end > start)]
    assert [(a["rule"], a["subject"], a["start"]) for a in done["alerts"]] == \
        [(e.rule, e.subject, e.start) for e in by_hand]


def test_a_failed_evaluation_is_said_on_the_summary_and_its_export(generated_logs, tmp_path, monkeypatch,
                                                                 clear_streamlit_cache):
    from ui import data, warm

    monkeypatch.setattr(warm, "start", lambda modules=None: None)
    _held(data, monkeypatch, fail=True).set()
    ws = _ws(generated_logs, tmp_path)
    _wait(data, ws)
    s = data.weekly(ws, ws.fingerprint, WEEK)
    assert s["alerts_pending"] is False and s["alerts"] == []
    assert s["alerts_error"] == "the rules could not be read"
    assert "Alerts unavailable: the alert rules could not be evaluated (the rules could not be read)" in to_markdown(s)


def test_the_page_says_the_alerts_are_pending_and_adds_them_when_done(app_env, generated_logs, monkeypatch):
    from ui import data

    release = _held(data, monkeypatch)
    threading.Timer(100, release.set).start()   # whatever fails below, it ends
    at = app_env(generated_logs)
    at.switch_page("pages/summary.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="summary_week").set_value(WEEK)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    said = " ".join(c.value for c in at.caption)
    assert "Alert rules are still being evaluated" in said
    buttons = at.get("download_button")
    assert len(buttons) == 3 and all(b.proto.disabled for b in buttons)
    assert any("on v3 since Tuesday" in e.value for e in at.error)   # the rest is there meanwhile
    release.set()
    for _ in range(120):   # what the page's polling fragment does, a run at a time
        at.run()
        if not any("still being evaluated" in c.value for c in at.caption):
            break
        threading.Event().wait(0.5)
    assert not at.exception, [e.value for e in at.exception]
    assert not any("still being evaluated" in c.value for c in at.caption)
    assert not any(b.proto.disabled for b in at.get("download_button"))
    assert any("Alert **" in m.value for m in at.markdown)


@pytest.fixture(scope="module")
def big_enough(tmp_path_factory):
    out = tmp_path_factory.mktemp("weekly-fast") / "logs"
    sample.generate(out, days=14, rows_per_day=800, seed=3)
    return out


def test_the_page_summary_takes_histogram_percentiles_above_the_exact_limit(big_enough, tmp_path):
    ws = _ws(big_enough, tmp_path, exact_quantile_max_rows=100)
    s = weekly_summary(ws, default_week(ws), exact=False)   # a whole week of the logs
    exact = weekly_summary(ws, s["week"], exact=True)["areas"]["latency"]
    lat = s["areas"]["latency"]
    assert (lat["method"], exact["method"]) == (APPROX, EXACT) and lat["p95"] != exact["p95"]
    start, end = week_bounds(s["week"])
    t = pq.read_table(big_enough)
    ok = t.filter(pc.and_(pc.and_(pc.greater_equal(t["timestamp"], start), pc.less(t["timestamp"], end)),
                          pc.equal(t["status"], "ok")))
    x = ok["latency_ms"].to_numpy()
    for q in (50, 95, 99):
        want = np.percentile(x, q)
        assert exact[f"p{q}"] == pytest.approx(want, rel=1e-9)
        assert abs(lat[f"p{q}"] - want) <= sketch.RELATIVE_ERROR * want + 1e-9


def test_the_cli_summary_is_exact_unless_fast(big_enough, tmp_path, monkeypatch, capsys):
    (tmp_path / "m.toml").write_text("exact_quantile_max_rows = 100\n")
    monkeypatch.setenv("MONITORING_DATA_DIR", str(tmp_path / "data"))
    week = default_week(_ws(big_enough, tmp_path))
    args = ["summary", "--logs", str(big_enough), "--config", str(tmp_path / "m.toml"), "--week", week,
            "--format", "json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["areas"]["latency"]["method"] == EXACT
    assert main([*args, "--fast"]) == 0
    assert json.loads(capsys.readouterr().out)["areas"]["latency"]["method"] == APPROX

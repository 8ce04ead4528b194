"""Alert rules: each fires on the incident built for it, at its time, and nowhere else."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from monitoring import sample
from monitoring.alerts import RULES, evaluate
from monitoring.alerts.engine import Context, episodes_of, rule_params
from monitoring.alerts.store import acknowledge, history, open_alerts_db, sync
from monitoring.alerts.webhook import post
from monitoring.config import SLO, ConfigError, load_config
from monitoring.logs.workspace import open_workspace

ROOT = Path(__file__).resolve().parent.parent

# rule -> the incident kind it exists for
EXPECTED = {
    "error_rate": "errors",
    "burn_rate_fast": "errors",
    "burn_rate_slow": "errors",
    "throughput_high": "traffic_spike",
    "gap": "gap",
    "throughput_low": "gap",
    "latency_p95": "latency",
    "accuracy_floor": "prediction_drift",   # the shift's extra "high" predictions are wrong
}
# The drift rule has one subject per column, scored per day: it fires over the days whose
# traffic drifted (from the start of the day the drift began).
DRIFT = {"income": "income_drift", "device": "device_drift", "prediction": "prediction_shift"}
# How long after its incident starts (and ends) a rule may take to fire (and resolve): its
# trailing window plus a step, plus the 30-minute merge on the way out.
WINDOW = {"accuracy_floor": timedelta(hours=24), "burn_rate_slow": timedelta(hours=6)}
# The rollback rule compares versions (subject "v3 vs v2"); tests/test_compare.py checks it.
ROLLBACK = {("rollback", "v3 vs v2"): 1}


@pytest.fixture(scope="module")
def episodes(generated_logs):
    ws = open_workspace(load_config(), logs=str(generated_logs))
    return evaluate(ws)


def test_every_rule_fires_on_its_incident_at_its_time(episodes):
    incidents = {i.kind: i for i in sample.incidents()}
    fired = {e.rule for e in episodes}
    assert fired == set(EXPECTED) | {"drift", "rollback"}
    for e in episodes:
        if e.rule in ("drift", "rollback"):
            continue
        inc = incidents[EXPECTED[e.rule]]
        window = WINDOW.get(e.rule, timedelta(hours=1))
        assert inc.start <= e.start <= inc.start + window + timedelta(minutes=15), (e.rule, e.start)
        assert e.end is not None and e.end <= inc.end + window + timedelta(minutes=35), (e.rule, e.end)


def test_drift_fires_per_column_on_the_days_it_drifted(episodes):
    by_name = {i.name: i for i in sample.incidents()}
    drift = {e.subject: e for e in episodes if e.rule == "drift"}
    assert set(drift) == set(DRIFT)
    for subject, e in drift.items():
        inc = by_name[DRIFT[subject]]
        assert e.start == inc.start, (subject, e.start)      # when it began (noon too), not its day
        if inc.end < datetime(2026, 11, 23, tzinfo=UTC):
            assert e.end == inc.end                              # the end of its last drifted day
        else:
            assert e.end is None and e.firing                     # still drifting at the end
    assert "income" in drift["income"].message and drift["income"].threshold == 0.1


def test_one_episode_per_incident(episodes):
    per_rule = {}
    for e in episodes:
        per_rule[(e.rule, e.subject)] = per_rule.get((e.rule, e.subject), 0) + 1
    assert per_rule == {(r, "service"): 1 for r in EXPECTED} | {("drift", s): 1 for s in DRIFT} | ROLLBACK


def test_calm_weeks_are_quiet(episodes):
    calm_end = datetime(2026, 11, 2, tzinfo=UTC)   # ISO weeks 43 and 44
    assert [e for e in episodes if e.start < calm_end] == []


def _ctx(requests, errors, step_s=300):
    n = len(requests)
    t0 = datetime(2026, 11, 2, tzinfo=UTC)
    return Context(step_s=step_s, b0=0, times=[t0 + timedelta(seconds=step_s * (i + 1)) for i in range(n)],
                   series={"requests": np.asarray(requests, float), "errors": np.asarray(errors, float),
                           "expected": np.asarray(requests, float)},
                   hist=np.zeros((n, 0), dtype=np.int32), bins=np.array([], dtype=np.int64), minute0=0,
                   minute_counts=np.zeros(1), minute_expected=np.zeros(1), within_data=np.ones(n, bool))


def test_burn_rate_arithmetic_by_hand():
    # 100 requests per 5 minutes. From bucket 24 on, 20 failures per bucket: 20% = 20x a 1% budget.
    req = [100] * 48
    err = [0] * 24 + [20] * 24
    ctx = _ctx(req, err)
    p = rule_params({})["burn_rate_fast"]
    sig = RULES["burn_rate_fast"].evaluate(ctx, p, SLO())[0]
    # The 1-hour window (12 buckets) holds k bad buckets: burn = 20k/12; > 14.4 from k = 9.
    expected_long = np.array([20 * min(max(i - 23, 0), 12) / 12 for i in range(48)])
    assert np.allclose(sig.value, expected_long)
    assert np.flatnonzero(sig.firing)[0] == 24 + 8
    # At 14% (14x) the fast rule never fires; the slow one (6x over 6 h and 30 min) fires once
    # the 6-hour window (72 buckets, fewer at the start of the history) holds enough of it:
    # at bucket i it holds bad = i - max(24, i - 71) + 1 failing buckets out of min(i + 1, 72),
    # so burn = 14 bad / min(i + 1, 72), above 6 first at i = 42 (14 x 19 / 43 = 6.19).
    ctx = _ctx([100] * 120, [0] * 24 + [14] * 96)
    assert not RULES["burn_rate_fast"].evaluate(ctx, rule_params({})["burn_rate_fast"], SLO())[0].firing.any()
    slow = RULES["burn_rate_slow"].evaluate(ctx, rule_params({})["burn_rate_slow"], SLO())[0]
    burn = [14 * max(i - max(24, i - 71) + 1, 0) / min(i + 1, 72) for i in range(120)]
    assert np.allclose(slow.value, burn)
    assert np.flatnonzero(slow.firing)[0] == 42 == next(i for i, b in enumerate(burn) if b > 6)


def test_rolling_sums_and_quantiles_match_numpy():
    rng = np.random.default_rng(1)
    from monitoring.metrics import sketch

    values = [rng.lognormal(5, 0.6, rng.integers(5, 40)) for _ in range(30)]
    all_bins = np.unique(np.concatenate([sketch.bin_of(v) for v in values]))
    hist = np.zeros((30, len(all_bins)), dtype=np.int32)
    for i, v in enumerate(values):
        np.add.at(hist[i], np.searchsorted(all_bins, sketch.bin_of(v)), 1)
    ctx = _ctx([len(v) for v in values], [0] * 30)
    ctx.hist, ctx.bins = hist, all_bins
    p95, n = ctx.rolling_quantile(0.95, 6)
    for i in range(30):
        window = np.concatenate(values[max(0, i - 5): i + 1])
        assert n[i] == len(window)
        exact = np.percentile(window, 95)
        assert abs(p95[i] - exact) <= sketch.RELATIVE_ERROR * exact
    assert np.allclose(ctx.rolling("requests", 6), [sum(len(v) for v in values[max(0, i - 5): i + 1]) for i in range(30)])


def test_episodes_merge_short_quiet_spells_and_stay_open_at_the_end():
    from monitoring.alerts.rules import Signal

    fire = np.array([0, 1, 1, 0, 1, 0, 0, 0, 1, 1], bool)
    sig = Signal("service", fire, np.arange(10.0), "v={value:g}", 1.0)
    times = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=5 * i) for i in range(10)]
    eps = episodes_of(RULES["error_rate"], sig, times, merge_points=1)
    assert [(e.start, e.end, e.peak) for e in eps] == [(times[1], times[5], 4.0), (times[8], None, 9.0)]
    assert eps[1].firing and eps[0].message == "v=4"


def test_rule_configuration_is_validated():
    assert rule_params({"rules": {"latency_p95": {"window_minutes": 30}}})["latency_p95"]["window_minutes"] == 30
    with pytest.raises(ConfigError, match="unknown rule"):
        rule_params({"rules": {"nope": {}}})
    with pytest.raises(ConfigError, match="unknown key"):
        rule_params({"rules": {"gap": {"minutes": 3}}})


def test_history_is_stored_once_and_acknowledged(any_db_url, episodes):
    engine = open_alerts_db(any_db_url)   # SQLite and the suite's own PostgreSQL server
    assert sync(engine, "logs", episodes) == {"new": len(episodes), "updated": 0}
    assert sync(engine, "logs", episodes) == {"new": 0, "updated": 0}
    h = history(engine, "logs")
    assert h.height == len(episodes)
    acknowledge(engine, int(h["id"][0]), "ana", "looking")
    h = history(engine, "logs")
    assert h["ack_by"][0] == "ana" and h["ack_note"][0] == "looking"
    with pytest.raises(ValueError):
        acknowledge(engine, 10**9, "ana")
    with pytest.raises(ValueError):
        acknowledge(engine, int(h["id"][0]), "  ")


class _Hook(BaseHTTPRequestHandler):
    plan: list[int] = []
    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        code = type(self).plan.pop(0) if type(self).plan else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    _Hook.plan, _Hook.received = [], []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook
    server.shutdown()


def test_webhook_retries_then_delivers(hook_server):
    url, hook = hook_server
    hook.plan = [503, 200]
    d = post(url, {"alerts": [1]}, timeout=2, retries=3, backoff=0.01)
    assert d.ok and d.attempts == 2 and d.status == 200
    assert hook.received == [{"alerts": [1]}] * 2


def test_webhook_does_not_retry_a_refusal_and_gives_up_on_silence(hook_server):
    url, hook = hook_server
    hook.plan = [400]
    d = post(url, {}, timeout=2, retries=3, backoff=0.01)
    assert not d.ok and d.attempts == 1 and d.status == 400
    dead = post("http://127.0.0.1:9/", {}, timeout=0.5, retries=2, backoff=0.01)
    assert not dead.ok and dead.attempts == 3


def _cli(*args, cwd=ROOT, env=None):
    import os

    e = dict(os.environ) | (env or {})
    return subprocess.run([sys.executable, "-m", "monitoring", "alerts", *args], cwd=cwd, env=e,
                          capture_output=True, text=True, timeout=300)


def _main(capsys, *args) -> tuple[int, str, str]:
    """`monitoring alerts ARGS` in this process (monitoring.cli.main): exit code, stdout, stderr."""
    from monitoring.cli.main import main

    capsys.readouterr()
    code = main(["alerts", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_exit_codes_json_and_webhook(tmp_path, generated_logs, hook_server, monkeypatch, capsys):
    url, hook = hook_server
    toml = tmp_path / "monitoring.toml"
    toml.write_text(f'[alerts]\nwebhooks = ["{url}"]\nwebhook_retries = 1\n')
    env = {"MONITORING_CONFIG": str(toml), "MONITORING_DB_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    # One real process (bad input: no evaluation to wait for): its exit status is main()'s
    # return, and a bad time is one line, not a traceback.
    r = _cli("check", "--logs", str(generated_logs), "--at", "tuesday", env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("error: ")
    # The other exit codes through the same entry point, in this process (no interpreter and
    # imports to start again for each).
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, stdout, _ = _main(capsys, "check", "--logs", str(generated_logs), "--at", "2026-11-05T15:00:00Z",
                            "--format", "json")
    assert code == 1
    out = json.loads(stdout)
    assert {a["rule"] for a in out["firing"]} >= {"error_rate", "burn_rate_fast"}
    assert out["webhooks"][0]["ok"]
    assert {a["rule"] for a in hook.received[0]["alerts"]} == {a["rule"] for a in out["firing"]}
    code, stdout, _ = _main(capsys, "check", "--logs", str(generated_logs), "--at", "2026-11-01T12:00:00Z")
    assert code == 0 and "nothing firing" in stdout
    code, _, stderr = _main(capsys, "check", "--logs", str(generated_logs), "--at", "tuesday")
    assert code == 2 and "Traceback" not in stderr and stderr.startswith("error: ")
    code, stdout, _ = _main(capsys, "history", "--logs", str(generated_logs), "--format", "json")
    assert code == 0 and len(json.loads(stdout)["episodes"]) == len(EXPECTED) + len(DRIFT) + len(ROLLBACK)


def test_check_rejects_a_bad_rule_config(tmp_path, generated_logs):
    toml = tmp_path / "monitoring.toml"
    toml.write_text("[alerts.rules.unknown_rule]\nenabled = true\n")
    r = _cli("check", "--logs", str(generated_logs), "--no-store", env={"MONITORING_CONFIG": str(toml)})
    assert r.returncode == 2 and "unknown rule" in r.stderr and "Traceback" not in r.stderr


def test_long_histories_get_a_coarser_grid_with_the_same_counts(generated_logs, monkeypatch):
    from monitoring.alerts import engine

    ws = open_workspace(load_config(), logs=str(generated_logs))
    fine = engine.build_context(ws)
    monkeypatch.setattr(engine, "MAX_CELLS", fine.hist.size // 3)
    coarse = engine.build_context(ws)
    assert coarse.step_s == 4 * fine.step_s
    assert coarse.hist.size <= fine.hist.size // 3
    assert coarse.series["requests"].sum() == fine.series["requests"].sum() == ws.extent.rows
    assert coarse.hist.sum() == fine.hist.sum()
    # Each coarse bucket holds exactly the four fine buckets it spans.
    ratio = coarse.step_s // fine.step_s
    offset = fine.b0 - coarse.b0 * ratio
    padded = np.concatenate([np.zeros(offset), fine.series["requests"]])
    padded = np.concatenate([padded, np.zeros(-len(padded) % ratio)])
    assert np.array_equal(padded.reshape(-1, ratio).sum(axis=1), coarse.series["requests"])

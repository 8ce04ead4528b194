"""Comparisons on the sample logs and generated logs: the SQL evidence against numpy, the
documented regression flagged with a rollback, the calm pair not; CLI, settings and the
rollback signal in alerts and the weekly summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from monitoring import sample
from monitoring.cli.main import main
from monitoring.compare import compare, load_compare_settings
from monitoring.compare.queries import window_stats
from monitoring.config import ConfigError, load_config
from monitoring.logs.workspace import open_workspace
from monitoring.query.filters import Filters


@pytest.fixture(scope="module")
def ws(sample_logs):
    return open_workspace(load_config(overrides={"logs": str(sample_logs)}))


def test_sql_order_statistics_equal_numpy(ws):
    """The evidence from SQL holds the exact sorted values at every rank it fetched, and the
    point percentiles equal numpy's (linear) on the same rows."""
    f = Filters(start=datetime(2026, 11, 12, tzinfo=UTC), end=datetime(2026, 11, 13, tzinfo=UTC))
    st = window_stats(ws, ("v2", "v3"), f)
    for v in ("v2", "v3"):
        rows = ws.source.query(ws.con, "SELECT latency_ms, is_error, score FROM logs WHERE model_version = $v "
                                       "AND ts >= $s AND ts < $e", {"v": v, "s": f.start, "e": f.end})
        ok = np.sort(rows.filter(~rows["is_error"])["latency_ms"].to_numpy())
        s = st[v]
        assert s.requests == rows.height and s.errors == int(rows["is_error"].sum())
        assert s.latency.n == len(ok) and len(s.latency.ranks) > 10
        np.testing.assert_allclose(s.latency.values, ok[s.latency.ranks - 1], rtol=1e-12)
        for q in (0.5, 0.95, 0.99):
            assert s.latency.estimates[q] == pytest.approx(np.quantile(ok, q), rel=1e-12)
        scores = rows.filter(~rows["is_error"])["score"].to_numpy()
        assert s.score.mean == pytest.approx(scores.mean()) and s.score.var == pytest.approx(scores.var(ddof=1))


def test_the_regressed_version_is_significantly_slower_at_p95_with_a_rollback(ws):
    r = compare(ws)                                    # default: v2 (most traffic) vs v3 (newest)
    c = r.comparison
    assert (c.baseline, c.candidate) == ("v2", "v3")
    p95 = next(m for m in c.metrics if m.name == "p95_latency_ms")
    assert p95.significant and p95.worse and p95.guarded and p95.ci[0] > 0.1 * p95.baseline
    assert c.verdict == "worse" and c.rollback
    assert c.reasons[0].startswith("v3 is slower at P95 by") and "significant" in c.reasons[0]
    # Outside the regression (before 2026-11-17 09:00) v3 is as fast as v2: no rollback.
    calm = compare(ws, "v2", "v3", end=datetime(2026, 11, 17, tzinfo=UTC)).comparison
    assert not calm.rollback and calm.verdict != "worse"


def test_the_calm_pair_raises_no_rollback(ws):
    c = compare(ws, "v1", "v2").comparison
    assert not c.rollback and c.verdict != "worse"
    p95 = next(m for m in c.metrics if m.name == "p95_latency_ms")
    assert p95.better and not p95.worse                  # v2 is 10% faster by construction


def test_not_enough_traffic_gives_an_estimate_of_the_wait(ws):
    """The first hour of the v3 canary: too little to tell, with an estimate of how long."""
    t0 = datetime(2026, 11, 10, tzinfo=UTC)
    c = compare(ws, "v2", "v3", start=t0, end=t0 + timedelta(hours=3)).comparison
    assert c.verdict == "not_enough_data" and not c.rollback
    assert "Not enough traffic yet to tell" in c.headline and "at this rate" in c.headline


def test_cli_json_has_exactly_the_documented_shape(sample_logs, capsys):
    assert main(["compare", "--logs", str(sample_logs), "--baseline", "v2", "--candidate", "v3",
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"baseline", "candidate", "window", "traffic", "metrics", "verdict", "rollback", "answered",
                        "reasons"}
    assert set(out["window"]) == {"start", "end"} and set(out["traffic"]) == {"baseline", "candidate"}
    names = [m["name"] for m in out["metrics"]]
    assert {"error_rate", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "prediction_distribution",
            "score_mean", "accuracy"} == set(names)
    for m in out["metrics"]:
        assert set(m) == {"name", "baseline", "candidate", "difference", "ci", "significant", "worse", "guarded"}
        assert m["difference"] == pytest.approx(m["candidate"] - m["baseline"])
        assert m["ci"][0] <= m["difference"] <= m["ci"][1]
    assert out["verdict"] == "worse" and out["rollback"] is True
    assert out["traffic"] == {"baseline": 29_143, "candidate": 10_519}     # hand count below
    assert {m["name"] for m in out["metrics"] if m["guarded"]} == {"p95_latency_ms", "error_rate", "accuracy"}


def test_cli_table_and_window(sample_logs, capsys):
    assert main(["compare", "--logs", str(sample_logs), "--baseline", "v1", "--candidate", "v2",
                 "--start", "2026-10-29", "--end", "2026-10-31", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["window"] == {"start": "2026-10-29T00:00:00Z", "end": "2026-10-31T00:00:00Z"}
    assert out["rollback"] is False
    assert main(["compare", "--logs", str(sample_logs)]) == 0
    text = capsys.readouterr().out
    assert "v3 (candidate) against v2 (baseline)" in text and "ROLLBACK" in text


@pytest.mark.parametrize("args, message", [
    (["--baseline", "v9"], "version 'v9' has no traffic"),
    (["--baseline", "v2", "--candidate", "v2"], "both 'v2'"),
    (["--start", "2026-11-05", "--end", "2026-11-01"], "--end must be after --start"),
    (["--start", "yesterday"], "not an ISO 8601 time"),
    (["--start", "2030-01-01"], "fewer than two versions"),
])
def test_cli_bad_input_is_one_sentence(sample_logs, capsys, args, message):
    assert main(["compare", "--logs", str(sample_logs), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("toml, message", [
    ("[compare]\np95_latncy_ms = '+10%'\n", "did you mean 'p95_latency_ms'"),
    ("[compare]\nerror_rate = '0.5pp'\n", "expected a signed tolerance"),
    ("[compare]\np95_latency_ms = '+2pp'\n", "percentage points only apply to rates"),
    ("[compare]\naccuracy = '+20ms'\n", "ms and s only apply to latencies"),
    ("[compare]\nalpha = 0.9\n", "alpha must be a number between 0 and 0.5"),
    ("[compare]\nmixture_requests = -1\n", "mixture_requests must be a positive number"),
])
def test_settings_errors(tmp_path, toml, message):
    p = tmp_path / "monitoring.toml"
    p.write_text(toml)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("+", r"\+")):
        load_compare_settings(load_config(str(p)))


@pytest.mark.parametrize("toml, metric, direction, relative, amount", [
    ("", "p95_latency_ms", 1, True, 0.10),
    ("[compare]\nerror_rate = '+0.25pp'\n", "error_rate", 1, False, 0.0025),
    ("[compare]\np99_latency_ms = '+0.3s'\n", "p99_latency_ms", 1, False, 300.0),
    ("[compare]\naccuracy = '-1.5pp'\n", "accuracy", -1, False, 0.015),
    ("[compare]\nscore_mean = '-0.02'\n", "score_mean", -1, False, 0.02),
])
def test_settings_tolerances(tmp_path, toml, metric, direction, relative, amount):
    p = tmp_path / "monitoring.toml"
    p.write_text(toml)
    t = load_compare_settings(load_config(str(p))).guarded[metric]
    assert (t.direction, t.relative) == (direction, relative) and t.amount == pytest.approx(amount)


def test_a_metric_can_be_unguarded(tmp_path):
    p = tmp_path / "monitoring.toml"
    p.write_text("[compare]\naccuracy = 'off'\n")
    assert set(load_compare_settings(load_config(str(p))).guarded) == {"p95_latency_ms", "error_rate"}


# -- the rollback signal everywhere -------------------------------------------------------------

@pytest.fixture(scope="module")
def episodes(generated_logs):
    from monitoring.alerts import evaluate

    return evaluate(open_workspace(load_config(), logs=str(generated_logs)))


def test_rollback_rule_fires_on_the_regression_and_keeps_firing(episodes):
    inc = next(i for i in sample.incidents() if i.kind == "latency")
    rb = [e for e in episodes if e.rule == "rollback"]
    assert [e.subject for e in rb] == ["v3 vs v2"]
    e = rb[0]
    assert inc.start <= e.start <= inc.end, e.start           # fires during the regression
    assert e.firing and e.page == "Compare"                   # a decided test stays decided
    assert "v3 is slower at P95" in e.message and "{" not in e.message


def test_rollback_reaches_the_webhook(tmp_path, generated_logs):
    import subprocess
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    got: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        toml = tmp_path / "monitoring.toml"
        toml.write_text(f'[alerts]\nwebhooks = ["http://127.0.0.1:{server.server_address[1]}/"]\n')
        env = {"MONITORING_CONFIG": str(toml), "MONITORING_DB_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
               "PATH": "/usr/bin:/bin", "MONITORING_DATA_DIR": str(tmp_path / "data")}
        r = subprocess.run([sys.executable, "-m", "monitoring", "alerts", "check", "--logs", str(generated_logs),
                            "--format", "json"], env=env, capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
    assert r.returncode == 1, r.stderr
    assert "rollback" in {a["rule"] for a in json.loads(r.stdout)["firing"]}
    assert "rollback" in {a["rule"] for a in got[0]["alerts"]}


def test_weekly_summary_carries_the_rollback(ws):
    from monitoring.compare.report import rollback_in_week
    from monitoring.reports.summary import Providers, weekly_summary

    p = Providers(rollback=rollback_in_week)
    w47, w44, w45 = (weekly_summary(ws, w, p) for w in ("2026-W47", "2026-W44", "2026-W45"))
    assert w47["rollback"]["rollback"] and w47["rollback"]["candidate"] == "v3"
    assert w47["status"] == "red" and "Roll back v3" in w47["headline"]
    assert not w44["rollback"]["rollback"] and w44["rollback"]["candidate"] == "v2"
    assert w45["rollback"] is None                      # v2 served alone that week


def _batch_logs(path, drop: tuple[str, ...]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    n = 4000
    cols = {"request_id": [f"r{i}" for i in range(n)],
            "timestamp": pa.array([datetime(2026, 11, 1) + timedelta(seconds=30 * i) for i in range(n)],
                                  pa.timestamp("us")),
            "model_version": ["a" if i % 2 else "b" for i in range(n)],
            "latency_ms": rng.lognormal(4.6, 0.4, n), "status": ["ok"] * n,
            "prediction": rng.choice(["x", "y"], n).tolist(), "score": rng.random(n), "age": rng.integers(18, 90, n)}
    pq.write_table(pa.table({k: v for k, v in cols.items() if k not in drop}), path / "logs.parquet")
    return path / "logs.parquet"


@pytest.mark.parametrize("drop, absent, note", [
    (("latency_ms",), {"p50_latency_ms", "p95_latency_ms", "p99_latency_ms"}, "no latency_ms column"),
    (("status",), {"error_rate"}, "no status column"),
    (("timestamp",), set(), "no timestamps"),
    (("latency_ms", "status", "timestamp"), {"error_rate", "p95_latency_ms"}, "no timestamps"),
])
def test_batch_logs_compare_what_they_hold(tmp_path, capsys, drop, absent, note):
    logs = _batch_logs(tmp_path, drop)
    assert main(["compare", "--logs", str(logs), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    names = {m["name"] for m in out["metrics"]}
    assert not names & absent and {"prediction_distribution", "score_mean"} <= names
    assert any(note in r for r in out["reasons"])
    assert out["rollback"] is False                      # both versions draw from one distribution
    # With time, the window is where both served: from b's first row to a's last but one.
    n = 2000 if "timestamp" in drop else 1999
    assert out["traffic"] == {"baseline": n, "candidate": n}

"""The weekly summary: same figures as `stats`, statuses for the incident weeks, exports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitoring.cli.main import main
from monitoring.config import load_config
from monitoring.fmt import md as escape
from monitoring.fmt import ms
from monitoring.logs.workspace import open_workspace
from monitoring.reports.export import figures, to_html, to_markdown
from monitoring.reports.providers import standard_providers
from monitoring.reports.summary import default_week, week_bounds, weekly_summary

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ws(generated_logs):
    return open_workspace(load_config(), logs=str(generated_logs))


@pytest.fixture(scope="module")
def weeks(ws):
    providers = standard_providers()
    return {w: weekly_summary(ws, w, providers) for w in ("2026-W43", "2026-W44", "2026-W45", "2026-W46", "2026-W47")}


@pytest.mark.parametrize(("week", "start"), [
    ("2026-W47", datetime(2026, 11, 16, tzinfo=UTC)),
    ("2026-W01", datetime(2025, 12, 29, tzinfo=UTC)),   # ISO week 1 can start in December
    ("2020-W53", datetime(2020, 12, 28, tzinfo=UTC)),
])
def test_week_bounds_are_monday_midnight_utc(week, start):
    s, e = week_bounds(week)
    assert s == start and (e - s).days == 7 and s.weekday() == 0


@pytest.mark.parametrize("bad", ["2026-47", "2026-W54", "W47", "2026-W00", "'; DROP TABLE"])
def test_bad_weeks_are_refused(bad):
    with pytest.raises(ValueError):
        week_bounds(bad)


def test_default_week_is_the_last_complete_one(ws):
    # The generated logs end on Sunday 2026-11-22 24:00: W47 is complete once it is over.
    assert default_week(ws, now=datetime(2026, 11, 30, tzinfo=UTC)) == "2026-W47"
    assert default_week(ws, now=datetime(2026, 11, 22, 12, tzinfo=UTC)) == "2026-W46"


def test_figures_equal_the_stats_command(ws, weeks, generated_logs, capsys):
    s = weeks["2026-W45"]
    assert main(["stats", "--logs", str(generated_logs), "--start", "2026-11-02", "--end", "2026-11-09",
                 "--format", "json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert s["areas"]["traffic"]["requests"] == stats["rows"]
    assert s["areas"]["errors"]["error_rate"] == stats["error_rate"]
    assert s["areas"]["errors"]["errors"] == stats["errors"]
    for q in ("p50", "p95", "p99"):
        assert s["areas"]["latency"][q] == pytest.approx(stats["latency_ms"][q], rel=1e-12)
    assert s["areas"]["availability"]["availability"] == pytest.approx(1 - stats["error_rate"])
    assert sum(d["requests"] for d in s["daily"]) == stats["rows"]


def test_statuses_follow_the_incidents(weeks):
    status = {w: {k: a["status"] for k, a in s["areas"].items()} for w, s in weeks.items()}
    for calm in ("2026-W43", "2026-W44"):
        assert {status[calm][k] for k in ("traffic", "availability", "latency", "errors", "accuracy")} == {"green"}, calm
    assert status["2026-W45"]["errors"] == "amber"          # the error burst
    assert "Thursday 14:00 UTC" in weeks["2026-W45"]["areas"]["errors"]["reason"]
    assert status["2026-W46"]["availability"] == "red"      # 75 minutes of downtime
    assert weeks["2026-W46"]["areas"]["availability"]["downtime_minutes"] >= 75
    lat = weeks["2026-W47"]["areas"]["latency"]
    assert lat["status"] == "red" and "on v3 since Tuesday" in lat["reason"]
    # Each figure names its statistic: the worst hour is not the week's P95.
    assert f"week {ms(lat['p95'])}" in lat["reason"] and "worst hour" in lat["reason"]
    # The week of the 6x traffic spike (Sunday 2026-11-08 19:00) is no green traffic week.
    assert status["2026-W45"]["traffic"] == "amber"
    assert "Sunday 19:00 UTC" in weeks["2026-W45"]["areas"]["traffic"]["reason"]
    assert weeks["2026-W47"]["status"] == "red" and weeks["2026-W44"]["status"] == "green"


def test_accuracy_from_late_labels(weeks, ws):
    from monitoring.quality import ground_truth

    w44, w47 = weeks["2026-W44"]["areas"]["accuracy"], weeks["2026-W47"]["areas"]["accuracy"]
    assert w44["status"] == "green" and w44["source"] == "late labels"
    assert w47["status"] == "red" and w47["accuracy"] < 0.8 < w44["accuracy"]
    # The figure is the share of labelled requests whose prediction equals the label.
    t = ws.source.query(ws.con, "SELECT count(*) AS n, CAST(count_if(prediction = label) AS BIGINT) AS k FROM logs "
                                "WHERE label IS NOT NULL AND NOT is_error AND ts >= $s AND ts < $e",
                        {"s": datetime(2026, 10, 26, tzinfo=UTC), "e": datetime(2026, 11, 2, tzinfo=UTC)})
    assert w44["labelled"] == t["n"][0] and w44["accuracy"] == pytest.approx(t["k"][0] / t["n"][0])
    lo, hi = w44["accuracy_ci"]
    assert lo < w44["accuracy"] < hi
    assert ground_truth.window_accuracy(ws, *week_bounds("2026-W50")) == {
        "accuracy": None, "accuracy_ci": None, "labelled": 0, "correct": 0}


def test_what_happened(weeks):
    assert [v["version"] for v in weeks["2026-W44"]["versions"]["deployed"]] == ["v2"]
    assert [v["version"] for v in weeks["2026-W44"]["versions"]["retired"]] == ["v1"]
    assert [v["version"] for v in weeks["2026-W46"]["versions"]["deployed"]] == ["v3"]
    rules = {a["rule"] for a in weeks["2026-W45"]["alerts"]}
    assert {"error_rate", "burn_rate_fast", "throughput_high"} <= rules
    assert weeks["2026-W44"]["alerts"] == []
    alert = next(a for a in weeks["2026-W47"]["alerts"] if a["rule"] == "latency_p95")
    assert alert["start"] >= datetime(2026, 11, 17, 9, tzinfo=UTC) and alert["end"] is not None


def test_partial_first_week_says_so(weeks):
    t = weeks["2026-W44"]["areas"]["traffic"]
    assert t["change"] is None and "no full week before it" in t["reason"]
    assert weeks["2026-W43"]["partial"] is True


def test_a_week_without_traffic_is_grey_not_an_error(ws):
    s = weekly_summary(ws, "2026-W50")
    assert s["areas"]["traffic"]["status"] == "grey" and s["areas"]["latency"]["status"] == "grey"
    assert s["status"] == "grey" or s["status"] == "green"
    assert "No traffic" in s["areas"]["traffic"]["reason"]
    assert to_markdown(s) and to_html(s)


def test_markdown_carries_every_figure(weeks):
    s = weeks["2026-W47"]
    md = to_markdown(s)
    for _, fig, value in figures(s):
        assert f"| {fig} | {escape(value, limit=None)} |" in md
    assert escape(s["headline"], limit=None) in md


def test_html_is_self_contained_and_escapes_log_text(weeks):
    s = dict(weeks["2026-W47"])
    s["versions"] = {"deployed": [{"version": "<script>alert(1)</script>",
                                   "first_seen": datetime(2026, 11, 17, tzinfo=UTC)}], "retired": []}
    page = to_html(s)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # Nothing is loaded from the network: no external scripts, styles or images.
    assert "<script src=" not in page and "<link" not in page and "<img" not in page
    assert page.count("class=\"plotly-graph-div\"") == 3


def test_cli_formats_and_bad_week(tmp_path, generated_logs, capsys):
    out = tmp_path / "w.html"
    assert main(["summary", "--logs", str(generated_logs), "--week", "2026-W47", "--format", "html",
                 "--out", str(out)]) == 0
    assert out.read_text().startswith("<!doctype html>")
    assert main(["summary", "--logs", str(generated_logs), "--week", "2026-W47", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["start"] == "2026-11-16T00:00:00Z" and data["end"] == "2026-11-23T00:00:00Z"
    assert set(data["areas"]) == {"traffic", "availability", "latency", "errors", "drift", "accuracy"}
    assert all("status" in a and "reason" in a for a in data["areas"].values())
    assert main(["summary", "--logs", str(generated_logs), "--week", "2026-W99"]) == 2


def test_reviewed_accuracy_equals_queue_status(ws, tmp_path):
    """A queue answered during W47: the summary's accuracy is the `queue status` accuracy."""
    from monitoring.labelling import db, queues
    from monitoring.labelling.results import queue_report
    from monitoring.labelling.sampling import QueueSpec
    from monitoring.query.filters import Filters
    from monitoring.reports.providers import accuracy_in_week

    url = f"sqlite:///{tmp_path / 'q.sqlite'}"
    engine = db.open_db(url)
    spec = QueueSpec(filters=Filters(start=datetime(2026, 11, 16, tzinfo=UTC), end=datetime(2026, 11, 23, tzinfo=UTC)),
                     size=40, seed=3)
    qid = queues.create_queue(engine, ws.source, ws.con, spec)
    t = datetime(2026, 11, 18, 10, tzinfo=UTC).timestamp()   # answered on Wednesday of W47
    for i in range(40):
        item = queues.claim_next(engine, qid, "ana", now=t + i)
        verdict = "correct" if item.prediction == "low" else ("wrong" if i % 3 else "unsure")
        queues.answer(engine, item, "ana", verdict, now=t + i + 0.5)
    status = queue_report(engine, qid)
    engine.dispose()
    area = accuracy_in_week(url)(ws, *week_bounds("2026-W47"))
    assert area["source"] == "reviewers"
    assert area["accuracy"] == pytest.approx(status["accuracy"], rel=1e-12)
    assert area["accuracy_ci"] == pytest.approx(status["accuracy_ci"], rel=1e-12)
    assert area["labelled"] == status["accuracy_n"]
    # Answers given in another week do not count for this one.
    assert accuracy_in_week(url)(ws, *week_bounds("2026-W46"))["source"] == "late labels"


def test_drift_equals_the_drift_command(weeks, generated_logs, capsys):
    area = weeks["2026-W47"]["areas"]["drift"]
    assert main(["drift", "--logs", str(generated_logs), "--start", "2026-11-16", "--end", "2026-11-23",
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    cli = {f["name"]: f for f in out["features"]}
    for role in ("prediction", "label", "score"):
        if out.get(role):
            cli[out[role]["name"]] = out[role]
    assert set(area["drifted"]) == {n for n, f in cli.items() if f["drifted"]} == {"income", "device"}
    for c in area["columns"]:
        assert c["score"] == pytest.approx(cli[c["name"]]["score"], rel=1e-12)
        assert c["method"] == cli[c["name"]]["method"]
    # The two-day prediction shift hides in the week's numbers but not in its days.
    assert area["status"] == "red" and area["drifted_some_days"] == {"prediction": ["Thu 19", "Fri 20"]}
    assert weeks["2026-W45"]["areas"]["drift"]["status"] == "amber"     # income, from Tuesday
    assert weeks["2026-W43"]["areas"]["drift"]["status"] == "grey"      # the reference itself


def test_reviewer_verdicts_join_the_late_labels_on_request_id(ws):
    import polars as pl

    from monitoring.quality import ground_truth

    start, end = week_bounds("2026-W45")
    base = ground_truth.window_accuracy(ws, start, end)
    right = ws.source.query(ws.con, "SELECT request_id FROM logs WHERE NOT is_error AND label IS NOT NULL "
                                    "AND prediction = label AND ts >= $s AND ts < $e ORDER BY request_id LIMIT 10",
                            {"s": start, "e": end})
    unlabelled = ws.source.query(ws.con, "SELECT request_id FROM logs WHERE NOT is_error AND label IS NULL "
                                         "AND ts >= $s AND ts < $e ORDER BY request_id LIMIT 5",
                                 {"s": start, "e": end})
    # Reviewers overrule ten right-by-label predictions and add five verdicts of their own.
    reviewed = pl.concat([right.with_columns(pl.lit(False).alias("correct")),
                          unlabelled.with_columns(pl.lit(True).alias("correct"))])
    got = ground_truth.window_accuracy(ws, start, end, reviewed)
    assert got["labelled"] == base["labelled"] + 5
    assert got["correct"] == base["correct"] - 10 + 5


def test_cached_facts_give_the_same_extent_and_version_spans(ws, generated_logs):
    again = open_workspace(load_config(), logs=str(generated_logs))   # read from .data/cache
    assert again.extent == ws.extent
    spans = {v: (a, b) for v, a, b in ws.extent.version_spans}
    assert set(spans) == {"v1", "v2", "v3"}
    assert spans["v2"][0] >= datetime(2026, 10, 28, tzinfo=UTC) > spans["v1"][0]


def test_several_weeks_evaluate_the_alert_history_once(ws, monkeypatch):
    """The alert rules run over the whole history (seconds at 100M rows): a summary of five
    weeks evaluates it once, again only when the labels move (a reviewer's verdict), and each
    week lists exactly the episodes that overlap it (a hand count over the same episodes)."""
    from types import SimpleNamespace

    from monitoring.quality import marks
    from monitoring.reports.providers import alerts_in_week

    labels = {"mark": "m1"}
    monkeypatch.setattr(marks, "labels_mark", lambda config: labels["mark"])
    t = [datetime(2026, 11, d, tzinfo=UTC) for d in (1, 5, 10, 12, 20)]
    episodes = [SimpleNamespace(start=t[0], end=t[1], as_dict=lambda: {"e": 1}),
                SimpleNamespace(start=t[2], end=None, as_dict=lambda: {"e": 2}),
                SimpleNamespace(start=t[3], end=t[4], as_dict=lambda: {"e": 3})]
    calls = []
    provider = alerts_in_week(lambda w: calls.append(w.fingerprint) or episodes)
    weeks = ["2026-W44", "2026-W45", "2026-W46", "2026-W47", "2026-W48"]
    got = {w: [e["e"] for e in provider(ws, *week_bounds(w))] for w in weeks}
    want = {w: [i + 1 for i, e in enumerate(episodes)
                if e.start < week_bounds(w)[1] and (e.end is None or e.end > week_bounds(w)[0])] for w in weeks}
    assert got == want and got["2026-W45"] == [1] and got["2026-W46"] == [2, 3]
    assert calls == [ws.fingerprint]
    labels["mark"] = "m2"
    provider(ws, *week_bounds("2026-W47"))
    assert len(calls) == 2

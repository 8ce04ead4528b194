"""Drawing review samples from the logs: reproducible, stratified, with bounded quotas."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import UTC, datetime

import pytest

from monitoring.config import load_config
from monitoring.labelling import db, queues
from monitoring.labelling.sampling import QueueSpec, SamplingError, Segment, allocate, draw
from monitoring.logs.workspace import open_workspace
from monitoring.query.filters import Filters

START, END = datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def ws(generated_logs):
    return open_workspace(load_config(overrides={"logs": str(generated_logs)}))


def ids(sample):
    return sample.items["request_id"].to_list()


def test_same_settings_and_seed_give_the_same_sample(ws):
    spec = QueueSpec(filters=Filters(START, END), size=60, seed=42, calibration_share=0.2,
                     stratify_by="model_version", low_score=5)
    a, b = draw(ws.source, ws.con, spec), draw(ws.source, ws.con, spec)
    assert a.items.equals(b.items)
    other = draw(ws.source, ws.con, QueueSpec(filters=Filters(START, END), size=60, seed=43))
    assert len(set(ids(a)) & set(ids(other))) < 10


def test_uniform_sample_respects_the_window_and_skips_failed_requests(ws):
    s = draw(ws.source, ws.con, QueueSpec(filters=Filters(START, END, model_versions=("v2",)),
                                          size=80, seed=1))
    assert s.items.height == 80 and len(set(ids(s))) == 80
    assert s.items["ts"].min() >= START and s.items["ts"].max() < END
    assert set(s.items["model_version"].to_list()) == {"v2"}
    assert set(s.items["reason"].to_list()) == {"random"}
    assert sorted(s.items["position"].to_list()) == list(range(1, 81))
    n = ws.source.query(ws.con, "SELECT count(*) AS n FROM logs WHERE ts >= $s AND ts < $e AND "
                        "model_version = 'v2' AND NOT is_error", {"s": START, "e": END})["n"][0]
    assert s.population == n
    assert s.items["weight"].to_list() == [pytest.approx(n / 80)] * 80
    failed = ws.source.query(ws.con, "SELECT request_id FROM logs WHERE is_error")["request_id"].to_list()
    assert not set(failed) & set(ids(s))
    row = s.items.row(0, named=True)
    assert set(json.loads(row["inputs"])) == {f.name for f in ws.source.features}


@pytest.mark.parametrize(("column", "allocation"), [
    ("model_version", "equal"), ("model_version", "proportional"),
    ("endpoint", "equal"), ("prediction", "equal"),
])
def test_stratified_sampling_hits_its_strata(ws, column, allocation):
    s = draw(ws.source, ws.con, QueueSpec(size=90, seed=3, stratify_by=column, allocation=allocation))
    got = Counter(s.items["stratum"].to_list())
    assert got == Counter({k: v for k, v in s.allocation.items() if v})
    assert s.allocation == allocate(s.strata, 90, allocation)
    assert set(got) == set(s.strata)                             # every stratum is represented
    for r in s.items.iter_rows(named=True):                      # the stratum is the row's own value
        assert r[column] == r["stratum"]
        assert r["weight"] == pytest.approx(s.strata[r["stratum"]] / s.allocation[r["stratum"]])
    if allocation == "equal":
        assert max(got.values()) - min(got.values()) <= 1


@pytest.mark.parametrize(("counts", "n", "method", "expected"), [
    ({"a": 100, "b": 100, "c": 100}, 10, "equal", {"a": 4, "b": 3, "c": 3}),
    ({"a": 2, "b": 100, "c": 100}, 10, "equal", {"a": 2, "b": 4, "c": 4}),   # a small stratum gives way
    ({"a": 600, "b": 300, "c": 100}, 10, "proportional", {"a": 6, "b": 3, "c": 1}),
    ({"a": 550, "b": 300, "c": 150}, 10, "proportional", {"a": 6, "b": 3, "c": 1}),
    ({"a": 3, "b": 0}, 10, "equal", {"a": 3, "b": 0}),                      # fewer rows than asked
])
def test_allocation_table(counts, n, method, expected):
    assert allocate(counts, n, method) == expected


def test_quotas_are_targeted_and_never_more_than_half(ws):
    spec = QueueSpec(filters=Filters(START, END), size=40, seed=9, low_score=10,
                     segments=(Segment.parse("device=android"), Segment.parse("income=150000..")),
                     segment_size=10)
    s = draw(ws.source, ws.con, spec)
    reasons = Counter(s.items["reason"].to_list())
    assert reasons == {"random": 20, "low_score": 10, "segment": 10}
    p10 = ws.source.query(ws.con, "SELECT quantile_disc(score, 0.1) AS q FROM logs WHERE ts >= $s "
                          "AND ts < $e AND NOT is_error AND prediction IS NOT NULL",
                          {"s": START, "e": END})["q"][0]
    assert all(x <= p10 for x in s.items.filter(s.items["reason"] == "low_score")["score"])
    for r in s.items.filter(s.items["reason"] == "segment").iter_rows(named=True):
        inputs = json.loads(r["inputs"])
        assert inputs["device"] == "android" or inputs["income"] >= 150000
    # The random part is the one a plain sample of 20 would give: quotas do not bias it.
    plain = draw(ws.source, ws.con, QueueSpec(filters=Filters(START, END), size=20, seed=9))
    assert set(s.items.filter(s.items["reason"] == "random")["request_id"]) == set(ids(plain))
    with pytest.raises(SamplingError, match="at most half"):
        draw(ws.source, ws.con, QueueSpec(size=10, low_score=4, segments=spec.segments, segment_size=2))


@pytest.mark.parametrize(("spec", "match"), [
    (QueueSpec(size=0), "size"),
    (QueueSpec(stratify_by="income"), "cannot stratify"),
    (QueueSpec(segments=(Segment("nope", values=("x",)),), segment_size=2), "not in the logs"),
    (QueueSpec(segments=(Segment("region", low=1.0),), segment_size=2), "numeric column"),
    (QueueSpec(filters=Filters(datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 2, 1, tzinfo=UTC))),
     "no successful requests"),
    (QueueSpec(calibration_share=1.5), "calibration share"),
])
def test_unusable_settings_are_explained(ws, spec, match):
    with pytest.raises(SamplingError, match=match):
        draw(ws.source, ws.con, spec)


@pytest.mark.parametrize(("text", "expected"), [
    ("device=android", Segment("device", values=("android",))),
    ("device = android, ios", Segment("device", values=("android", "ios"))),
    ("income=80000..", Segment("income", low=80000.0)),
    ("income=..2e4", Segment("income", high=20000.0)),
    ("age=18..30", Segment("age", low=18.0, high=30.0)),
])
def test_segment_parsing(text, expected):
    assert Segment.parse(text) == expected


@pytest.mark.parametrize("text", ["device", "=x", "age=a..b", "age=.."])
def test_bad_segments(text):
    with pytest.raises(SamplingError):
        Segment.parse(text)


def test_calibration_share_of_the_random_part(ws):
    s = draw(ws.source, ws.con, QueueSpec(size=50, seed=2, calibration_share=0.2, low_score=10))
    cal = s.items.filter(s.items["calibration"])
    assert cal.height == 8 and set(cal["reason"].to_list()) == {"random"}   # ceil(0.2 * 40)


def test_a_queue_survives_its_logs_being_moved(generated_logs, tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(generated_logs / "date=2026-11-01", logs / "date=2026-11-01")
    local = open_workspace(load_config(overrides={"logs": str(logs)}))
    engine = db.open_db(f"sqlite:///{tmp_path / 'q.sqlite'}")
    q = queues.create_queue(engine, local.source, local.con, QueueSpec(size=5, seed=4))
    expected = local.source.query(local.con, "SELECT * FROM logs")
    shutil.rmtree(logs)                                             # the logs are rotated away
    item = queues.claim_next(engine, q, "ana")
    row = expected.filter(expected["request_id"] == item.request_id).row(0, named=True)
    assert item.prediction == row["prediction"] and item.score == pytest.approx(row["score"])
    assert item.model_version == row["model_version"]
    assert item.inputs == {f.name: row["f:" + f.name] for f in local.source.features}
    assert item.ts == row["ts"]
    engine.dispose()

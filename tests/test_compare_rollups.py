"""Compare and Models from the rollup store (the window's whole UTC days; the raw logs for
the partial first and last days) against the raw engine, on the generator's logs with
every incident (v3's latency regression, the calm v1/v2 canary) plus duplicated requests
and failed requests that carry a prediction, a score and a label (which the store's
feature tables count and the comparison must not); UTC and America/New_York."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from monitoring import sample
from monitoring.compare import CompareError, compare
from monitoring.compare import queries as cq
from monitoring.compare.versions import fleet
from monitoring.metrics import sketch
from monitoring.query.filters import Filters
from tests.rollup_helpers import built_workspace

D = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731


def _add_awkward_rows(logs: Path) -> None:
    """One more file on 2026-11-18 (inside v3's regression): 60 copies of that day's
    requests (duplicates, counted once) and 80 failed requests of v2 and v3 that carry a
    prediction, a score and a label."""
    day = pq.read_table(logs / "date=2026-11-18" / "part-0.parquet")
    copies = day.slice(100, 60)
    failed = day.slice(300, 80)
    failed = failed.set_column(failed.schema.get_field_index("request_id"), "request_id",
                               pc.binary_join_element_wise(failed["request_id"], pa.scalar("-f"), ""))
    failed = failed.set_column(failed.schema.get_field_index("status"), "status", pa.array(["error"] * 80))
    failed = failed.set_column(failed.schema.get_field_index("error_type"), "error_type", pa.array(["Boom"] * 80))
    failed = failed.set_column(failed.schema.get_field_index("label"), "label", failed["prediction"])
    pq.write_table(pa.concat_tables([copies, failed]), logs / "date=2026-11-18" / "part-extra.parquet")


@pytest.fixture(scope="module")
def built(tz, tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    logs = root / "logs"
    sample.generate(logs, days=30, rows_per_day=1500, seed=11)
    _add_awkward_rows(logs)
    _, ws, store = built_workspace(logs, root / "data")
    ws.source.rollups = store
    return ws


def _both(ws, *a, **kw):
    return compare(ws, *a, **kw), compare(ws, *a, raw=True, **kw)


def _same_evidence(s, r, *, exact: bool) -> None:
    for v in s.stats:
        a, b = s.stats[v], r.stats[v]
        assert (a.requests, a.errors, a.error_types, a.classes) == (b.requests, b.errors, b.error_types, b.classes)
        assert (a.labelled, a.correct, a.first, a.last) == (b.labelled, b.correct, b.first, b.last)
        assert a.latency.n == b.latency.n
        if a.score or b.score:
            assert a.score.n == b.score.n
            assert a.score.mean == pytest.approx(b.score.mean, rel=1e-12)
            assert a.score.var == pytest.approx(b.score.var, rel=1e-9)
        if exact:
            np.testing.assert_array_equal(a.latency.ranks, b.latency.ranks)
            # the raw engine's quantile_cont at (r - 1)/(n - 1) is the r-th value up to its
            # interpolation's last bit; the store's second pass reads the value itself
            np.testing.assert_allclose(a.latency.values, b.latency.values, rtol=1e-12)
        for q in (0.5, 0.95, 0.99):
            assert a.latency.estimates[q] == pytest.approx(b.latency.estimates[q],
                                                           rel=1e-12 if exact else sketch.RELATIVE_ERROR)


WINDOWS = {
    "whole days": (D(2026, 11, 10), D(2026, 11, 20)),
    "partial first and last days": (D(2026, 11, 9, 13, 7), D(2026, 11, 19, 17, 45, 30)),
    "the regression's days only": (D(2026, 11, 17), D(2026, 11, 20)),
    "before the regression": (D(2026, 11, 10, 6), D(2026, 11, 17)),
    "the calm canary": (D(2026, 10, 27, 12), D(2026, 11, 1)),
    "everything": (None, None),
}


@pytest.mark.parametrize("name", list(WINDOWS))
def test_every_figure_from_the_store_equals_the_raw_engine(built, name):
    start, end = WINDOWS[name]
    s, r = _both(built, start=start, end=end)
    assert s.origin.startswith("from the rollup store") and "exact percentiles" in s.origin
    assert r.origin == "from the raw logs (asked for)"
    assert (s.start, s.end, s.notes) == (r.start, r.end, r.notes)
    _same_evidence(s, r, exact=True)
    _close_metrics(s, r)
    assert (s.comparison.verdict, s.comparison.rollback) == (r.comparison.verdict, r.comparison.rollback)


def _close_metrics(s, r) -> bool:
    """Every judgement equal, every number to its last bits (sums against var_samp)."""
    for a, b in zip(s.comparison.metrics, r.comparison.metrics, strict=True):
        assert (a.name, a.significant, a.worse, a.better, a.decided) == (b.name, b.significant, b.worse, b.better,
                                                                         b.decided)
        assert a.difference == pytest.approx(b.difference, rel=1e-9, abs=1e-12)
        assert a.ci == pytest.approx(b.ci, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("pair, window, verdict", [
    (("v2", "v3"), WINDOWS["the regression's days only"], "worse"),          # a version that regresses
    (("v2", "v3"), WINDOWS["partial first and last days"], "worse"),
    (("v2", "v3"), WINDOWS["before the regression"], None),                   # the same pair, calm
    (("v1", "v2"), WINDOWS["the calm canary"], None),                        # one that does not regress
])
def test_the_verdict_from_the_histogram_is_the_raw_engines(built, pair, window, verdict):
    """Above exact_quantile_max_rows the store's histogram answers alone (within ±0.5%):
    the same verdict and rollback as the raw engine's exact order statistics."""
    ws = replace(built, config=replace(built.config, exact_quantile_max_rows=0))
    s, r = _both(ws, *pair, start=window[0], end=window[1])
    assert "log-histogram, within ±0.5%" in s.origin
    _same_evidence(s, r, exact=False)
    assert (s.comparison.verdict, s.comparison.rollback) == (r.comparison.verdict, r.comparison.rollback)
    if verdict == "worse":
        assert s.comparison.rollback and s.comparison.verdict == "worse"
    else:
        assert not s.comparison.rollback
    for a, b in zip(s.comparison.metrics, r.comparison.metrics, strict=True):
        assert (a.name, a.worse, a.significant) == (b.name, b.worse, b.significant)
        if a.name.endswith("latency_ms"):
            assert a.candidate == pytest.approx(b.candidate, rel=sketch.RELATIVE_ERROR)
            assert a.baseline == pytest.approx(b.baseline, rel=sketch.RELATIVE_ERROR)
    for v in s.stats:      # conservative: each version's binned interval holds the exact one
        for q in (0.5, 0.95, 0.99):
            lo, hi = s.stats[v].latency.interval(q, 3.0)
            rlo, rhi = r.stats[v].latency.interval(q, 3.0)
            assert lo <= rlo * (1 + 1e-12) and hi >= rhi * (1 - 1e-12) and hi - lo > 0


def test_the_awkward_rows_are_in_the_window_and_counted_as_raw(built):
    """The extra file's duplicates count once and its failed requests' predictions, scores and
    labels are left out: a hand count over the raw rows (pyarrow) agrees."""
    f = Filters(start=D(2026, 11, 18), end=D(2026, 11, 19))
    st = cq.window_stats(built, ("v2", "v3"), f)
    files = sorted(Path(built.config.logs).glob("date=2026-11-18/*.parquet"))
    t = pa.concat_tables([pq.read_table(p) for p in files]).to_pandas().drop_duplicates("request_id")
    for v in ("v2", "v3"):
        rows = t[t.model_version == v]
        ok = rows[rows.status == "ok"]
        assert st[v].requests == len(rows) and st[v].errors == int((rows.status != "ok").sum())
        assert st[v].score.n == ok.score.notna().sum()
        assert st[v].score.mean == pytest.approx(ok.score.mean(), rel=1e-12)
        assert st[v].classes == ok.prediction.value_counts().to_dict()
        lab = ok[ok.label.notna()]
        assert (st[v].labelled, st[v].correct) == (len(lab), int((lab.label == lab.prediction).sum()))
        assert st[v].latency.estimates[0.95] == pytest.approx(np.quantile(ok.latency_ms, 0.95), rel=1e-12)
    assert st["v3"].error_types.get("Boom", 0) > 0


@pytest.mark.parametrize("name", ["whole days", "partial first and last days", "everything"])
def test_the_charts_frames_from_the_store_equal_raw(built, name):
    start, end = WINDOWS[name]
    f = Filters(start=start, end=end)
    a = cq.distributions(built, ("v2", "v3"), f)
    store = built.source.rollups
    built.source.rollups = None
    try:
        b = cq.distributions(built, ("v2", "v3"), f)
    finally:
        built.source.rollups = store
    for key in ("latency", "score"):
        x, y = (d[key].select("v", "x", "n").sort("v", "x") for d in (a, b))
        assert x["v"].to_list() == y["v"].to_list() and x["n"].to_list() == y["n"].to_list(), key
        np.testing.assert_allclose(x["x"].to_numpy(), y["x"].to_numpy(), rtol=1e-12)
    assert a["score"]["n"].sum() > 0 and a["latency"]["n"].sum() > 0


@pytest.mark.parametrize("f", [Filters(), Filters(start=D(2026, 11, 15, 8, 30)),
                               Filters(start=D(2026, 10, 30), end=D(2026, 11, 2, 3)),
                               Filters(start=D(2026, 11, 18, 1), end=D(2026, 11, 18, 2))])
def test_version_traffic_from_the_store_equals_raw(built, f):
    store = built.source.rollups
    a = cq.version_traffic(built, f)
    built.source.rollups = None
    try:
        b = cq.version_traffic(built, f)
    finally:
        built.source.rollups = store
    assert a.sort("version").to_dicts() == b.sort("version").to_dicts()


def test_models_page_rows_from_the_store_equal_raw(built):
    store = built.source.rollups
    a = fleet(built)
    built.source.rollups = None
    try:
        b = fleet(built)
    finally:
        built.source.rollups = store
    assert [x.as_dict() for x in a.rows] == [x.as_dict() for x in b.rows]
    assert any(x.labelled for x in a.rows)


@pytest.mark.parametrize("kw, message", [
    ({"baseline": "v9", "candidate": "v3"}, "version 'v9' has no traffic in this window"),
    ({"baseline": "v3", "candidate": "v3"}, "baseline and candidate are both 'v3'"),
    ({"baseline": "v2", "candidate": "v3", "start": D(2026, 11, 12), "end": D(2026, 11, 12)}, "has no traffic in this window"),
    ({"baseline": "v2", "candidate": "v3", "start": D(2027, 1, 1), "end": D(2027, 1, 9)},
     "version 'v2' has no traffic in this window (no version served in it)"),
    ({"start": D(2026, 10, 24), "end": D(2026, 10, 26)}, "fewer than two versions"),
])
def test_bad_input_is_the_same_sentence_from_store_and_raw(built, kw, message):
    errors = []
    for raw in (False, True):
        with pytest.raises(CompareError) as e:
            compare(built, raw=raw, **kw)
        errors.append(str(e.value))
    assert errors[0] == errors[1] and message in errors[0]


@pytest.mark.parametrize("why, kw, reason", [
    ("an endpoint filter", {"f": Filters(endpoints=("/v1/predict",))}, "not per endpoint"),
    ("no whole UTC day", {"start": D(2026, 11, 18, 1), "end": D(2026, 11, 18, 23)}, "no whole UTC day"),
])
def test_what_the_store_cannot_answer_comes_from_the_raw_logs(built, why, kw, reason):
    s, r = _both(built, "v2", "v3", **kw)
    assert s.origin.startswith("from the raw logs (") and reason in s.origin, why
    _same_evidence(s, r, exact=True)
    _close_metrics(s, r)        # the raw engine both times (DuckDB's parallel avg: last bits)


def test_a_partial_store_leaves_the_raw_engine(built, tmp_path):
    """A file added after the build: the store no longer covers the logs, the raw engine
    answers (the same figures as asked for raw)."""
    logs = tmp_path / "logs"
    shutil.copytree(built.config.logs, logs)
    _, ws, store = built_workspace(logs, tmp_path / "data")
    extra = pq.read_table(logs / "date=2026-11-19" / "part-0.parquet").slice(0, 50)
    extra = extra.set_column(0, "request_id", pc.binary_join_element_wise(extra["request_id"], pa.scalar("-n"), ""))
    pq.write_table(extra, logs / "date=2026-11-19" / "part-new.parquet")
    from monitoring.logs.workspace import open_workspace
    from monitoring.rollup import partial

    ws2 = open_workspace(ws.config)
    ws2.source.rollups = partial.cover(store, ws2.source, min_rows=0)
    s, r = _both(ws2, "v2", "v3", start=D(2026, 11, 10), end=D(2026, 11, 21) + timedelta(0))
    assert "do not cover every log file" in s.origin
    _same_evidence(s, r, exact=True)


def test_a_non_finite_score_leaves_the_raw_engine(tmp_path):
    """A successful request with a NaN score makes the raw mean NaN; the store keeps finite
    scores only, so it must not answer."""
    logs = tmp_path / "logs"
    sample.generate(logs, days=4, rows_per_day=400, seed=3, start=D(2026, 11, 15))
    path = logs / "date=2026-11-16" / "part-0.parquet"
    t = pq.read_table(path)
    score = t["score"].to_numpy(zero_copy_only=False).copy()
    ok = np.flatnonzero(t["status"].to_numpy(zero_copy_only=False) == "ok")
    score[ok[5]] = np.nan
    pq.write_table(t.set_column(t.schema.get_field_index("score"), "score", pa.array(score)), path)
    _, ws, store = built_workspace(logs, tmp_path / "data")
    ws.source.rollups = store
    versions = tuple(sorted(ws.extent.model_versions))[:2]
    f = Filters(start=D(2026, 11, 16), end=D(2026, 11, 18))
    st, origin = cq.window_evidence(ws, versions, f)
    assert origin.startswith("from the raw logs (") and "not finite" in origin

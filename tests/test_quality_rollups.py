"""Quality from the rollup store against the raw engine (the oracle) and independent counts.

On the sample generator's logs with their incidents (a three-class model, a confidence
score), on a binary model's logs with an incident, duplicates and failed requests
(written here with numpy), and on NannyML's car-loan set with its labels in the logs,
under UTC and TZ=America/New_York: every count figure read from the store equals the raw
engine's figure, so do the calibration curve's counts and the label-free estimate, the AUC
from the store's 1/1000 score bins lies within its stated `max_binning_error` of the exact
AUC (scipy's Mann-Whitney U) and the ECE within its own of the exact ECE (numpy), and a
report over whole UTC days runs with every raw query failing. Bad inputs (failed requests
with a prediction, scores NaN, infinite, outside [0, 1], exactly 0 or 1) give the raw
figures; every case the store cannot answer is answered by the raw engine with the reason
in one sentence.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import mannwhitneyu

from monitoring.config import load_config
from monitoring.quality import fairness_report, fromstore, metrics, quality_report
from monitoring.quality.ground_truth import default_truth
from monitoring.quality.settings import load
from monitoring.query.filters import Filters
from monitoring.rollup import build
from monitoring.rollup.read import NotCovered
from tests.rollup_helpers import built_workspace

COUNTED = ("accuracy", "precision_macro", "recall_macro", "f1_macro")


def _workspace(logs: Path, data: Path, toml: str = ""):
    _, ws, store = built_workspace(logs, data, toml)
    ws.source.rollups = store
    return ws, store


def _both(ws, **kw):
    return quality_report(ws, **kw), quality_report(ws, rollups=False, **kw)


def _same_metrics(a: dict, b: dict, where: str) -> None:
    assert set(a) == set(b), where
    for name, eb in b.items():
        ea = a[name]
        if name in COUNTED or name in ("per_class", "confusion"):
            assert ea == eb, (where, name)                       # the same counts: identical figures
        elif name == "roc_auc":
            if eb["value"] is None:
                assert ea["value"] is None and ea["note"] == eb["note"], where
                continue
            assert ea["n"] == eb["n"], where
            bound = ea.get("max_binning_error", 0.0)
            assert abs(ea["value"] - eb["value"]) <= bound + eb.get("max_binning_error", 0.0) + 1e-12, (where, ea, eb)
        elif name == "calibration":                              # the same rows per bin; confidence within 1/2000
            assert [{k: v for k, v in x.items() if k != "confidence"} for x in ea] == \
                   [{k: v for k, v in x.items() if k != "confidence"} for x in eb], where
            for xa, xb in zip(ea, eb, strict=True):
                assert (xa["confidence"] is None) == (xb["confidence"] is None), where
                if xb["confidence"] is not None:
                    assert abs(xa["confidence"] - xb["confidence"]) <= 0.0005 + 1e-12, (where, xa, xb)
        else:                                                    # ece: within the bound the store states
            assert name == "ece" and ea["n"] == eb["n"], (where, name)
            if eb["value"] is None:
                assert ea["value"] is None, where
                continue
            bound = ea.get("max_binning_error", 0.0)                 # none: both from the raw logs
            assert bound <= 0.0005 + 1e-12 and abs(ea["value"] - eb["value"]) <= bound + 1e-12, (where, ea, eb)


def _same_report(a: dict, b: dict) -> None:
    assert a["origin"] == "rollups" and b["origin"] == "raw", a["origin_note"]
    for k in ("task", "labelled", "rows", "coverage", "chunk", "classes", "positive_class", "score", "warnings"):
        assert a.get(k) == b.get(k), k
    _same_metrics(a["overall"], b["overall"], "overall")
    assert [(c["key"], c["start"], c["end"], c["rows"], c["labelled"]) for c in a["chunks"]] == \
           [(c["key"], c["start"], c["end"], c["rows"], c["labelled"]) for c in b["chunks"]]
    for ca, cb in zip(a["chunks"], b["chunks"], strict=True):
        _same_metrics(ca["metrics"], cb["metrics"], f"chunk {ca['start']}")
        assert ca["estimated"].keys() == cb["estimated"].keys()
        for m, e in cb["estimated"].items():
            assert ca["estimated"][m]["value"] == pytest.approx(e["value"], abs=1e-9, nan_ok=True), m
    for key in ("segments", "versions"):
        assert [(x["value"], x["rows"], x["labelled"]) for x in a[key]] == \
               [(x["value"], x["rows"], x["labelled"]) for x in b[key]], key
        for xa, xb in zip(a[key], b[key], strict=True):
            _same_metrics(xa["metrics"], xb["metrics"], f"{key} {xa['value']}")
    assert a["estimation"].get("calibrated_on") == b["estimation"].get("calibrated_on")


# -- the sample generator's logs: three classes, a confidence score, incidents -------------------

@pytest.fixture(scope="module")
def generated(tz, generated_logs, tmp_path_factory):
    return _workspace(generated_logs, tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("chunk, window, partial", [
    ("day", None, False),
    ("week", None, False),
    ("month", None, False),
    ("auto", None, False),
    ("day", (datetime(2026, 10, 30, tzinfo=UTC), datetime(2026, 11, 13, tzinfo=UTC)), False),
    ("week", (datetime(2026, 10, 26, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)), False),
    ("day", (datetime(2026, 10, 29, 13, 7, tzinfo=UTC), datetime(2026, 11, 6, 2, 30, tzinfo=UTC)), True),
    ("auto", "last 7 days", True),                  # the page's default window: [last - 7 days, last)
])
def test_generated_logs_every_figure_from_the_store_equals_the_raw_one(generated, chunk, window, partial):
    ws, _ = generated
    if window == "last 7 days":
        window = (ws.extent.last - timedelta(days=7), ws.extent.last)
    start, end = window or (None, None)
    a, b = _both(ws, chunk=chunk, start=start, end=end)
    _same_report(a, b)
    assert ("partial first or last day" in a["origin_note"]) == partial
    assert a["score"] == "predicted" and len(a["classes"]) == 3 and "ece" in a["overall"] and a["chunks"]


def test_generated_logs_version_filter_from_the_store(generated):
    ws, _ = generated
    versions = sorted({x["value"] for x in quality_report(ws, chunk="week")["versions"]})
    f = Filters(model_versions=(versions[0],))
    a, b = _both(ws, chunk="day", filters=f)
    _same_report(a, b)
    assert [x["value"] for x in a["versions"]] == [versions[0]]


# -- a binary model's logs: an incident, duplicates, failed requests --------------------------------

START = datetime(2026, 3, 1, tzinfo=UTC)     # spans New York's change to summer time (March 8)


def _binary(root: Path, *, days: int = 16, rows: int = 300, failed_with_prediction: bool = False,
            seed: int = 5, score_kind: str = "positive", pred_type: str = "int64",
            odd_score: float | None = None, missing_score: bool = False) -> dict[str, np.ndarray]:
    """One Parquet file per UTC day; returns the served rows without their copies (the oracle).
    `odd_score`: the score of every 40th row (labelled or not) on day 1; `missing_score`:
    those rows have no score (NaN in the oracle)."""
    rng = np.random.default_rng(seed)
    keep = {k: [] for k in ("day", "version", "pred", "score", "label")}
    for d in range(days):
        n = rows
        ts = [START + timedelta(days=d, seconds=float(s)) for s in np.sort(rng.uniform(0, 86399, n))]
        version = rng.choice(["v1", "v2"], n)
        y = rng.random(n) < 0.35
        informative = ~((version == "v2") & (8 <= d) & (d < 12))          # the incident: v2's score goes blind
        score = np.where(informative, np.where(y, rng.beta(5, 2, n), rng.beta(2, 5, n)), rng.random(n))
        score = np.round(score, rng.choice([3, 6]))                         # some days tie within a bin
        failed = rng.random(n) < 0.03
        labelled = ~failed & (rng.random(n) < 0.6)
        pred = (score >= 0.5).astype(np.int64)
        if (odd_score is not None or missing_score) and d == 1:
            score[::40] = np.nan if missing_score else odd_score
        no_score = failed | (np.isnan(score) if missing_score else False)
        ids = [f"r{d}-{i}" for i in range(n)]
        t = pa.table({
            "request_id": ids, "timestamp": pa.array(ts, pa.timestamp("us", "UTC")),
            "model_version": version, "status": np.where(failed, "error", "ok"),
            "prediction": pa.array(pred, pa.type_for_alias(pred_type), mask=failed & (not failed_with_prediction)),
            **({} if score_kind == "none" else {"score": pa.array(
                score if score_kind == "positive" else np.where(pred == 1, score, 1 - score), mask=no_score)}),
            "label": pa.array(y.astype(np.float64), mask=~labelled),     # 1.0 against a prediction of 1
            "region": rng.choice(["north", "south"], n)})
        copies = t.take(np.arange(0, n, 50))                                 # retries logged twice
        folder = root / f"date={(START + timedelta(days=d)).date()}"
        folder.mkdir(parents=True)
        pq.write_table(pa.concat_tables([t, copies]), folder / "part-0.parquet")
        ok = ~failed
        for k, v in (("day", np.full(n, d)), ("version", version), ("pred", pred), ("score", score),
                     ("label", np.where(labelled, y.astype(float), np.nan))):
            keep[k].append(v[ok])
    return {k: np.concatenate(v) for k, v in keep.items()}


@pytest.fixture(scope="module")
def binary(tz, tmp_path_factory):
    root = tmp_path_factory.mktemp("binary")
    truth = _binary(root / "logs")
    ws, store = _workspace(root / "logs", root / "data")
    return ws, store, truth


@pytest.mark.parametrize("chunk, window", [
    ("day", None), ("week", None), ("month", None),
    ("day", (START + timedelta(days=2, hours=6), START + timedelta(days=9, hours=3))),   # partial days raw
    ("week", (START + timedelta(hours=1), START + timedelta(days=15, hours=23))),
])
def test_binary_logs_counts_exact_and_auc_within_its_bound(binary, chunk, window):
    ws, _, truth = binary
    start, end = window or (None, None)
    a, b = _both(ws, chunk=chunk, start=start, end=end)
    _same_report(a, b)
    assert a["score"] == "positive" and a["positive_class"] == "1"
    assert a["auc_method"].startswith("binned into 1000 score bins")


def _exact_auc(score, label) -> float:
    pos, neg = score[label == 1], score[label == 0]
    return mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg))


def _exact_ece(pred, score, label) -> float:
    """Guo et al.'s ECE over 10 equal bins of the predicted class's confidence, in numpy."""
    conf = np.where(pred == 1, score, 1 - score)
    b = np.clip(np.floor(conf * 10), 0, 9).astype(int)
    correct = (pred == label).astype(float)
    return float(sum(abs(correct[b == i].sum() - conf[b == i].sum()) for i in range(10)) / len(conf))


@pytest.mark.parametrize("version", [None, "v1", "v2"])
def test_binary_logs_daily_figures_equal_a_numpy_count(binary, version):
    ws, _, truth = binary
    r = quality_report(ws, chunk="day", filters=Filters(model_versions=(version,) if version else ()))
    assert r["origin"] == "rollups"
    mine = (truth["version"] == version) if version else np.ones(len(truth["day"]), bool)
    lab = ~np.isnan(truth["label"]) & mine
    assert r["rows"] == mine.sum() and r["labelled"] == lab.sum()
    chunks = {int((c["start"] - START).days): c["metrics"] for c in r["chunks"]}
    assert sorted(chunks) == list(range(16))
    for d, m in chunks.items():
        sel = lab & (truth["day"] == d)
        assert m["accuracy"]["value"] == pytest.approx(np.mean(truth["pred"][sel] == truth["label"][sel]), abs=1e-12)
        assert m["accuracy"]["n"] == sel.sum()
        exact = _exact_auc(truth["score"][sel], truth["label"][sel])
        assert abs(m["roc_auc"]["value"] - exact) <= m["roc_auc"]["max_binning_error"] + 1e-12, (d, version)
        ece, bound = _exact_ece(truth["pred"][sel], truth["score"][sel], truth["label"][sel]), m["ece"]["max_binning_error"]
        assert m["ece"]["n"] == sel.sum() and 0 < bound <= 0.0005 + 1e-12
        assert abs(m["ece"]["value"] - ece) <= bound + 1e-12, (d, version, m["ece"], ece)
        if version == "v2":       # the incident, found from the store: v2's score is blind on days 8-11
            assert (m["roc_auc"]["value"] < 0.65) == (8 <= d < 12), (d, m["roc_auc"])


@pytest.mark.parametrize("score, origin, note", [
    ("none", "rollups", "counts from the rollup store (exact: rows, labels, the confusion matrix and the figures "
                        "made from it)"),
    ("confidence", "rollups", "calibration and the estimate from its score bins"),
])
def test_logs_without_a_score_or_with_a_confidence(tmp_path, score, origin, note):
    _binary(tmp_path / "logs", days=4, score_kind=score)
    ws, _ = _workspace(tmp_path / "logs", tmp_path / "data")
    a, b = _both(ws, chunk="day")
    assert a["origin"] == origin and note in a["origin_note"], a["origin_note"]
    assert a.get("score") == {"none": None, "confidence": "predicted"}[score]
    _same_report(a, b)
    assert ("ece" in a["overall"] and "roc_auc" in a["overall"]) == (score == "confidence")


def test_float_predictions_scored_as_classes_are_read_raw(tmp_path):
    _binary(tmp_path / "logs", days=3, pred_type="float64")
    ws, _ = _workspace(tmp_path / "logs", tmp_path / "data", '[quality]\ntask = "classification"\n')
    a, b = _both(ws, chunk="day")
    assert a["origin"] == "raw" and "float prediction" in a["origin_note"] and a["labelled"] > 0
    assert a["overall"]["accuracy"] == b["overall"]["accuracy"]


# -- bad inputs: the store's answer equals the raw one, or the raw logs answer and say why ---------

@pytest.mark.parametrize("case, kw, origin, note", [
    ("failed requests carry a prediction", dict(failed_with_prediction=True), "rollups", "from its score bins"),
    ("a score is missing", dict(missing_score=True), "rollups", "from its score bins"),
    ("a score is NaN", dict(odd_score=float("nan")), "raw", ""),
    ("a score is infinite", dict(odd_score=float("inf")), "raw", ""),
    ("a score above 1", dict(odd_score=1.7), "rollups", "calibration and the estimate from one pass over the raw"),
    ("a score below 0", dict(odd_score=-0.2), "rollups", "calibration and the estimate from one pass over the raw"),
    ("a score of exactly 1", dict(odd_score=1.0), "rollups", "from its score bins"),
    ("a score of exactly 0", dict(odd_score=0.0), "rollups", "from its score bins"),
])
def test_bad_inputs_give_the_raw_figures(tmp_path, case, kw, origin, note):
    truth = _binary(tmp_path / "logs", days=3, **kw)
    ws, _ = _workspace(tmp_path / "logs", tmp_path / "data")
    for chunk in ("day", "week"):
        if origin == "raw":
            # the store declines and the raw engine answers: a score that is not a finite
            # number is no score (AUC and calibration leave its row out, accuracy keeps it)
            with pytest.raises(NotCovered, match="some scores are not finite numbers"):
                fromstore.plan(ws, default_truth(ws), load(ws.config), Filters(), "model_version", None)
            a, b = _both(ws, chunk=chunk)
            assert a["origin"] == b["origin"] == "raw", case
            for k in ("accuracy", "roc_auc", "ece"):     # two raw runs: sums in any order
                assert a["overall"][k]["value"] == pytest.approx(b["overall"][k]["value"], rel=1e-12), (case, k)
            lab = ~np.isnan(truth["label"])
            ok = lab & np.isfinite(truth["score"])
            assert a["labelled"] == lab.sum() > ok.sum()
            assert a["overall"]["accuracy"]["value"] == pytest.approx((truth["pred"] == truth["label"])[lab].mean())
            assert a["overall"]["roc_auc"]["value"] == pytest.approx(
                _exact_auc(truth["score"][ok], truth["label"][ok]), abs=1e-12)
            assert a["overall"]["ece"]["value"] == pytest.approx(
                _exact_ece(truth["pred"][ok], truth["score"][ok], truth["label"][ok]), abs=1e-9)
            continue
        a, b = _both(ws, chunk=chunk)
        assert a["origin"] == origin and note in a["origin_note"], (case, a["origin_note"])
        _same_report(a, b)
        if "missing" in case:   # rows without a score count for accuracy only, on both paths
            ok = ~np.isnan(truth["label"]) & np.isfinite(truth["score"])
            assert a["overall"]["ece"]["n"] == b["overall"]["ece"]["n"] == ok.sum() < a["labelled"]
            assert b["overall"]["ece"]["value"] == pytest.approx(
                _exact_ece(truth["pred"][ok], truth["score"][ok], truth["label"][ok]), abs=1e-9)
            assert b["overall"]["roc_auc"]["value"] == pytest.approx(
                _exact_auc(truth["score"][ok], truth["label"][ok]), abs=1e-12)


def test_whole_days_read_no_raw_row(binary, monkeypatch):
    """Every figure of a report over whole UTC days, the reference's calibration included,
    comes from the store: any query of the raw logs fails the test."""
    ws, _, _ = binary
    expect = quality_report(ws, chunk="day", rollups=False)

    def no_raw(*args, **kwargs):
        raise AssertionError(f"a raw query: {str(args[1])[:200]}")

    monkeypatch.setattr(ws.source, "query", no_raw)
    got = quality_report(ws, chunk="day")
    monkeypatch.undo()
    _same_report(got, expect)
    assert got["estimation"]["calibrated_on"] > 0 and got["chunks"][0]["estimated"]


# -- the bound, on its own: scores binned at 1/1000 against the exact AUC -------------------------

@pytest.mark.parametrize("case, make", [
    ("continuous", lambda rng, n: (rng.random(n), rng.random(n) < 0.4)),
    ("separated", lambda rng, n: ((y := rng.random(n) < 0.3) * 0.3 + rng.random(n) * 0.7, y)),
    ("heavy ties", lambda rng, n: (np.round(rng.random(n), 2), rng.random(n) < 0.5)),
    ("edges 0 and 1", lambda rng, n: (rng.choice([0.0, 1.0, 0.9995, 0.0004], n), rng.random(n) < 0.5)),
    ("outside [0, 1]", lambda rng, n: (rng.normal(0.5, 0.6, n), rng.random(n) < 0.5)),
])
def test_auc_from_score_bins_lies_within_its_stated_bound(case, make):
    from monitoring.rollup.features import score_edges

    rng = np.random.default_rng(len(case))
    s, y = make(rng, 5000)
    b = np.where(s > 1, 1001, np.clip(np.floor(s * 1000), -1, 1000)).astype(int)   # the store's score_bin
    edges = np.arange(-1, 1002)
    pos = np.array([np.sum((b == e) & y) for e in edges])
    neg = np.array([np.sum((b == e) & ~y) for e in edges])
    value, _, bound = metrics.auc(pos, neg)
    exact = _exact_auc(s, y.astype(int))
    assert abs(value - exact) <= bound + 1e-12, (case, value, exact, bound)
    assert bound <= 0.5                                               # at most half the pairs tie
    assert len(score_edges()) == len(edges)


@pytest.mark.parametrize("case, make", [
    ("continuous", lambda rng, n: rng.random(n)),
    ("on the calibration edges", lambda rng, n: np.round(rng.random(n), 1)),      # 0.1, 0.2, ...: 1 - s too
    ("on the fine bins' edges", lambda rng, n: np.round(rng.random(n), 3)),
    ("edges 0 and 1", lambda rng, n: rng.choice([0.0, 1.0, 0.9995, 0.0004, 0.5], n)),
])
@pytest.mark.parametrize("kind", ["positive", "predicted"])
def test_ece_from_score_bins_lies_within_its_stated_bound(case, make, kind):
    """storebins.conf from the store's (bin, cbin) of each score against numpy's exact ECE."""
    from monitoring.quality import storebins
    from monitoring.quality.data import Spec

    rng = np.random.default_rng(len(case))
    n = 4000
    s = make(rng, n)
    pred = (s >= 0.5).astype(int) if kind == "positive" else rng.integers(0, 2, n)
    y = (rng.random(n) < np.where(pred == 1, 0.8, 0.3)).astype(int)
    conf = np.where(pred == 1, s, 1 - s) if kind == "positive" else s
    stored = lambda x: np.where(x > 1, 1001, np.clip(np.floor(x * 1000), -1, 1000)).astype(np.int32)  # noqa: E731
    sc = pl.DataFrame({"day": np.zeros(n, np.int64), "version": ["v1"] * n, "pred": pred.astype(str),
                       "truth": y.astype(str), "bin": stored(s), "cbin": stored(1 - s), "n": np.ones(n, np.int64)})
    spec = Spec("classification", ("0", "1"), "1", score_kind=kind)
    cf = storebins.conf(sc, spec, lambda d: d).group_by("b").agg(pl.col("n", "correct", "conf_sum", "conf_err").sum())
    got = np.zeros((4, 10))
    for r in cf.iter_rows(named=True):
        got[:, r["b"]] = r["n"], r["correct"], r["conf_sum"], r["conf_err"]
    b = np.clip(np.floor(conf * 10), 0, 9).astype(int)             # the raw engine's calibration bins
    want_n = np.bincount(b, minlength=10)
    want_correct = np.bincount(b, weights=(pred == y), minlength=10)
    assert (got[0] == want_n).all() and (got[1] == want_correct).all(), case
    ece = metrics.calibration(got[0], got[1], got[2])["ece"]["value"]
    exact = metrics.calibration(want_n, want_correct, np.bincount(b, weights=conf, minlength=10))["ece"]["value"]
    bound = got[3].sum() / n
    assert bound <= 0.0005 + 1e-12 and abs(ece - exact) <= bound + 1e-12, (case, ece, exact, bound)
    if kind == "positive":                                          # and the report test's numpy ECE
        assert abs(ece - _exact_ece(pred, s, y)) <= bound + 1e-12, case


# -- NannyML's car-loan set, its labels joined into the logs ---------------------------------------

@pytest.fixture(scope="module")
def car_loan(tz, tmp_path_factory):
    from tests.thirdparty import nannyml_table

    a = nannyml_table("synthetic_car_loan_analysis.csv")
    t = nannyml_table("synthetic_car_loan_analysis_target.csv")
    y = dict(zip(t["id"].to_pylist(), t["repaid"].to_pylist(), strict=True))
    a = a.append_column("repaid", pa.array([y[i] for i in a["id"].to_pylist()], pa.float64()))
    ts = np.asarray(a["timestamp"].cast(pa.timestamp("us")).to_numpy(zero_copy_only=False)).astype("datetime64[M]")
    root = tmp_path_factory.mktemp("car_loan")
    for m in np.unique(ts):                      # one file a month, as a month of logs would be
        folder = root / "logs" / f"month={m}"
        folder.mkdir(parents=True)
        pq.write_table(a.filter(pa.array(ts == m)), folder / "part-0.parquet")
    toml = ('[columns]\nrequest_id = "id"\nprediction = "y_pred"\nscore = "y_pred_proba"\nlabel = "repaid"\n')
    ws, _ = _workspace(root / "logs", root / "data", toml)
    return ws, a, ts


@pytest.mark.parametrize("chunk", ["month", "week"])
def test_car_loan_from_the_store_equals_raw_and_mann_whitney(car_loan, chunk):
    ws, a, month = car_loan
    r, raw = _both(ws, chunk=chunk)
    _same_report(r, raw)
    assert r["score"] == "positive" and r["positive_class"] == "1" and r["labelled"] == a.num_rows
    if chunk != "month":
        return
    proba, truth = a["y_pred_proba"].to_numpy(), a["repaid"].to_numpy()
    pred = a["y_pred"].to_numpy().astype(float)
    for c in r["chunks"]:
        sel = month == np.datetime64(c["start"].replace(tzinfo=None), "M")
        assert c["rows"] == sel.sum()
        assert c["metrics"]["accuracy"]["value"] == pytest.approx(np.mean(pred[sel] == truth[sel]), abs=1e-12)
        auc = c["metrics"]["roc_auc"]
        assert abs(auc["value"] - _exact_auc(proba[sel], truth[sel])) <= auc["max_binning_error"] + 1e-12
        assert auc["max_binning_error"] < 0.01


# -- what the store does not answer: the raw engine, with the reason ---------------------------------

# These check which engine answers and why, not a stored figure: the process's zone matters
# only to where a day starts, so they run under New York alone (where a UTC day does not start
# at midnight); the store-against-raw checks above run under both zones.
NEW_YORK = pytest.mark.parametrize("tz", ["America/New_York"], indirect=True)

def _labels_file(ws, path: Path) -> str:
    ids = ws.source.query(ws.con, "SELECT request_id FROM logs LIMIT 200")["request_id"].to_list()
    pq.write_table(pa.table({"request_id": ids, "label": ["1"] * len(ids)}), path)
    return str(path)


@NEW_YORK
@pytest.mark.parametrize("case, kw, reason", [
    ("raw asked for", dict(rollups=False), "the raw engine was asked for"),
    ("a window inside one day", dict(start=START + timedelta(days=2, hours=6), end=START + timedelta(days=2, hours=20)),
     "holds no whole UTC day"),
    ("endpoint filter", dict(filters=Filters(endpoints=("/v1",))), "per version, not per endpoint"),
    ("row chunks", dict(chunk="rows:500"), "rows chunks need the raw logs"),
    ("segments by a feature", dict(by="region"), "segments by region"),
    ("fairness", dict(sensitive="region"), "fairness"),
    ("reviewers' answers", dict(reviewed=pl.DataFrame({"request_id": ["r0-1"], "correct": [True]})), "reviewers"),
    ("a labels file", dict(labels="LABELS"), "labels file"),
])
def test_what_the_store_cannot_answer_comes_from_the_raw_logs(binary, tmp_path, case, kw, reason):
    ws, _, _ = binary
    if kw.get("labels") == "LABELS":
        kw = dict(kw, labels=_labels_file(ws, tmp_path / "labels.parquet"))
    kw = {"chunk": "day"} | kw
    a = quality_report(ws, **kw)
    assert a["origin"] == "raw" and reason in a["origin_note"], a["origin_note"]
    b = quality_report(ws, **(kw | {"rollups": False}))
    _same_metrics(a["overall"], b["overall"], case)
    assert a["rows"] == b["rows"] and a["labelled"] == b["labelled"]


@NEW_YORK
def test_fairness_deferred_by_a_report_from_the_store_equals_the_whole_raw_reports(binary):
    """The page's call: the store answers all but the fairness, which is deferred;
    `fairness_report` then gives exactly the fairness of the report computed whole from the
    raw logs (the oracle). Without a store nothing is deferred."""
    import json

    ws, full, _ = binary
    kw = dict(chunk="day", sensitive="region")
    a = quality_report(ws, defer_fairness=True, **kw)
    assert a["origin"] == "rollups" and a["fairness"] == {"column": "region", "deferred": True}
    whole = quality_report(ws, rollups=False, **kw)
    _same_metrics(a["overall"], whole["overall"], "overall")
    fr = fairness_report(ws, **kw)
    assert fr["groups"] and fr["chunks"] and fr["column"] == "region"
    assert json.dumps(fr, default=str, sort_keys=True) == json.dumps(whole["fairness"], default=str, sort_keys=True)
    ws.source.rollups = None
    try:
        c = quality_report(ws, defer_fairness=True, **kw)
    finally:
        ws.source.rollups = full
    assert c["origin"] == "raw" and json.dumps(c["fairness"], default=str, sort_keys=True) == \
        json.dumps(whole["fairness"], default=str, sort_keys=True)


@NEW_YORK
@pytest.mark.parametrize("case, store, reason", [
    ("no store", lambda s: None, "no rollup store covers these logs"),
    ("a partial store", lambda s: replace(s, only=()), "do not cover every log file"),
])
def test_a_missing_or_partial_store_leaves_the_raw_engine(binary, case, store, reason):
    ws, full, _ = binary
    ws.source.rollups = store(full)
    try:
        r = quality_report(ws, chunk="day")
    finally:
        ws.source.rollups = full
    assert r["origin"] == "raw" and reason in r["origin_note"]


@NEW_YORK
def test_cli_says_which_path_answered(binary, capsys):
    from monitoring.quality.cli import table

    ws, _, _ = binary
    assert "answered from: counts from the rollup store" in table(quality_report(ws, chunk="week"))
    assert "answered from: every figure from the raw logs" in table(quality_report(ws, chunk="week", rollups=False))


def test_quality_page_says_which_path_answered(app_env, tmp_path):
    from tests.page_helpers import open_page

    _binary(tmp_path / "logs", days=10)
    cfg = replace(load_config(None, {"logs": str(tmp_path / "logs")}), data_dir=str(tmp_path / "data"))
    build.build(cfg)                                                    # the app's data folder (app_env)
    at = open_page(app_env(tmp_path / "logs"), "pages/quality.py")      # "Last 7 days": its whole days stored
    shown = [c.value for c in at.caption if c.value.startswith("Answered from")]    # Markdown-escaped text
    assert shown and "counts from the rollup store" in shown[0] and "partial first or last day" in shown[0]
    assert any(m.label == "ROC AUC" and m.value.startswith("0.") for m in at.metric)
    at.selectbox(key="quality_sensitive").set_value("region")     # the rest from the store, fairness raw
    at.run()
    shown = [c.value for c in at.caption if c.value.startswith("Answered from")]
    assert not at.exception and "counts from the rollup store" in shown[0]
    assert any("Fairness is counted from the raw logs" in c.value for c in at.caption)
    assert not any(m.label == "Positive-rate difference" for m in at.metric)    # asked for, not counted yet
    at.toggle(key="quality_fairness_raw").set_value(True)
    at.run()
    assert not at.exception and any(m.label == "Positive-rate difference" and m.value != "–" for m in at.metric)
    at.selectbox(key="quality_sensitive").set_value("(none)")
    at.selectbox(key="quality_by").set_value("region")
    at.run()
    shown = [c.value for c in at.caption if c.value.startswith("Answered from")]
    assert not at.exception and "every figure from the raw logs" in shown[0] and "segments by region" in shown[0]


# NannyML's published realized performance of the car-loan analysis set, chunks of 5,000 rows
# ("Tutorial - Realized Performance - Binary Classification - Car Loan", nannyml docs):
PUBLISHED = [(0.970962, 0.9422), (0.970248, 0.9422), (0.976282, 0.9502), (0.967721, 0.9436), (0.969886, 0.9410),
             (0.960050, 0.9146), (0.958530, 0.9156), (0.959041, 0.9144), (0.963094, 0.9224), (0.957556, 0.9122)]


@pytest.mark.parametrize("i", range(10))
def test_car_loan_published_chunks_from_the_store(car_loan, i):
    """Each published chunk as a time window (its first to its last request): its whole UTC days
    from the store, its partial first and last days raw."""
    ws, a, _ = car_loan
    ts = a["timestamp"].cast(pa.timestamp("us")).to_pylist()
    start, end = ts[5000 * i].replace(tzinfo=UTC), ts[5000 * i + 4999].replace(tzinfo=UTC) + timedelta(microseconds=1)
    r = quality_report(ws, start=start, end=end, chunk="month")
    assert r["origin"] == "rollups" and r["rows"] == 5000, r["origin_note"]
    auc, acc = PUBLISHED[i]
    assert r["overall"]["accuracy"]["value"] == pytest.approx(acc, abs=5e-5)
    e = r["overall"]["roc_auc"]
    assert abs(e["value"] - auc) <= e["max_binning_error"] + 5e-7
    # the scores have two decimals: each 1/1000 bin holds one value, so the binned AUC is exact here
    assert e["value"] == pytest.approx(auc, abs=5e-7)


@pytest.mark.parametrize("flags, origin", [([], "rollups"), (["--raw"], "raw")])
def test_cli_quality_reads_the_store_unless_raw(tmp_path, monkeypatch, capsys, flags, origin):
    import json

    from monitoring.cli.main import main

    _binary(tmp_path / "logs", days=4)
    monkeypatch.setenv("MONITORING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MONITORING_DB_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert main(["rollup", "build", "--logs", str(tmp_path / "logs")]) == 0
    capsys.readouterr()
    assert main(["quality", "--logs", str(tmp_path / "logs"), "--chunk", "day", "--format", "json", *flags]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["origin"] == origin and r["labelled"] > 0


# -- the weekly summary's late-label accuracy (fromstore.window_accuracy) -------------------------

def test_week_accuracy_of_whole_days_from_the_store_equals_numpy_and_reads_no_raw_row(binary, monkeypatch):
    """Days 2-8: labelled and correct counted from `outcomes` (copies once, failed requests
    out), the same dict as the raw engine's, with every raw query failing."""
    from monitoring.quality import ground_truth

    ws, _, truth = binary
    start, end = START + timedelta(days=2), START + timedelta(days=9)
    raw = ground_truth.window_accuracy(ws, start, end)

    def no_raw(*args, **kwargs):
        raise AssertionError(f"a raw query: {str(args[1])[:200]}")

    monkeypatch.setattr(ws.source, "query", no_raw)
    got = fromstore.window_accuracy(ws, start, end)
    monkeypatch.undo()
    assert got == raw
    sel = ~np.isnan(truth["label"]) & (truth["day"] >= 2) & (truth["day"] < 9)
    assert got["labelled"] == sel.sum() > 0
    assert got["correct"] == (truth["pred"][sel] == truth["label"][sel]).sum()
    assert got["accuracy"] == pytest.approx(np.mean(truth["pred"][sel] == truth["label"][sel]), abs=1e-15)


@pytest.mark.parametrize("offset", [timedelta(hours=6), timedelta(minutes=1), timedelta(days=-3)])
def test_week_accuracy_with_partial_days_equals_the_raw_engine(binary, offset):
    """A week off the UTC day (its first and last days raw, the rest from the store), and
    one reaching before the first request, give the raw engine's figures."""
    from monitoring.quality import ground_truth

    ws, _, _ = binary
    start = START + timedelta(days=5) + offset
    assert fromstore.window_accuracy(ws, start, start + timedelta(days=7)) == \
        ground_truth.window_accuracy(ws, start, start + timedelta(days=7))


def test_week_accuracy_of_nannymls_car_loans_from_the_store_equals_raw(car_loan):
    """Float labels (`repaid`) against integer predictions, monthly files: each week's
    figures from the store are the raw engine's."""
    from monitoring.quality import ground_truth

    ws, _, _ = car_loan
    first = ws.extent.first.replace(hour=0, minute=0, second=0, microsecond=0)
    checked = 0
    for w in range(0, 40, 9):
        start = first + timedelta(days=7 * w)
        got = fromstore.window_accuracy(ws, start, start + timedelta(days=7))
        assert got == ground_truth.window_accuracy(ws, start, start + timedelta(days=7)), w
        checked += bool(got and got["labelled"])
    assert checked >= 3

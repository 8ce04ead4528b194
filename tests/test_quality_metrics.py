"""Quality metrics against independent oracles: hand-worked cases, numpy on rows, scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from monitoring.quality import metrics


def _cm(y, p, k):
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (y, p), 1)
    return cm


@pytest.mark.parametrize("y,p,acc,prec,rec", [
    # hand-worked: 5 TN, 1 FP, 2 FN, 2 TP
    ([0] * 6 + [1] * 4, [0] * 5 + [1] + [0, 0, 1, 1], 0.7, [5 / 7, 2 / 3], [5 / 6, 2 / 4]),
    # every prediction right
    ([0, 1, 2] * 12, [0, 1, 2] * 12, 1.0, [1, 1, 1], [1, 1, 1]),
    # one class never predicted: its precision is 0 (zero division), recall 0
    ([0] * 20 + [1] * 20, [0] * 40, 0.5, [0.5, 0.0], [1.0, 0.0]),
])
def test_classification_hand_worked(y, p, acc, prec, rec):
    k = max(max(y), max(p)) + 1
    r = metrics.classification(_cm(y, p, k), [str(i) for i in range(k)], min_labels=1)
    assert r["accuracy"]["value"] == pytest.approx(acc)
    f1 = [2 * a * b / (a + b) if a + b else 0.0 for a, b in zip(prec, rec, strict=True)]
    assert r["precision_macro"]["value"] == pytest.approx(np.mean(prec))
    assert r["recall_macro"]["value"] == pytest.approx(np.mean(rec))
    assert r["f1_macro"]["value"] == pytest.approx(np.mean(f1))
    for i, c in enumerate(r["per_class"]):
        assert r["per_class"][c]["f1"] == pytest.approx(f1[i])
        assert r["per_class"][c]["support"] == y.count(i)
    lo, hi = r["accuracy"]["ci"]
    assert lo <= acc <= hi


def test_accuracy_interval_is_wilson():
    cm = np.array([[81, 0], [19, 0]])            # 81 right of 100
    r = metrics.classification(cm, ["a", "b"])
    z = 1.959963984540054
    p, n = 0.81, 100
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert r["accuracy"]["ci"] == pytest.approx([centre - half, centre + half])


def test_f1_bootstrap_interval_matches_a_row_bootstrap():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 600)
    p = np.where(rng.random(600) < 0.7, y, rng.integers(0, 3, 600))
    r = metrics.classification(_cm(y, p, 3), ["0", "1", "2"], seed=1)
    # Oracle: resample rows with numpy, macro F1 by hand.
    f1s = []
    for _ in range(1000):
        i = rng.integers(0, 600, 600)
        cm = _cm(y[i], p[i], 3)
        tp = np.diag(cm)
        f1s.append(np.mean(2 * tp / (cm.sum(0) + cm.sum(1))))
    lo, hi = np.percentile(f1s, [2.5, 97.5])
    assert r["f1_macro"]["ci"][0] == pytest.approx(lo, abs=0.01)
    assert r["f1_macro"]["ci"][1] == pytest.approx(hi, abs=0.01)


def test_too_few_labels_say_so():
    r = metrics.classification(np.array([[3, 1], [0, 2]]), ["a", "b"], min_labels=30)
    assert r["accuracy"]["value"] is None and "too few labels (6 < 30)" in r["accuracy"]["note"]


def _delong_rows(pos_scores, neg_scores):
    """Oracle: DeLong's variance from pairwise comparisons of the rows."""
    x, y = np.asarray(pos_scores, float), np.asarray(neg_scores, float)
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    a = psi.mean()
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return a, np.var(v10, ddof=1) / len(x) + np.var(v01, ddof=1) / len(y)


@pytest.mark.parametrize("seed,rounding", [(0, None), (1, 2), (2, 1)])
def test_auc_equals_mann_whitney_and_delong(seed, rounding):
    rng = np.random.default_rng(seed)
    pos = rng.normal(1.0, 1.0, 300)
    neg = rng.normal(0.0, 1.0, 500)
    if rounding is not None:                      # ties
        pos, neg = np.round(pos, rounding), np.round(neg, rounding)
    values = np.unique(np.concatenate([pos, neg]))
    pc = np.array([(pos == v).sum() for v in values])
    nc = np.array([(neg == v).sum() for v in values])
    a, (lo, hi), bound = metrics.auc(pc, nc)
    u = mannwhitneyu(pos, neg).statistic
    assert a == pytest.approx(u / (300 * 500), abs=1e-12)
    oracle_a, var = _delong_rows(pos, neg)
    assert a == pytest.approx(oracle_a)
    assert (hi - lo) / 2 == pytest.approx(1.959963984540054 * math.sqrt(var), rel=1e-9)
    # the binning bound is exactly half the share of tied pairs
    assert bound == pytest.approx(0.5 * (pc * nc).sum() / (300 * 500))


def test_binned_auc_stays_within_its_bound():
    rng = np.random.default_rng(5)
    pos, neg = rng.beta(4, 2, 2000), rng.beta(2, 4, 3000)
    exact = mannwhitneyu(pos, neg).statistic / (2000 * 3000)
    bins = 50
    pc = np.bincount(np.minimum((pos * bins).astype(int), bins - 1), minlength=bins)
    nc = np.bincount(np.minimum((neg * bins).astype(int), bins - 1), minlength=bins)
    a, _, bound = metrics.auc(pc, nc)
    assert abs(a - exact) <= bound


def test_ece_against_rows():
    rng = np.random.default_rng(7)
    conf = rng.uniform(0.3, 1.0, 5000)
    correct = rng.random(5000) < conf ** 1.5           # over-confident model
    b = np.minimum((conf * 10).astype(int), 9)
    n = np.bincount(b, minlength=10)
    k = np.bincount(b, weights=correct, minlength=10)
    cs = np.bincount(b, weights=conf, minlength=10)
    r = metrics.calibration(n, k, cs)
    oracle = sum(abs(correct[b == i].mean() - conf[b == i].mean()) * (b == i).sum()
                 for i in range(10) if (b == i).any()) / 5000
    assert r["ece"]["value"] == pytest.approx(oracle)
    lo, hi = r["ece"]["ci"]
    assert lo < oracle < hi
    assert r["curve"][9]["accuracy"] == pytest.approx(correct[b == 9].mean())


def _reg_oracle(y, yhat):
    e = yhat - y
    nz = y != 0
    return {"mae": np.mean(np.abs(e)), "rmse": np.sqrt(np.mean(e ** 2)),
            "mape": np.mean(np.abs(e[nz]) / np.abs(y[nz])), "bias": np.mean(e),
            "r2": 1 - np.sum(e ** 2) / np.sum((y - y.mean()) ** 2)}


@pytest.mark.parametrize("seed,zeros", [(0, 0), (1, 25)])
def test_regression_metrics_against_numpy(seed, zeros):
    rng = np.random.default_rng(seed)
    y = rng.gamma(3, 1000, 4000)
    y[:zeros] = 0.0                                   # zero labels leave MAPE only
    yhat = y * rng.normal(1.05, 0.1, 4000) + rng.normal(0, 50, 4000)
    oracle = _reg_oracle(y, yhat)
    rows = metrics.regression_rows(y, yhat, seed=2)
    blk = rng.integers(0, 64, 4000)
    e = yhat - y
    sums = {"n": np.bincount(blk, minlength=64), "e": np.bincount(blk, e, 64), "ae": np.bincount(blk, np.abs(e), 64),
            "e2": np.bincount(blk, e * e, 64), "ape": np.bincount(blk, np.where(y != 0, np.abs(e) / np.where(y != 0, y, 1), 0), 64),
            "n_ape": np.bincount(blk, (y != 0).astype(float), 64), "y": np.bincount(blk, y, 64),
            "y2": np.bincount(blk, y * y, 64)}
    blocks = metrics.regression_blocks(sums, seed=2)
    for m, v in oracle.items():
        assert rows[m]["value"] == pytest.approx(v, rel=1e-9), m
        assert blocks[m]["value"] == pytest.approx(v, rel=1e-9), m
        assert rows[m]["ci"][0] < v < rows[m]["ci"][1], m
    assert rows["mape"]["n"] == 4000 - zeros
    # The bootstrap's width matches the normal theory for the mean error (bias).
    se = np.std(e, ddof=1) / math.sqrt(4000)
    assert (rows["bias"]["ci"][1] - rows["bias"]["ci"][0]) / 2 == pytest.approx(1.96 * se, rel=0.15)


def test_estimated_metrics_against_a_row_simulation():
    import polars as pl

    from monitoring.quality.data import EST_BINS, Spec
    from monitoring.quality.estimate import estimate_chunks

    rng = np.random.default_rng(11)
    p = rng.beta(2, 2, 20_000)                      # calibrated probability of the positive class
    fb = np.minimum((p * EST_BINS).astype(int), EST_BINS - 1)
    cal = (np.arange(EST_BINS) + 0.5) / EST_BINS     # identity calibration at bin centres
    pred = p >= 0.5
    cells = pl.DataFrame({"chunk": [0] * len(p), "pred_pos": pred, "fb": fb}).group_by("chunk", "pred_pos", "fb").len("n")
    spec = Spec("classification", ("0", "1"), "1", "", "positive")
    got = estimate_chunks(cells, cal, spec, min_rows=30, seed=1)[0]
    c = cal[fb]
    # Oracle 1: expected counts by hand.
    tp, fp = c[pred].sum(), (1 - c[pred]).sum()
    fn, tn = c[~pred].sum(), (1 - c[~pred]).sum()
    assert got["accuracy"]["value"] == pytest.approx((tp + tn) / len(p))
    f1 = (2 * tp / (2 * tp + fp + fn) + 2 * tn / (2 * tn + fn + fp)) / 2
    assert got["f1_macro"]["value"] == pytest.approx(f1)
    # Oracle 2: expected AUC from pairs of rows weighted by their label probabilities.
    order = np.argsort(c)
    cs = c[order]
    ties = np.array([((1 - c)[c == v]).sum() for v in cs])
    below = np.array([((1 - c)[c < v]).sum() for v in cs])
    assert got["roc_auc"]["value"] == pytest.approx((cs * (below + 0.5 * ties)).sum() / (c.sum() * (1 - c).sum()))
    # Oracle 3: the band is where realized accuracy falls when labels are Bernoulli(c).
    sims = [np.mean(pred == (rng.random(len(p)) < c)) for _ in range(400)]
    lo, hi = got["accuracy"]["band"]
    assert lo == pytest.approx(np.percentile(sims, 2.5), abs=0.002)
    assert hi == pytest.approx(np.percentile(sims, 97.5), abs=0.002)

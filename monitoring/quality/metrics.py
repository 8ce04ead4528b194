"""Quality metrics from small aggregates, each with a 95% interval.

Every function takes counts or sums that DuckDB computed (a confusion matrix, score
histograms by label, per-block error sums), never the rows of a large log:

    classification(cm, classes, seed=0)   # accuracy, precision/recall/F1 per class and macro
    auc(pos, neg)                         # ROC AUC from counts per ascending score, DeLong CI
    calibration(n, correct, conf_sum)     # reliability curve and ECE from confidence bins
    regression_rows(y, yhat, seed=0)      # MAE, RMSE, MAPE, bias, R2 (row bootstrap)
    regression_blocks(blocks, seed=0)     # the same from per-block sums (block bootstrap)

Intervals: Wilson for proportions (accuracy, per-class precision and recall), DeLong for AUC,
a seeded bootstrap (2,000 multinomial redraws of the confusion matrix) for F1 and the macro
averages, a seeded bootstrap for regression metrics and ECE. A metric on fewer than
`min_labels` labels has value None and a note saying so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import norm

from ..labelling.stats import wilson_interval

Z = float(norm.ppf(0.975))
BOOT = 2000
MIN_LABELS = 30


def entry(value: float | None, ci: tuple[float, float] | list | None, n: int, note: str | None = None) -> dict[str, Any]:
    """The one shape of a metric: {"value", "ci": [lo, hi], "n"} (+ "note" when not computed)."""
    def num(x):
        return None if x is None or not math.isfinite(float(x)) else float(x)

    out: dict[str, Any] = {"value": num(value), "ci": None if ci is None else [num(ci[0]), num(ci[1])], "n": int(n)}
    if note:
        out["note"] = note
    return out


def too_few(n: int, min_labels: int, what: str = "labels") -> dict[str, Any]:
    return entry(None, None, n, f"too few {what} ({n} < {min_labels})")


def wilson(k: float, n: float) -> tuple[float, float]:
    return wilson_interval(k, n) if n > 0 else (math.nan, math.nan)


# -- classification --------------------------------------------------------------------------

def _per_class(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 per class along the last two axes (rows true, columns predicted);
    0 where undefined (sklearn's zero_division=0)."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    pred = cm.sum(axis=-2).astype(float)
    true = cm.sum(axis=-1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred > 0, tp / np.where(pred > 0, pred, 1), 0.0)
        recall = np.where(true > 0, tp / np.where(true > 0, true, 1), 0.0)
        denom = pred + true
        f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
    return precision, recall, f1


def _macro(x: np.ndarray, present: np.ndarray) -> np.ndarray:
    # Macro averages run over the classes that occur as a label or a prediction.
    return (x * present).sum(axis=-1) / max(int(present.sum()), 1)


def classification(cm: np.ndarray, classes: list[str], *, min_labels: int = MIN_LABELS,
                   seed: int = 0) -> dict[str, Any]:
    """Metrics of a confusion matrix (rows: true class, columns: predicted class).

    Returns {"accuracy", "precision_macro", "recall_macro", "f1_macro"} as metric entries,
    "per_class": {class: {"precision", "recall", "f1", "support", ...CIs}} and "confusion".
    """
    cm = np.asarray(cm, dtype=np.int64)
    n = int(cm.sum())
    out: dict[str, Any] = {"confusion": {"labels": list(classes), "matrix": cm.tolist()}}
    if n < min_labels:
        for name in ("accuracy", "precision_macro", "recall_macro", "f1_macro"):
            out[name] = too_few(n, min_labels)
        out["per_class"] = {}
        return out
    k = int(np.trace(cm))
    out["accuracy"] = entry(k / n, wilson(k, n), n)
    precision, recall, f1 = _per_class(cm)
    present = ((cm.sum(axis=0) + cm.sum(axis=1)) > 0).astype(float)
    # Bootstrap: rows drawn with replacement = a multinomial draw of the matrix cells.
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, cm.ravel() / n, size=BOOT).reshape(BOOT, *cm.shape)
    bp, br, bf = _per_class(draws)
    for name, value, boot in (("precision_macro", precision, bp), ("recall_macro", recall, br),
                              ("f1_macro", f1, bf)):
        dist = _macro(boot, present)
        out[name] = entry(float(_macro(value, present)), np.percentile(dist, [2.5, 97.5]), n)
    per = {}
    for i, c in enumerate(classes):
        if not present[i]:
            continue
        tp, npred, ntrue = int(cm[i, i]), int(cm[:, i].sum()), int(cm[i, :].sum())
        per[c] = {"precision": float(precision[i]) if npred else None,
                  "recall": float(recall[i]) if ntrue else None,
                  "f1": float(f1[i]), "support": ntrue, "predicted": npred,
                  "precision_ci": list(wilson(tp, npred)) if npred else None,
                  "recall_ci": list(wilson(tp, ntrue)) if ntrue else None,
                  "f1_ci": np.percentile(bf[:, i], [2.5, 97.5]).tolist()}
    out["per_class"] = per
    return out


# -- ROC AUC ---------------------------------------------------------------------------------

def auc(pos: np.ndarray, neg: np.ndarray) -> tuple[float, tuple[float, float], float]:
    """ROC AUC (Mann-Whitney, ties count one half) from positive and negative counts per
    distinct score, in ascending score order; its DeLong 95% interval; and the largest error
    binning could cause (0 when each entry is one distinct score: pass `bound` on yourself).

    DeLong's placement values depend on the score alone, so they come from the same counts:
    V10(s) = P(negative score < s) + P(= s)/2, V01(s) = P(positive score > s) + P(= s)/2.
    """
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    P, N = pos.sum(), neg.sum()
    if P == 0 or N == 0:
        return math.nan, (math.nan, math.nan), math.nan
    neg_below = np.cumsum(neg) - neg
    pos_above = P - np.cumsum(pos)
    v10 = (neg_below + 0.5 * neg) / N
    v01 = (pos_above + 0.5 * pos) / P
    a = float((pos * v10).sum() / P)
    s10 = float((pos * (v10 - a) ** 2).sum() / max(P - 1, 1))
    s01 = float((neg * (v01 - a) ** 2).sum() / max(N - 1, 1))
    se = math.sqrt(s10 / P + s01 / N)
    lo, hi = max(0.0, a - Z * se), min(1.0, a + Z * se)
    tie_bound = float(0.5 * (pos * neg).sum() / (P * N))
    return a, (lo, hi), tie_bound


# -- calibration -----------------------------------------------------------------------------

CAL_BINS = 10


def calibration(n: np.ndarray, correct: np.ndarray, conf_sum: np.ndarray, *, min_labels: int = MIN_LABELS,
                seed: int = 0) -> dict[str, Any]:
    """Reliability curve and expected calibration error over equal-width confidence bins.

    n, correct, conf_sum: per bin (CAL_BINS bins of the predicted class's confidence), the
    labelled rows, the correct ones and the sum of their confidence. ECE = sum over bins of
    n_b/N * |accuracy_b - mean confidence_b| (Guo et al. 2017). Its interval redraws the
    (bin, correct) cells multinomially, keeping each cell's mean confidence.
    """
    n, correct, conf_sum = (np.asarray(x, float) for x in (n, correct, conf_sum))
    total = int(n.sum())
    curve = [{"bin": i, "lo": i / len(n), "hi": (i + 1) / len(n), "n": int(n[i]),
              "confidence": float(conf_sum[i] / n[i]) if n[i] else None,
              "accuracy": float(correct[i] / n[i]) if n[i] else None,
              "accuracy_ci": list(wilson(correct[i], n[i])) if n[i] else None} for i in range(len(n))]
    if total < min_labels:
        return {"ece": too_few(total, min_labels), "curve": curve}

    def ece_of(nn, cc, cs):
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.abs(np.where(nn > 0, cc / np.where(nn > 0, nn, 1) - cs / np.where(nn > 0, nn, 1), 0))
        return (nn * gap).sum(axis=-1) / total

    value = float(ece_of(n, correct, conf_sum))
    wrong = n - correct
    # Mean confidence of each (bin, correct) cell: split conf_sum in proportion to counts
    # (the cells' own sums are not kept; within a narrow bin they differ little).
    mean_conf = np.divide(conf_sum, n, out=np.zeros_like(n), where=n > 0)
    cells = np.concatenate([correct, wrong])
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, cells / total, size=BOOT)
    c_b, w_b = draws[:, : len(n)], draws[:, len(n):]
    nn = c_b + w_b
    boot = ece_of(nn, c_b, nn * mean_conf)
    return {"ece": entry(value, np.percentile(boot, [2.5, 97.5]), total), "curve": curve}


# -- regression ------------------------------------------------------------------------------

REG_METRICS = ("mae", "rmse", "mape", "bias", "r2")
REG_BOOT = 400


def _reg_from_sums(s: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n = s["n"]
    with np.errstate(divide="ignore", invalid="ignore"):
        mae = s["ae"] / n
        rmse = np.sqrt(s["e2"] / n)
        mape = s["ape"] / s["n_ape"]
        bias = s["e"] / n
        sst = s["y2"] - s["y"] ** 2 / n
        r2 = np.where(sst > 0, 1 - s["e2"] / np.where(sst > 0, sst, 1), np.nan)
    return {"mae": mae, "rmse": rmse, "mape": mape, "bias": bias, "r2": r2}


def _sums(y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    e = yhat - y
    nz = y != 0
    return {"n": float(len(y)), "e": float(e.sum()), "ae": float(np.abs(e).sum()), "e2": float((e * e).sum()),
            "ape": float(np.abs(e[nz] / y[nz]).sum()), "n_ape": float(nz.sum()),
            "y": float(y.sum()), "y2": float((y * y).sum())}


def _reg_entries(point: dict, boot: dict, n: int, n_ape: int, min_labels: int) -> dict[str, Any]:
    out = {}
    for m in REG_METRICS:
        if n < min_labels or (m == "mape" and n_ape < min_labels):
            out[m] = too_few(n_ape if m == "mape" else n, min_labels,
                             "non-zero labels" if m == "mape" else "labels")
            continue
        b = boot[m][np.isfinite(boot[m])]
        ci = np.percentile(b, [2.5, 97.5]) if b.size else None
        out[m] = entry(float(point[m]), ci, n_ape if m == "mape" else n)
    return out


def regression_rows(y, yhat, *, min_labels: int = MIN_LABELS, seed: int = 0) -> dict[str, Any]:
    """MAE, RMSE, MAPE (over non-zero labels), bias (mean of prediction - label) and R2, with
    percentile intervals from a seeded Poisson row bootstrap (REG_BOOT redraws)."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    n = len(y)
    point = {k: float(v) for k, v in _reg_from_sums({k: np.float64(v) for k, v in _sums(y, yhat).items()}).items()}
    if n < min_labels:
        return _reg_entries(point, {}, n, int((y != 0).sum()), min_labels)
    rng = np.random.default_rng(seed)
    e = yhat - y
    nz = (y != 0).astype(float)
    ape = np.where(y != 0, np.abs(e) / np.where(y != 0, np.abs(y), 1), 0.0)
    cols = np.stack([np.ones(n), e, np.abs(e), e * e, ape, nz, y, y * y])
    # Poisson(1) row weights: the bootstrap of large samples (Hanley & MacGibbon), cheap to draw.
    acc = np.zeros((REG_BOOT, cols.shape[0]))
    step = max(1, 2_000_000 // max(n, 1))
    for i in range(0, REG_BOOT, step):
        w = rng.poisson(1.0, size=(min(step, REG_BOOT - i), n)).astype(float)
        acc[i:i + w.shape[0]] = w @ cols.T
    keys = ("n", "e", "ae", "e2", "ape", "n_ape", "y", "y2")
    boot = _reg_from_sums({k: acc[:, j] for j, k in enumerate(keys)})
    return _reg_entries(point, boot, n, int(nz.sum()), min_labels)


def regression_blocks(blocks: dict[str, np.ndarray], *, min_labels: int = MIN_LABELS, seed: int = 0) -> dict[str, Any]:
    """The same from sums per block (n, e, ae, e2, ape, n_ape, y, y2 arrays, one entry per
    block of rows assigned by a hash of the request): a bootstrap that redraws blocks.
    With many rows per block this is the bootstrap of iid blocks, as wide as the row one."""
    keys = ("n", "e", "ae", "e2", "ape", "n_ape", "y", "y2")
    b = {k: np.asarray(blocks[k], float) for k in keys}
    tot = {k: np.float64(b[k].sum()) for k in keys}
    point = {k: float(v) for k, v in _reg_from_sums(tot).items()}
    n, n_ape = int(tot["n"]), int(tot["n_ape"])
    if n < min_labels or len(b["n"]) == 0:
        return _reg_entries(point, {}, n, n_ape, min_labels)
    rng = np.random.default_rng(seed)
    k = len(b["n"])
    w = rng.multinomial(k, np.full(k, 1 / k), size=BOOT).astype(float)
    boot = _reg_from_sums({key: w @ b[key] for key in keys})
    return _reg_entries(point, boot, n, n_ape, min_labels)

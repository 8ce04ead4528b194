"""Quality estimated before the labels come (confidence-based, like NannyML's CBPE).

1. Calibrate on labelled reference data (a file, or a window of the logs): per fine score bin
   (EST_BINS equal bins of the score), the share of positives (binary) or of correct
   predictions (confidence of the predicted class), fitted monotone with
   `scipy.optimize.isotonic_regression` weighted by the bin's rows.
2. Each served row then has a probability c of being positive (or right). Per chunk, from the
   rows per (predicted positive?, bin), the expected confusion matrix is
   TP = sum over positive predictions of c, FP = sum of 1 - c, FN and TN likewise, giving the
   expected accuracy, macro precision, recall and F1, and the expected ROC AUC (bins weighted
   by c as positives and 1 - c as negatives).
3. The band: labels drawn as Bernoulli(c) per row, EST_DRAWS times (seeded; a sum of many
   such draws is drawn from its normal approximation): the 2.5% and 97.5% points of the metric. It says where the realized metric should fall if the calibration
   still holds; a realized value outside it means the score no longer tells the truth
   (concept drift), which is why the gap is reported beside it.

Confidence-only classifiers (a multiclass `score` of the predicted class) get an estimated
accuracy only. Regression gets nothing: the error of a regressor cannot be read from its
output alone (NannyML's DLE trains a second model on the features; not done here).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from scipy.optimize import isotonic_regression

from ..logs.source import LogSource, quote_ident, run
from ..logs.workspace import Workspace
from ..query.filters import Filters
from . import ground_truth as gt
from .data import EST_BINS, Spec, _lit, feature_col, fine_bin_sql, finite_sql
from .metrics import auc

EST_DRAWS = 1000
ESTIMATED = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc")
NOTHING_FOR_REGRESSION = ("Nothing is estimated for a regression model: its error cannot be read "
                          "from its predictions alone, only measured against labels.")


def fit_calibration(df: pl.DataFrame) -> np.ndarray:
    """Isotonic fit of (fb, n, k) -> calibrated probability for every fine bin."""
    df = df.filter(pl.col("n") > 0).sort("fb")
    x = df["fb"].to_numpy().astype(float)
    n = df["n"].to_numpy().astype(float)
    y = df["k"].to_numpy().astype(float) / n
    fitted = isotonic_regression(y, weights=n, increasing=True).x
    return np.interp(np.arange(EST_BINS), x, fitted)


def _target(spec: Spec) -> tuple[str, str]:
    """(score SQL, label SQL): the score the calibration maps, and the event it predicts."""
    p_pos = finite_sql(spec.p_pos_sql())
    if p_pos:
        return p_pos, f"truth = {_lit(spec.positive)}"
    return finite_sql(spec.conf_sql()), "correct"


def calibrate_window(ws: Workspace, t: gt.Truth, spec: Spec, f: Filters) -> tuple[np.ndarray | None, int]:
    score, event = _target(spec)
    cond, params = f.where()
    df = gt.query(ws, t, f"SELECT {fine_bin_sql(score)} AS fb, count(*) AS n, count_if({event}) AS k "
                         f"FROM truth_rows WHERE truth IS NOT NULL AND ({score}) IS NOT NULL AND {cond} GROUP BY 1",
                  params)
    n = int(df["n"].sum() or 0)
    return (fit_calibration(df) if n else None), n


def calibrate_file(ws: Workspace, ref: LogSource, spec: Spec) -> tuple[np.ndarray | None, int, str | None]:
    """Calibration from a labelled reference file (same column mapping as the logs)."""
    missing = [c for c in ("prediction", "label") if not ref.has(c)]
    if missing:
        return None, 0, f"the reference file has no {' or '.join(missing)} column: nothing estimated"
    cols = [f"{gt.canon(ref.expr('prediction'), ref.types.get('prediction', ''))} AS pred",
            f"{gt.canon(ref.expr('label'), ref.types.get('label', ''))} AS truth",
            f"{ref.expr('score')} AS score"]
    by_name = {fe.name: fe for fe in ref.features}
    for fe in ws.source.features:
        if feature_col(fe) in spec.class_scores.values():
            if fe.name not in by_name:
                return None, 0, f"the reference file has no column {fe.name!r}: nothing estimated"
            cols.append(f"{by_name[fe.name].expr} AS {feature_col(fe)}")
    score, event = _target(spec)
    sql = (f"SELECT {fine_bin_sql(score)} AS fb, count(*) AS n, count_if({event}) AS k FROM "
           f"(SELECT *, pred = truth AS correct FROM (SELECT {', '.join(cols)} FROM {ref.scan_sql} AS r) AS a) AS b "
           f"WHERE truth IS NOT NULL AND ({score}) IS NOT NULL GROUP BY 1")
    df = run(ws.con, sql, {"files": ref.files})
    n = int(df["n"].sum() or 0)
    return (fit_calibration(df) if n else None), n, None if n else "the reference file has no labelled, scored rows"


def _metrics(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    """Accuracy and macro precision/recall/F1 over both classes (arrays of any shape)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n = tp + fp + fn + tn
        p1, r1 = tp / (tp + fp), tp / (tp + fn)
        p0, r0 = tn / (tn + fn), tn / (tn + fp)
        f1 = 2 * tp / (2 * tp + fp + fn)
        f0 = 2 * tn / (2 * tn + fn + fp)
        fix = lambda x: np.where(np.isfinite(x), x, 0.0)  # noqa: E731  (zero_division=0)
        return {"accuracy": (tp + tn) / n, "precision_macro": (fix(p1) + fix(p0)) / 2,
                "recall_macro": (fix(r1) + fix(r0)) / 2, "f1_macro": (fix(f1) + fix(f0)) / 2}


def _auc_rows(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AUC along the last axis (bins in ascending score order), vectorised over draws."""
    P, N = pos.sum(axis=-1), neg.sum(axis=-1)
    below = np.cumsum(neg, axis=-1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        return (pos * (below + 0.5 * neg)).sum(axis=-1) / (P * N)


def _draw_positives(rng, n: np.ndarray, c: np.ndarray) -> np.ndarray:
    """EST_DRAWS draws of Binomial(n, c) per cell; cells with a variance of 25 or more use
    the normal approximation (rounded, clipped), which is much cheaper to draw."""
    var = n * c * (1 - c)
    big = var >= 25
    k = np.empty((EST_DRAWS, len(n)))
    if big.any():
        z = rng.standard_normal((EST_DRAWS, int(big.sum())))
        k[:, big] = np.clip(np.rint(n[big] * c[big] + np.sqrt(var[big]) * z), 0, n[big])
    if (~big).any():
        k[:, ~big] = rng.binomial(n[~big].astype(np.int64), c[~big], size=(EST_DRAWS, int((~big).sum())))
    return k


def _sum_draws(rng, n: np.ndarray, c: np.ndarray) -> np.ndarray:
    """EST_DRAWS draws of the sum of independent Binomial(n_i, c_i): normal with the exact
    mean and variance once the variance reaches 25, else summed exact draws."""
    mean, var = float((n * c).sum()), float((n * c * (1 - c)).sum())
    if var >= 25:
        return np.clip(mean + math.sqrt(var) * rng.standard_normal(EST_DRAWS), 0, n.sum())
    if len(n) == 0:
        return np.zeros(EST_DRAWS)
    return _draw_positives(rng, n, c).sum(axis=1)


def estimate_chunks(est: pl.DataFrame, cal: np.ndarray, spec: Spec, *, min_rows: int,
                    seed: int = 0) -> dict[int, dict[str, dict[str, Any]]]:
    """{chunk: {metric: {"value", "band": [lo, hi], "n"}}} from (chunk, pred_pos, fb, n)."""
    rng = np.random.default_rng(seed)
    out: dict[int, dict[str, dict[str, Any]]] = {}
    binary = spec.p_pos_sql() is not None
    for key in sorted(est["chunk"].unique().to_list(), key=lambda k: (k is None, k)):
        part = est.filter(pl.col("chunk") == key) if key is not None else est.filter(pl.col("chunk").is_null())
        part = part.sort("pred_pos", "fb")   # DuckDB's group order varies: draws must not
        n = part["n"].to_numpy().astype(float)
        total = int(n.sum())
        if total < min_rows:
            out[key] = {m: {"value": None, "band": None, "n": total,
                            "note": f"too few rows ({total} < {min_rows})"} for m in ("accuracy",)}
            continue
        c = cal[part["fb"].to_numpy()]
        pp = part["pred_pos"].to_numpy().astype(bool)
        res: dict[str, dict[str, Any]] = {}
        if binary:
            exp = _metrics(*(np.array([(n * c)[pp].sum()]), np.array([(n * (1 - c))[pp].sum()]),
                             np.array([(n * c)[~pp].sum()]), np.array([(n * (1 - c))[~pp].sum()])))
            tp, fn = _sum_draws(rng, n[pp], c[pp]), _sum_draws(rng, n[~pp], c[~pp])
            sim = _metrics(tp, n[pp].sum() - tp, fn, n[~pp].sum() - fn)
            fb = part["fb"].to_numpy()
            order = np.unique(fb)
            idx = np.searchsorted(order, fb)
            nb = np.bincount(idx, weights=n, minlength=len(order))
            cb = cal[order]
            exp["roc_auc"] = np.array([auc(nb * cb, nb * (1 - cb))[0]])
            kb = _draw_positives(rng, nb, cb)
            sim["roc_auc"] = _auc_rows(kb, nb - kb)
        else:
            exp = {"accuracy": np.array([(n * c).sum() / total])}
            sim = {"accuracy": _sum_draws(rng, n, c) / total}
        for m, v in exp.items():
            s = sim[m][np.isfinite(sim[m])]
            value = float(v[0])
            res[m] = {"value": value if math.isfinite(value) else None,
                      "band": np.percentile(s, [2.5, 97.5]).tolist() if s.size else None, "n": total}
        out[key] = res
    return out


def what_is_estimated(spec: Spec) -> str:
    if spec.task == "regression":
        return NOTHING_FOR_REGRESSION
    if spec.p_pos_sql():
        return ("Expected accuracy, macro precision, recall and F1, and ROC AUC, from the "
                f"probability of {spec.positive!r} calibrated on the reference.")
    if spec.conf_sql():
        return ("Expected accuracy only, from the confidence of the predicted class calibrated on the "
                "reference (per-class metrics need per-class probabilities).")
    return "Nothing is estimated: the logs have no score."


__all__ = ["ESTIMATED", "calibrate_file", "calibrate_window", "estimate_chunks", "fit_calibration", "quote_ident",
           "what_is_estimated"]

"""Multivariate drift: one score for the joint distribution of the numeric features.

A change in how features move together (two inputs that were correlated no longer are)
shows in no single column. The reference's numeric features are standardised (its means
and standard deviations; nulls at the mean) and their correlation matrix is read from
DuckDB as k(k+1)/2 `covar_pop` aggregates; numpy's `eigh` gives the principal components
keeping `VARIANCE_KEPT` of the variance (at most k - 1). A row's reconstruction error is
its squared distance to that subspace, |z|^2 - |P'z|^2, one SQL expression: its mean over
the reference and over a window (or each chunk) come from one scan each. No model to
train, no row leaves DuckDB, no dependency beyond numpy.

The score is the relative change of the mean error, |mean_cur / mean_ref - 1| (NannyML's
data reconstruction drift, here as an effect size); drift when it reaches `THRESHOLD`
and leaves the chance band Z * (sd_ref / mean_ref) * sqrt(1/n + 1/m), the
central-limit spread of a mean of n errors against one of m (Z = 3: 99.7%).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from .results import FeatureDrift
from .sql import Side, _params, _q, _value, _with
from .stattests import Score, Summary, stattest

NAME = "multivariate"
VARIANCE_KEPT = 0.9
THRESHOLD = 0.1
Z = 3.0
MAX_FEATURES = 50


@stattest("pca_reconstruction", title="PCA reconstruction error, relative change", kinds=("multivariate",),
          threshold=THRESHOLD,
          help="Mean squared distance of the standardised numeric features to the reference's "
               "principal subspace (90% of the variance), current over reference, minus 1, in absolute "
               "value: 0.1 = the joint distribution is 10% further from the reference's structure.")
def pca_reconstruction(ref: Summary, cur: Summary) -> Score:
    if not ref.mean or cur.mean is None:
        return Score(0.0)
    return Score(abs(cur.mean / ref.mean - 1.0))


@dataclass(frozen=True)
class Model:
    names: tuple[str, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    components: np.ndarray  # k x d, orthonormal columns

    def error_sql(self, side: Side) -> str:
        """The reconstruction error of one row of `side`, as SQL (numbers inlined: they are
        computed here, never user input)."""
        z = [f"((coalesce({_value(side.exprs[n], 'numeric')}, {m!r}) - {m!r}) / {s!r})"
             for n, m, s in zip(self.names, self.means, self.stds, strict=True)]
        total = " + ".join(f"{x} * {x}" for x in z)
        proj = []
        for c in range(self.components.shape[1]):
            terms = " + ".join(f"{float(w)!r} * {x}" for w, x in zip(self.components[:, c], z, strict=True))
            proj.append(f"({terms}) * ({terms})")
        return f"(({total}) - ({' + '.join(proj)}))"


def fit(con, reference: Side, features: Sequence) -> Model | None:
    """The model of the reference's numeric features (FeatureDrift with summaries);
    None with fewer than two usable ones."""
    usable = [f for f in features if f.kind == "numeric" and f.reference is not None and f.reference.std
              and f.reference.n > 2][:MAX_FEATURES]
    if len(usable) < 2:
        return None
    names = tuple(f.name for f in usable)
    means = tuple(float(f.reference.mean) for f in usable)
    stds = tuple(float(f.reference.std) for f in usable)
    z = [f"((coalesce({_value(reference.exprs[n], 'numeric')}, {m!r}) - {m!r}) / {s!r}) AS z{i}"
         for i, (n, m, s) in enumerate(zip(names, means, stds, strict=True))]
    k = len(names)
    aggs = [f"covar_pop(z{i}, z{j}) AS c{i}_{j}" for i in range(k) for j in range(i, k)]
    row = _q(con, _with([reference]) + f"SELECT {', '.join(aggs)} FROM (SELECT {', '.join(z)} FROM "
             f"{reference.rows_sql})", _params(reference)).row(0, named=True)
    cov = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            cov[i, j] = cov[j, i] = float(row[f"c{i}_{j}"] or 0.0)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0, None), vectors[:, order]
    share = np.cumsum(values) / values.sum() if values.sum() > 0 else np.ones(k)
    d = min(int(np.searchsorted(share, VARIANCE_KEPT) + 1), k - 1)
    return Model(names, means, stds, vectors[:, :d])


def errors(con, model: Model, side: Side, key: str | None = None, extra: dict | None = None) -> pl.DataFrame:
    """k (0 without `key`), n, mean and standard deviation of the rows' errors."""
    if key is None:
        sql = (_with([side]) + "SELECT 0 AS k, count(*) AS n, avg(e) AS mean, stddev_pop(e) AS sd FROM "
               f"(SELECT {model.error_sql(side)} AS e FROM {side.rows_sql})")
    else:
        sql = (_with([side]) + "SELECT k, count(*) AS n, avg(e) AS mean, stddev_pop(e) AS sd FROM "
               f"(SELECT {key} AS k, {model.error_sql(side)} AS e FROM {side.rows_sql}) GROUP BY k ORDER BY k")
    return _q(con, sql, _params(side, **(extra or {})))


def band(ref_mean: float, ref_sd: float, m: int, n: int) -> float | None:
    """Z * sd/mean * sqrt(1/n + 1/m): chance spread of the relative change of a mean."""
    if not ref_mean or n <= 0 or m <= 0:
        return None
    return Z * (ref_sd / ref_mean) * math.sqrt(1 / n + 1 / m)


def assess(con, reference: Side, current: Side, features: Sequence, decide) -> tuple[Model | None, object]:
    """(model, FeatureDrift of the joint distribution or None) for the whole window;
    `decide(method, score, threshold, band) -> (drifted, status)`."""
    model = fit(con, reference, features)
    if model is None:
        return None, None
    r = errors(con, model, reference).row(0, named=True)
    c = errors(con, model, current).row(0, named=True)
    ref = Summary("multivariate", int(r["n"]), 0, (), mean=r["mean"], std=r["sd"])
    cur = Summary("multivariate", int(c["n"]), 0, (), mean=c["mean"], std=c["sd"])
    s = pca_reconstruction(ref, cur)
    b = band(r["mean"] or 0.0, r["sd"] or 0.0, ref.n, cur.n)
    drifted, status = decide("pca_reconstruction", s, THRESHOLD, b)
    return model, FeatureDrift(
        name=NAME, role=NAME, kind=NAME, method="pca_reconstruction", threshold=THRESHOLD, score=s.value,
        p_value=None, drifted=drifted, status=status, n_reference=ref.n, n_current=cur.n,
        rows_reference=ref.n, rows_current=cur.n, scores={"pca_reconstruction": s}, reference=ref, current=cur,
        problem=None, band=b,
        labels=(f"{model.components.shape[1]} of {len(model.names)} components: " + ", ".join(model.names),))

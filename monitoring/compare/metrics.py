"""The compared metrics: each a small record plus one function from a version's evidence to
its estimate, its sample size and its interval at a critical value z.

    MEASURES["p95_latency_ms"].measure(stats)   # Measure(estimate, n, interval(z))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from . import stats
from .evidence import Moments, VersionStats


@dataclass(frozen=True)
class Measure:
    estimate: float
    n: float
    interval: Callable[[float], stats.Interval]
    q: float | None = None      # the quantile, for percentile metrics


@dataclass(frozen=True)
class MetricDef:
    name: str
    label: str
    kind: str          # latency | rate | number | share
    direction: int     # +1: a rise is worse, -1: a fall is worse, 0: neither
    measure: Callable[[VersionStats], Measure | None]


def proportion(k: float, n: float) -> Measure:
    return Measure(k / n if n else math.nan, n, partial(stats.wilson, k, n))


def _mean(m: Moments | None) -> Measure | None:
    if m is None:
        return None
    return Measure(m.mean, m.n, partial(stats.normal_interval, m.mean, m.var, m.n))


def _quantile(q: float, s: VersionStats) -> Measure:
    lat = s.latency
    return Measure(lat.estimates.get(q, math.nan), lat.n, partial(lat.interval, q), q)


def _accuracy(s: VersionStats) -> Measure | None:
    if s.labelled is None:
        return None
    return proportion(s.correct, s.labelled)


MEASURES: dict[str, MetricDef] = {m.name: m for m in (
    MetricDef("error_rate", "error rate", "rate", +1, lambda s: proportion(s.errors, s.requests)),
    MetricDef("p50_latency_ms", "P50", "latency", +1, partial(_quantile, 0.5)),
    MetricDef("p95_latency_ms", "P95", "latency", +1, partial(_quantile, 0.95)),
    MetricDef("p99_latency_ms", "P99", "latency", +1, partial(_quantile, 0.99)),
    MetricDef("score_mean", "mean score", "number", 0, lambda s: _mean(s.score)),
    MetricDef("accuracy", "accuracy", "rate", -1, _accuracy),
)}


def prediction_metric(a: VersionStats, b: VersionStats) -> tuple[MetricDef, int] | None:
    """The prediction distribution as one metric: for classes, the share of the class whose
    share changed most (judged at alpha / number of classes, so any class may be the one);
    for numeric predictions, their mean. Returns (metric, multiplicity) or None."""
    if a.classes is not None and b.classes is not None:
        classes = sorted(set(a.classes) | set(b.classes))
        na, nb = sum(a.classes.values()), sum(b.classes.values())
        if not classes or na == 0 or nb == 0:
            return None
        top = max(classes, key=lambda c: abs(b.classes.get(c, 0) / nb - a.classes.get(c, 0) / na))

        def share(s: VersionStats) -> Measure:
            return proportion(s.classes.get(top, 0), sum(s.classes.values()))
        return MetricDef("prediction_distribution", f"share of {top!r} predictions", "share", 0, share), \
            len(classes)
    if a.prediction is not None and b.prediction is not None:
        return MetricDef("prediction_distribution", "mean prediction", "number", 0,
                         lambda s: _mean(s.prediction)), 1
    return None

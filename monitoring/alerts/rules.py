"""Alert rules: each one a small descriptor plus one pure function, registered by name.

A rule function takes the evaluation context (time grid and rolled-up series, see
`engine.Context`) and its parameters, and returns its `Signal`s: for each subject (the
service, a feature, ...) a boolean "firing" per grid point, the value it judged and a
sentence template. Adding a rule is one `@rule(...)` function; nothing else changes.

Defaults follow the product's objectives (`[slo]`) and Google's SRE workbook for burn rates
(page when 2% of a 30-day budget burns in an hour: 14.4x over 1 h and 5 min; ticket when 5%
burns in 6 hours: 6x over 6 h and 30 min). Every default can be changed in monitoring.toml:

    [alerts.rules.latency_p95]
    window_minutes = 30
    [alerts.rules.throughput_low]
    enabled = false
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from ..metrics import anomalies


@dataclass(frozen=True)
class Signal:
    subject: str                 # "service", a feature name, a queue, ...
    firing: np.ndarray           # bool per grid point
    value: np.ndarray            # the judged value per grid point (NaN where not judged)
    message: str                 # format string: {value}, {threshold}, {subject}
    threshold: float
    unit: str = ""
    # Incidents with exact times, (start, end or None while ongoing, value): when given, the
    # episodes are these, not runs of grid points (one definition of when a gap happened).
    spans: list[tuple[Any, Any, float]] | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    area: str                    # latency | errors | traffic | drift | quality
    title: str
    page: str                    # the page that explains it
    defaults: dict[str, Any]
    help: dict[str, str]
    evaluate: Callable[..., list[Signal]]
    needs: tuple[str, ...] = field(default=())   # context parts beyond the base series
    worst: str = "max"                           # an episode's peak: its max or its min value


RULES: dict[str, Rule] = {}


def rule(name: str, *, area: str, title: str, page: str, defaults: dict[str, Any],
         help: dict[str, str], needs: tuple[str, ...] = (), worst: str = "max"):
    def deco(fn: Callable[..., list[Signal]]) -> Callable[..., list[Signal]]:
        RULES[name] = Rule(name, area, title, page, {"enabled": True, **defaults},
                           {"enabled": "evaluate this rule", **help}, fn, needs, worst)
        return fn
    return deco


def _window(ctx, minutes: float) -> int:
    return max(1, int(round(minutes * 60 / ctx.step_s)))


def hold(judged: np.ndarray, firing: np.ndarray) -> np.ndarray:
    """Carry the last judged state through points that could not be judged (too little
    data, e.g. at night): an alert neither fires nor resolves on no evidence."""
    idx = np.where(judged, np.arange(len(judged)), -1)
    last = np.maximum.accumulate(idx)
    return np.where(last >= 0, firing[np.maximum(last, 0)], False)


@rule("latency_p95", area="latency", title="P95 latency above its SLO", page="Latency",
      defaults={"window_minutes": 60, "min_requests": 50},
      help={"window_minutes": "trailing window the P95 is computed over",
            "min_requests": "fewer successful requests in the window are not judged"})
def latency_p95(ctx, p: dict, slo) -> list[Signal]:
    k = _window(ctx, p["window_minutes"])
    p95, n = ctx.rolling_quantile(0.95, k)
    judged = n >= p["min_requests"]
    value = np.where(judged, p95, np.nan)
    firing = hold(judged, judged & (p95 > slo.p95_latency_ms)) & ctx.within_data
    return [Signal("service", firing, value,
                   "P95 latency {value:,.0f} ms over the last " + f"{p['window_minutes']:g} min"
                   + " is above the {threshold:,.0f} ms SLO", slo.p95_latency_ms, "ms")]


@rule("error_rate", area="errors", title="Error rate above its objective", page="Errors",
      defaults={"window_minutes": 60, "max_p_value": 1e-3},
      help={"window_minutes": "trailing window",
            "max_p_value": "the excess must be this unlikely at the objective rate (binomial)"})
def error_rate(ctx, p: dict, slo) -> list[Signal]:
    from scipy.special import bdtrc

    k = _window(ctx, p["window_minutes"])
    n, e = ctx.rolling("requests", k), ctx.rolling("errors", k)
    rate = np.divide(e, n, out=np.full(len(n), np.nan), where=n > 0)
    pval = np.where(e > 0, bdtrc(np.maximum(e - 1, 0).astype(np.int64), n.astype(np.int64), slo.error_rate), 1.0)
    firing = (n > 0) & (rate > slo.error_rate) & (pval < p["max_p_value"])
    return [Signal("service", firing, rate * 100,
                   "error rate {value:.1f}% over the last " + f"{p['window_minutes']:g} min"
                   + " is above the {threshold:.1f}% objective", slo.error_rate * 100, "%")]


def _burn(ctx, p: dict, slo, label: str) -> list[Signal]:
    long_k, short_k = _window(ctx, p["long_minutes"]), _window(ctx, p["short_minutes"])
    burn = []
    for k in (long_k, short_k):
        n, e = ctx.rolling("requests", k), ctx.rolling("errors", k)
        burn.append(np.divide(e, n, out=np.zeros(len(n)), where=n > 0) / slo.error_rate)
    long_errors = ctx.rolling("errors", long_k)
    firing = ((burn[0] > p["factor"]) & (burn[1] > p["factor"]) & (ctx.rolling("requests", short_k) > 0)
              & (long_errors >= p["min_errors"]))
    return [Signal("service", firing, burn[0],
                   f"{label}: the error budget burns at " + "{value:.1f}x (over "
                   + f"{p['long_minutes']:g} min and {p['short_minutes']:g} min)" + ", above {threshold:g}x",
                   p["factor"], "x")]


@rule("burn_rate_fast", area="errors", title="Error budget burning fast (page)", page="Errors",
      defaults={"long_minutes": 60, "short_minutes": 5, "factor": 14.4, "min_errors": 5},
      help={"long_minutes": "long window", "short_minutes": "short window (stops the alert soon after recovery)",
            "factor": "burn rate: error rate divided by the objective",
            "min_errors": "failures the long window must hold (one failure in three requests is no burn)"})
def burn_rate_fast(ctx, p: dict, slo) -> list[Signal]:
    return _burn(ctx, p, slo, "fast burn")


@rule("burn_rate_slow", area="errors", title="Error budget burning steadily (ticket)", page="Errors",
      defaults={"long_minutes": 360, "short_minutes": 30, "factor": 6.0, "min_errors": 5},
      help={"long_minutes": "long window", "short_minutes": "short window", "factor": "burn rate",
            "min_errors": "failures the long window must hold"})
def burn_rate_slow(ctx, p: dict, slo) -> list[Signal]:
    return _burn(ctx, p, slo, "slow burn")


@rule("throughput_high", area="traffic", title="Traffic far above its baseline", page="Throughput",
      defaults={"window_minutes": 60, "factor": 3.0, "sigmas": anomalies.SPIKE_SIGMAS},
      help={"window_minutes": "trailing window", "factor": "times the expected requests",
            "sigmas": "and this many Poisson standard deviations above"})
def throughput_high(ctx, p: dict, slo) -> list[Signal]:
    k = _window(ctx, p["window_minutes"])
    got, exp = ctx.rolling("requests", k), ctx.rolling("expected", k)
    ratio = np.divide(got, exp, out=np.full(len(got), np.nan), where=exp > 0)
    firing = anomalies.is_spike(got, exp, p["factor"], p["sigmas"])
    return [Signal("service", firing, ratio,
                   "traffic is {value:.1f}x its expected level over the last " + f"{p['window_minutes']:g} min",
                   p["factor"], "x")]


@rule("throughput_low", area="traffic", title="Traffic far below its baseline", page="Throughput", worst="min",
      defaults={"window_minutes": 60, "factor": 3.0, "min_expected": 30.0},
      help={"window_minutes": "trailing window", "factor": "expected requests divided by this",
            "min_expected": "windows expecting fewer requests are not judged"})
def throughput_low(ctx, p: dict, slo) -> list[Signal]:
    k = _window(ctx, p["window_minutes"])
    got, exp = ctx.rolling("requests", k), ctx.rolling("expected", k)
    ratio = np.divide(got, exp, out=np.full(len(got), np.nan), where=exp > 0)
    firing = (exp >= p["min_expected"]) & (got * p["factor"] <= exp) & ctx.within_data
    return [Signal("service", firing, ratio,
                   "traffic is {value:.0%} of its expected level over the last " + f"{p['window_minutes']:g} min",
                   1 / p["factor"], "")]


@rule("gap", area="traffic", title="No traffic (downtime)", page="Throughput",
      defaults={"min_minutes": 15},
      help={"min_minutes": "gaps (as the Throughput page finds them) at least this long fire"})
def gap(ctx, p: dict, slo) -> list[Signal]:
    gaps = anomalies.find_gaps(ctx.extra["minutes"], ctx.extra["window"], slo)
    spans = [(g.start, g.end, float(g.minutes)) for g in gaps if g.minutes >= p["min_minutes"]]
    # Checked at a moment inside a silence (alerts check --at): it is still going on.
    silent_min, expected = ctx.silence()
    if ctx.extra.get("open_end") and len(silent_min) and silent_min[-1] >= p["min_minutes"] \
            and expected[-1] >= slo.gap_min_expected_requests:
        began = ctx.times[-1] - timedelta(minutes=float(silent_min[-1]))
        if not spans or spans[-1][0] != began:
            spans.append((began, None, float(silent_min[-1])))
    firing = np.zeros(len(ctx.times), dtype=bool)
    return [Signal("service", firing, np.full(len(ctx.times), np.nan),
                   "no request for {value:.0f} minutes where traffic was expected", p["min_minutes"], "min",
                   spans=spans)]


@rule("accuracy_floor", area="quality", title="Accuracy below its floor", page="Queues",
      defaults={"window_minutes": 1440, "max_window_minutes": 43200, "min_labelled": 50, "max_p_value": 1e-3},
      help={"window_minutes": "shortest trailing window of served requests whose late labels are scored",
            "max_window_minutes": "longest window: at low labelled volume the window doubles from "
                                  "window_minutes until a typical one holds min_labelled labels (30 days)",
            "min_labelled": "windows with fewer labelled requests are not judged (no evidence: no alert)",
            "max_p_value": "the shortfall must be this unlikely were accuracy at the floor (binomial)"},
      needs=("labels",), worst="min")
def accuracy_floor(ctx, p: dict, slo) -> list[Signal]:
    """Accuracy over a trailing window sized to the labelled volume: window_minutes,
    doubled until a typical window (the median over the grid points since labels began)
    holds min_labelled labels, up to max_window_minutes. Hours when labels are plenty,
    weeks when they trickle in; a spell without labels still ends an episode."""
    from scipy.special import bdtr

    labelled = ctx.series["labelled"]
    seen = np.cumsum(labelled) > 0
    minutes = float(p["window_minutes"])
    while minutes * 2 <= p["max_window_minutes"]:
        typical = np.median(ctx.rolling("labelled", _window(ctx, minutes))[seen]) if seen.any() else 0.0
        if typical >= p["min_labelled"]:
            break
        minutes *= 2
    k = _window(ctx, minutes)
    n, c = ctx.rolling("labelled", k), ctx.rolling("correct", k)
    acc = np.divide(c, n, out=np.full(len(n), np.nan), where=n > 0)
    judged = n >= p["min_labelled"]
    pval = np.where(judged, bdtr(c.astype(np.int64), np.maximum(n, 1).astype(np.int64), slo.accuracy_floor), 1.0)
    firing = judged & (acc < slo.accuracy_floor) & (pval < p["max_p_value"])
    span = f"{minutes / 60:g} h" if minutes < 2880 else f"{minutes / 1440:g} days"
    return [Signal("service", firing, np.where(judged, acc * 100, np.nan),
                   f"accuracy {{value:.1f}}% on the labelled requests of the last {span}"
                   " is below the {threshold:.0f}% floor", slo.accuracy_floor * 100, "%")]


@rule("drift", area="drift", title="Drift", page="Drift",
      defaults={"chunk": "day"},
      help={"chunk": "chunks of traffic scored against the [drift] reference: day (an alert should not "
                     "wait for a week), hour, week, month, rows:N or auto (the Drift page's choice); "
                     "every chunk is judged, a small one against its wider chance band"},
      needs=("drift",))
def drift(ctx, p: dict, slo) -> list[Signal]:
    """One signal per input or output that drifted in at least one chunk: firing over the
    chunks where it drifted, by the Drift page's one judgement (threshold and chance band
    at the chunk's size, `StatTest.drifted`); no floor on rows: a quiet day is judged with
    the band of its size."""
    ot = ctx.extra["drift"]
    chunks = {int(r["k"]): (r["start"].timestamp(), r["end"].timestamp()) for r in ot.chunks.iter_rows(named=True)
              if r["start"] is not None}
    if chunks:
        # The last chunk's state holds to the end of the history (its evidence is the latest).
        last = max(chunks)
        chunks[last] = (chunks[last][0], float("inf"))
    # the grid's times (each bucket's end), as epoch seconds: ctx.times without a datetime each
    t = ((ctx.b0 + np.arange(len(ctx.times)) + 1) * ctx.step_s).astype(np.float64)
    out = []
    scores = ot.scores.filter(pl.col("score").is_not_null() & pl.col("k").is_in(list(chunks)))
    # Each grid time's chunk (start, end], found once for every column: chunks do not overlap.
    ks = sorted(chunks, key=lambda k: chunks[k][0])
    starts = np.array([chunks[k][0] for k in ks])
    ends = np.array([chunks[k][1] for k in ks])
    at = np.searchsorted(starts, t, side="left") - 1
    inside = (at >= 0) & (t <= ends[np.clip(at, 0, None)]) if len(ks) else np.zeros(len(t), dtype=bool)
    position = {k: i for i, k in enumerate(ks)}
    onsets = ctx.extra.get("drift_onsets", {})
    for name in scores.filter(pl.col("drifted"))["name"].unique(maintain_order=True).to_list():
        rows = scores.filter(pl.col("name") == name)
        per_chunk = np.full(len(ks) + 1, np.nan)  # the last slot: outside every chunk
        drifted_chunk = np.zeros(len(ks) + 1, dtype=bool)
        pos = np.array([position[int(k)] for k in rows["k"].to_list()], dtype=np.int64)
        per_chunk[pos] = rows["score"].to_numpy()
        drifted_chunk[pos] = rows["drifted"].fill_null(False).to_numpy()
        slot = np.where(inside, at, len(ks))
        value, firing = per_chunk[slot], drifted_chunk[slot]
        spans: list[list[Any]] = []     # runs of drifted chunks: [onset, end, peak, last k]
        for r in rows.filter(pl.col("drifted").fill_null(False)).sort("k").iter_rows(named=True):
            k = int(r["k"])
            start, end = chunks[k]
            if spans and spans[-1][3] == k - 1:
                spans[-1][1:] = [end, max(spans[-1][2], r["score"]), k]
            else:
                # The episode starts when the drift began (its onset within the chunk,
                # engine._drift_onsets), not at the chunk's start or a grid point after it.
                onset = onsets.get((name, k))
                onset = max(start, onset.timestamp()) if onset is not None else start
                spans.append([onset, end, r["score"], k])
                firing &= ~((t > start) & (t <= onset))
        method, threshold = rows["method"][0], float(rows["threshold"][0])
        role = rows["role"][0]
        what = (f"the model's {name}" if role in ("prediction", "score", "class_score", "max_probability") else
                "the labels (ground truth)" if role == "label" else
                "the joint distribution of the numeric inputs" if role == "multivariate" else f"input {name}")
        utc = lambda x: None if x == float("inf") else datetime.fromtimestamp(x, UTC)  # noqa: E731
        out.append(Signal(name, firing, value, f"{what} drifted from the reference: {method} "
                          + "{value:.3f} above {threshold:g} and its chance band", threshold, "",
                          spans=[(utc(a), utc(b), float(v)) for a, b, v, _ in spans]))
    return out

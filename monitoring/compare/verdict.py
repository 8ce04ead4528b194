"""The one judgement of a comparison: is the candidate worse, better, no different, or is
there not enough data yet? Page, CLI, alert rule and weekly summary all call `judge`.

Method (also on the page and in docs/compare.md):
1. Every interval is an always-valid normal-mixture confidence sequence (mixture SPRT): its
   critical value `stats.mixture_z` grows slowly with traffic, so the answer may be read at
   every look while traffic accumulates without inflating false alarms.
2. Rates use Wilson intervals per version, combined by MOVER into Newcombe's interval of the
   difference; percentiles use exact order-statistic intervals, combined the same way; means
   use normal intervals.
3. A guarded metric breaches when the whole interval of (candidate - baseline - tolerance)
   lies on the worse side. Holm's step-down procedure over the guarded metrics' always-valid
   p-values sets the level each one is judged at, so that a false rollback across all of them
   happens with probability at most alpha. Unguarded metrics are shown at level alpha.
4. Verdict: "worse" (rollback) if any guarded metric breaches; else "not_enough_data" if any
   guarded metric can neither be ruled out nor confirmed beyond its tolerance; else "better"
   if one is significantly better and none significantly worse; else "no_difference".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import stats
from .evidence import VersionStats
from .metrics import MEASURES, Measure, MetricDef, prediction_metric, proportion
from .settings import CompareSettings, Tolerance
from .wording import interval_text, size

ORDER = ("error_rate", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "prediction_distribution",
         "score_mean", "accuracy")


@dataclass
class MetricResult:
    name: str
    label: str
    kind: str
    baseline: float | None
    candidate: float | None
    difference: float | None
    ci: tuple[float, float] | None
    significant: bool
    worse: bool
    better: bool
    guarded: bool
    tolerance: Tolerance | None = None
    decided: bool = True           # guarded: a breach, or a breach ruled out
    level: float | None = None     # the alpha this metric was judged at
    p_value: float | None = None   # always-valid p-value of "no breach" (guarded)
    n: tuple[int, int] = (0, 0)
    more: float | None = None      # traffic still needed to decide, as a multiple of today's
    sentence: str = ""

    def as_json(self) -> dict:
        return {"name": self.name, "baseline": self.baseline, "candidate": self.candidate,
                "difference": self.difference, "ci": list(self.ci) if self.ci else None,
                "significant": self.significant, "worse": self.worse, "guarded": self.guarded}


@dataclass
class Comparison:
    baseline: str
    candidate: str
    metrics: list[MetricResult]
    verdict: str
    rollback: bool
    reasons: list[str]
    headline: str
    hours_more: float | None = None
    notes: list[str] = field(default_factory=list)


def _phrase(m: MetricResult, who: str) -> str:
    d = m.difference or 0.0
    amount = size(m.kind, d)
    if m.kind == "latency":
        return f"{who} is {'slower' if d > 0 else 'faster'} at {m.label} by {amount}"
    return f"{who} has a {'higher' if d > 0 else 'lower'} {m.label} by {amount}"


def _sentence(m: MetricResult, who: str, other: str) -> str:
    if m.difference is None or m.ci is None:
        return f"Not enough traffic yet for {m.label} on both versions."
    if not all(math.isfinite(x) for x in m.ci):
        return f"Not enough traffic yet to put an interval on {m.label} ({m.n[1]:,} vs {m.n[0]:,})."
    body = f"{_phrase(m, who)} (95% interval {interval_text(m.kind, m.difference, m.ci)})"
    tol = f"the tolerated {m.tolerance.text}" if m.tolerance else ""
    if m.worse and m.guarded:
        return f"{body}: significant, beyond {tol}."
    if m.significant:
        return f"{body}: significant" + (f", within {tol}." if m.guarded and not m.better else ".")
    if m.guarded and not m.decided:
        return f"{body}: not significant, and a worsening beyond {tol} is not ruled out yet."
    return f"{body}: not significant" + (f"; a worsening beyond {tol} is ruled out." if m.guarded else ".")


def _bad_interval(tol: Tolerance, ma: Measure, mb: Measure):
    """z -> interval of (candidate - baseline - tolerance) turned so that > 0 means a breach."""
    w_a = 1.0 + tol.direction * tol.amount if tol.relative else 1.0
    shift = 0.0 if tol.relative else tol.amount

    def at(z: float) -> stats.Interval:
        lo, hi = stats.mover(ma.estimate, ma.interval(z), mb.estimate, mb.interval(z), w_a)
        if tol.direction > 0:
            return (lo - shift, hi - shift)
        return (-hi - shift, -lo - shift)
    return at


def _more_needed(bad: stats.Interval, estimate: float) -> float:
    """How many times today's traffic the interval needs to decide (width ~ 1/sqrt(n))."""
    lo, hi = bad
    if not (math.isfinite(lo) and math.isfinite(hi)) or estimate == 0:
        return math.inf
    half = (estimate - lo) if estimate > 0 else (hi - estimate)
    return max(1.0, (half / abs(estimate)) ** 2)


def judge(a: VersionStats, b: VersionStats, settings: CompareSettings, hours: float | None = None) -> Comparison:
    """Compare candidate `b` with baseline `a`; `hours`: how long the window's traffic took
    (for "about N more hours at this rate")."""
    alpha, n_ref = settings.alpha, settings.mixture_requests
    defs: list[tuple[MetricDef, int]] = []
    if a.has_status and b.has_status:
        defs.append((MEASURES["error_rate"], 1))
    if a.has_latency and b.has_latency:
        defs += [(MEASURES[n], 1) for n in ("p50_latency_ms", "p95_latency_ms", "p99_latency_ms")]
    if a.score is not None and b.score is not None:
        defs.append((MEASURES["score_mean"], 1))
    pm = prediction_metric(a, b)
    if pm:
        defs.append(pm)
    if a.labelled is not None or b.labelled is not None:
        defs.append((MEASURES["accuracy"], 1))
    measured = []
    for d, k in defs:
        ma, mb = d.measure(a), d.measure(b)
        ok = ma is not None and mb is not None and ma.n > 0 and mb.n > 0
        measured.append((d, k, ma if ok else None, mb if ok else None))

    # Holm across the guarded metrics that have data on both sides.
    guarded_idx, pvals = [], []
    for i, (d, _, ma, mb) in enumerate(measured):
        tol = settings.guarded.get(d.name)
        if tol and ma is not None:
            guarded_idx.append(i)
            pvals.append(stats.p_value(_bad_interval(tol, ma, mb), lambda iv: iv[0] > 0, ma.n, mb.n, n_ref))
    levels, _ = stats.holm_levels(pvals, alpha)
    level_of = dict(zip(guarded_idx, levels, strict=True))
    p_of = dict(zip(guarded_idx, pvals, strict=True))

    results: list[MetricResult] = []
    for i, (d, k, ma, mb) in enumerate(measured):
        tol = settings.guarded.get(d.name)
        if ma is None:
            results.append(MetricResult(d.name, d.label, d.kind, None, None, None, None, False, False, False,
                                        tol is not None, tol, decided=tol is None, more=math.inf if tol else None))
            continue
        level = level_of.get(i, alpha / k)
        z = stats.grid_z(stats.mixture_z(level, ma.n, mb.n, n_ref))
        ci = stats.mover(ma.estimate, ma.interval(z), mb.estimate, mb.interval(z))
        diff = mb.estimate - ma.estimate
        sig = ci[0] > 0 or ci[1] < 0
        direction = tol.direction if tol else d.direction
        worse_side = (ci[0] > 0) if direction > 0 else (ci[1] < 0) if direction < 0 else False
        better_side = (ci[1] < 0) if direction > 0 else (ci[0] > 0) if direction < 0 else False
        m = MetricResult(d.name, d.label, d.kind, ma.estimate, mb.estimate, diff, ci, sig, worse_side, better_side,
                         tol is not None, tol, level=level, n=(ma.n, mb.n))
        if tol:
            bad = _bad_interval(tol, ma, mb)(z)
            m.worse = bad[0] > 0
            m.decided = m.worse or bad[1] < 0
            m.p_value = p_of[i]
            if m.decided:
                m.more = None
            elif d.kind == "rate":
                m.more = _more_for_rates(tol, ma, mb, level, n_ref)
            else:
                m.more = _more_needed(bad, _bad_estimate(tol, ma, mb))
                if m.more == math.inf and d.kind == "latency":
                    m.more = max(_finite_factor(ma, z), _finite_factor(mb, z))
        results.append(m)
    results.sort(key=lambda r: ORDER.index(r.name))
    return _conclude(a.version, b.version, results, hours)


def _more_for_rates(tol: Tolerance, ma: Measure, mb: Measure, level: float, n_ref: float) -> float:
    """Times today's traffic after which a rate's interval decides, if the rates stay as
    they are (score intervals of rare events narrow like 1/n, not 1/sqrt(n): computed)."""
    f = 1.0
    while f < 1e4:
        f *= 1.1
        a = proportion(ma.estimate * ma.n * f, ma.n * f)
        b = proportion(mb.estimate * mb.n * f, mb.n * f)
        z = stats.grid_z(stats.mixture_z(level, a.n, b.n, n_ref))
        lo, hi = _bad_interval(tol, a, b)(z)
        if lo > 0 or hi < 0:
            return f
    return math.inf


def _finite_factor(m: Measure, z: float) -> float:
    """Times today's traffic after which a percentile's interval has both ends."""
    if m.q is None:
        return math.inf
    n = target = max(m.n, 1)
    while target < 1e12:
        lo, hi = stats.quantile_ranks(int(target), m.q, z)
        if lo >= 1 and hi <= target:
            return target / n
        target = math.ceil(target * 1.1)
    return math.inf


def _bad_estimate(tol: Tolerance, ma: Measure, mb: Measure) -> float:
    """Point estimate of the breach statistic (> 0: beyond the tolerance)."""
    if tol.relative:
        theta = mb.estimate - (1 + tol.direction * tol.amount) * ma.estimate
        return theta if tol.direction > 0 else -theta
    d = mb.estimate - ma.estimate
    return d - tol.amount if tol.direction > 0 else -d - tol.amount


def _conclude(base: str, cand: str, results: list[MetricResult], hours: float | None) -> Comparison:
    for m in results:
        m.sentence = _sentence(m, cand, base)
    guarded = [m for m in results if m.guarded]
    breaches = [m for m in guarded if m.worse]
    undecided = [m for m in guarded if not m.decided]
    better = [m for m in guarded if m.better]
    sig_worse = [m for m in guarded if m.significant and not m.better]
    hours_more = None
    if breaches:
        verdict = "worse"
        headline = f"Roll back {cand}: " + " ".join(m.sentence for m in breaches)
        reasons = [m.sentence for m in breaches]
    elif undecided:
        verdict = "not_enough_data"
        need = max((m.more for m in undecided if m.more is not None), default=math.inf)
        if hours and math.isfinite(need):
            hours_more = hours * (need - 1)
        names = ", ".join(m.label for m in undecided)
        headline = f"Not enough traffic yet to tell ({names}): {_eta(hours_more)}."
        if better:
            headline += " So far: " + " ".join(m.sentence for m in better)
        reasons = [m.sentence for m in undecided] + [m.sentence for m in better]
    elif better and not sig_worse:
        verdict = "better"
        headline = f"{cand} is better than {base}: " + " ".join(m.sentence for m in better)
        reasons = [m.sentence for m in better]
    else:
        verdict = "no_difference"
        labels = ", ".join(m.label for m in guarded) or "no guarded metric"
        headline = f"{cand} is not worse than {base} beyond the tolerances ({labels})."
        reasons = [m.sentence for m in guarded]
    return Comparison(base, cand, results, verdict, bool(breaches), reasons, headline, hours_more)


def _eta(hours: float | None) -> str:
    if hours is None:
        return "wait for more traffic on both versions"
    if hours > 24 * 30:
        return "more than a month at this rate"
    if hours >= 48:
        return f"about {hours / 24:.0f} more days at this rate"
    return f"about {max(1, round(hours))} more hour{'s' if round(hours) > 1 else ''} at this rate"

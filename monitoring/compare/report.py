"""A comparison of two versions over a window, as every reader gets it (page, CLI, summary).

    result = compare(ws, "v2", "v3")              # default window: where both served
    result.as_json()                              # the JSON of `python -m monitoring compare`
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ..logs.workspace import Workspace
from ..quality import ground_truth
from ..query.filters import Filters
from .evidence import VersionStats
from .queries import default_pair, overlap, version_traffic, window_evidence
from .settings import CompareSettings, load_compare_settings
from .verdict import Comparison, judge


class CompareError(ValueError):
    """The comparison cannot be made (unknown version, empty window); one plain sentence."""


@dataclass
class CompareResult:
    comparison: Comparison
    start: datetime | None
    end: datetime | None
    stats: dict[str, VersionStats]
    settings: CompareSettings
    notes: list[str] = field(default_factory=list)
    origin: str = ""            # which path answered: the store's whole days and raw rest, or raw

    @property
    def traffic(self) -> dict[str, int]:
        c = self.comparison
        return {"baseline": self.stats[c.baseline].requests, "candidate": self.stats[c.candidate].requests}

    def as_json(self) -> dict[str, Any]:
        c = self.comparison
        return {"baseline": c.baseline, "candidate": c.candidate,
                "window": {"start": self.start, "end": self.end},
                "traffic": self.traffic,
                "metrics": [m.as_json() for m in c.metrics],
                "verdict": c.verdict, "rollback": c.rollback, "answered": self.origin,
                "reasons": [*self.notes, *c.reasons]}


def compare(ws: Workspace, baseline: str | None = None, candidate: str | None = None,
            start: datetime | None = None, end: datetime | None = None, f: Filters | None = None,
            settings: CompareSettings | None = None, raw: bool = False) -> CompareResult:
    """Judge `candidate` against `baseline` over [start, end) (default: where both served).
    `f` adds the model and endpoint filters; its own window is used when start/end are None.
    The rollup store answers the window's whole UTC days when it covers the logs (`raw`: the
    raw engine alone); `origin` says which."""
    settings = settings or load_compare_settings(ws.config)
    f = f or Filters()
    scope = replace(f, start=start or f.start, end=end or f.end, model_versions=())
    traffic = version_traffic(ws, scope)
    known = traffic["version"].to_list()
    if (baseline is None or candidate is None) and len(known) < 2:
        raise CompareError("the logs hold fewer than two versions in this window: nothing to compare")
    if baseline is None or candidate is None:
        baseline, candidate = default_pair(traffic, baseline, candidate)
    for v in (baseline, candidate):
        if v not in known:
            here = f"versions here: {', '.join(known)}" if known else "no version served in it"
            raise CompareError(f"version {v!r} has no traffic in this window ({here})")
    if baseline == candidate:
        raise CompareError(f"baseline and candidate are both {baseline!r}: pick two different versions")
    notes = []
    if not ws.source.has("latency_ms"):
        notes.append("The logs have no latency_ms column: latency is not compared.")
    if not ws.source.has("status"):
        notes.append("The logs have no status column: the error rate is not compared.")
    both = overlap(traffic, baseline, candidate)
    if not ws.source.has_time:
        notes.append("The logs have no timestamps: all their rows are compared, and the window has no bounds.")
        lo = hi = None
    elif both is None:
        notes.append(f"{baseline} and {candidate} never served at the same time in this window: "
                     "differences may come from the period, not the version.")
        first, last = traffic["first"].min(), traffic["last"].max()
        lo, hi = scope.start or first, scope.end or last + timedelta(microseconds=1)
    else:
        lo, hi = both            # inside the filter's window already
    lo, hi = start or lo, end or hi  # an explicit start or end wins
    if lo is not None and hi is not None and hi <= lo:
        raise CompareError("the window is empty: its end is not after its start")
    window = replace(scope, start=lo, end=hi)
    reviewed = ground_truth.reviewed_labels(ws.config.database_url)
    st, origin = window_evidence(ws, (baseline, candidate), window, reviewed, raw=raw)
    b = st[candidate]
    hours = ((b.last - b.first) / 3600) if b.first is not None and b.last is not None and b.last > b.first else None
    result = judge(st[baseline], b, settings, hours)
    return CompareResult(result, lo, hi, st, settings, notes, origin)


def rollback_in_week(ws: Workspace, start: datetime, end: datetime) -> dict[str, Any] | None:
    """Weekly-summary provider: the default pair among the versions serving this week, judged
    on all their shared traffic up to the week's end (as the rollback rule sees it then)."""
    week = version_traffic(ws, Filters(start=start, end=end))
    if week.height < 2:
        return None
    baseline, candidate = default_pair(week)
    r = compare(ws, baseline, candidate, f=Filters(end=end))
    c = r.comparison
    return {"baseline": baseline, "candidate": candidate, "verdict": c.verdict, "rollback": c.rollback,
            "reason": c.headline, "window": {"start": r.start, "end": r.end}}


def table(result: CompareResult) -> str:
    """The plain-text table of `compare --format table`."""
    c = result.comparison
    lines = [f"{c.candidate} (candidate) against {c.baseline} (baseline), "
             f"{result.start:%Y-%m-%d %H:%M} to {result.end:%Y-%m-%d %H:%M} UTC; "
             f"{result.traffic['candidate']:,} vs {result.traffic['baseline']:,} requests",
             f"verdict: {c.verdict}" + ("  ROLLBACK" if c.rollback else ""), c.headline,
             f"answered {result.origin}", "",
             f"{'metric':<25}{'baseline':>12}{'candidate':>12}{'difference':>14}  {'interval':<26}flags"]
    from .wording import value_text

    for m in c.metrics:
        flags = ",".join(x for x, on in (("guarded", m.guarded), ("significant", m.significant),
                                         ("worse", m.worse)) if on)
        diff = "–" if m.difference is None else f"{m.difference:+.4g}"
        ci = "–" if m.ci is None else f"[{m.ci[0]:.4g}, {m.ci[1]:.4g}]"
        lines.append(f"{m.name:<25}{value_text(m.kind, m.baseline):>12}{value_text(m.kind, m.candidate):>12}"
                     f"{diff:>14}  {ci:<26}{flags}")
    lines += [""] + [f"- {r}" for r in [*result.notes, *c.reasons]]
    return "\n".join(lines)

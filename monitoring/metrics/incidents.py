"""What went wrong in a window, from every detector, as one list in time order.

    incidents(summary, gaps, spikes, slo, episodes)   # -> list[Incident]

Each detector keeps its one definition: latency breaches and significant error-rate
breaches are buckets judged by `status`, gaps and spikes come from `anomalies`, drift from
the alert rule's episodes. Consecutive breaching buckets form one incident, so "P95 above
the SLO from 14:00 to 17:00" is one line, not three.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from ..config import SLO
from ..fmt import ms
from ..query.filters import BUCKETS
from .anomalies import Gap, Spike
from .service import Summary
from .status import error_breaches, latency_breaches


@dataclass(frozen=True)
class Incident:
    kind: str            # "latency" | "errors" | "downtime" | "spike" | "drift"
    start: datetime
    end: datetime | None
    sentence: str        # plain words, after the kind's own label
    page: str            # the page that explains it
    from_logs: bool = False   # the sentence holds text from the logs (escape it for Markdown)


def _runs(times: list[datetime], step: timedelta) -> list[tuple[int, int]]:
    """[first, last] indexes of runs of consecutive bucket times."""
    runs: list[list[int]] = []
    for i, t in enumerate(times):
        if runs and t - times[runs[-1][1]] <= step:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return [(a, b) for a, b in runs]


def _span(a: datetime, b: datetime) -> str:
    same_day = a.date() == (b - timedelta(microseconds=1)).date()
    return f"{a:%Y-%m-%d %H:%M} → {b:%H:%M} UTC" if same_day else f"{a:%Y-%m-%d %H:%M} → {b:%Y-%m-%d %H:%M} UTC"


def incidents(s: Summary, gaps: list[Gap], spikes: list[Spike], slo: SLO,
              episodes: list | None = None) -> list[Incident]:
    step = timedelta(seconds=BUCKETS[s.bucket])
    out: list[Incident] = []
    lat = latency_breaches(s.buckets, slo).sort("time")
    for a, b in _runs(lat["time"].to_list(), step):
        part = lat.slice(a, b - a + 1)
        worst = part.sort("p95", descending=True).row(0, named=True)
        start, end = part["time"][0], part["time"][-1] + step
        out.append(Incident("latency", start, end,
                            f"P95 above the {ms(slo.p95_latency_ms)} SLO {_span(start, end)} "
                            f"(worst bucket {ms(worst['p95'])} at {worst['time']:%H:%M}).", "Latency"))
    if s.window.error_rate is not None:
        err = error_breaches(s.buckets, slo).sort("time")
        for a, b in _runs(err["time"].to_list(), step):
            part = err.slice(a, b - a + 1)
            start, end = part["time"][0], part["time"][-1] + step
            rate = part["errors"].sum() / max(part["requests"].sum(), 1)
            out.append(Incident("errors", start, end,
                                f"{rate:.1%} of requests failed {_span(start, end)}, significantly above the "
                                f"{slo.error_rate:.0%} objective ({int(part['errors'].sum()):,} failures).", "Errors"))
    for g in gaps:
        out.append(Incident("downtime", g.start, g.end,
                            f"{_span(g.start, g.end)}: {g.minutes} minutes without a request "
                            f"(about {g.expected_requests:,.0f} expected).", "Throughput"))
    for sp in spikes:
        out.append(Incident("spike", sp.time, sp.time + step,
                            f"at {sp.time:%Y-%m-%d %H:%M} UTC: {sp.requests:,} requests, "
                            f"{sp.ratio:.1f}× the expected {sp.expected:,.0f}.", "Throughput"))
    w0, w1 = s.window.start, s.window.end
    for e in episodes or []:
        if e.area != "drift" or e.start >= w1 or (e.end is not None and e.end <= w0):
            continue
        out.append(Incident("drift", e.start, e.end, f"{e.message} (from {e.start:%Y-%m-%d %H:%M} UTC"
                            + (f" to {e.end:%Y-%m-%d %H:%M} UTC)." if e.end else ", still drifting)."), "Drift",
                            from_logs=True))
    return sorted(out, key=lambda i: (i.start, i.kind))


def as_frame(items: list[Incident]) -> pl.DataFrame:
    return pl.DataFrame([{"kind": i.kind, "start": i.start, "end": i.end, "what": i.sentence, "page": i.page}
                         for i in items])

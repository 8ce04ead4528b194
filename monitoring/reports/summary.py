"""The weekly health summary: one ISO week (Monday 00:00 UTC to the next), in plain words.

Every figure comes from the same functions as the pages and the CLI (metrics.summarize,
anomalies, status, the drift engine, the labelling results, the alert engine), so the
summary and `stats`, `drift` and `queue status` agree for the same week.

    s = weekly_summary(ws, "2026-W47")          # a dict: the JSON of `summary --format json`
    to_markdown(s), to_html(s)                  # the exports

Each area has a `status` (green, amber, red, or grey when it cannot be judged) and a
`reason`: one sentence a manager reads without help.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from ..fmt import ms as _ms
from ..logs.workspace import Workspace
from ..metrics import anomalies
from ..metrics import service as metrics
from ..metrics.status import MIN_BUCKET_REQUESTS, error_breaches, kpi_status
from ..query.filters import Filters

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
LEVELS = {"green": 0, "grey": 0, "amber": 1, "red": 2}
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def week_bounds(week: str) -> tuple[datetime, datetime]:
    """'2026-W47' -> (Monday 00:00 UTC, next Monday 00:00 UTC); ValueError otherwise."""
    m = _WEEK.match(week.strip())
    if not m:
        raise ValueError(f"not an ISO week (YYYY-Www): {week!r}")
    try:
        monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError as exc:
        raise ValueError(f"no such ISO week: {week!r}") from exc
    start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    return start, start + timedelta(days=7)


def week_of(t: datetime) -> str:
    y, w, _ = t.isocalendar()
    return f"{y}-W{w:02d}"


def default_week(ws: Workspace, now: datetime | None = None) -> str:
    """The last complete ISO week of the logs (and of the calendar): what a manager reviews."""
    now = now or datetime.now(UTC)
    last = min(ws.extent.last or now, now)
    start, end = week_bounds(week_of(last))
    # The week of the last request counts once it is over and the logs reach its last hour.
    if now >= end and last >= end - timedelta(hours=1):
        return week_of(start)
    return week_of(start - timedelta(days=1))


def weeks_with_data(ws: Workspace) -> list[str]:
    if ws.extent.first is None or ws.extent.last is None:
        return []
    out, t = [], week_bounds(week_of(ws.extent.first))[0]
    while t <= ws.extent.last:
        out.append(week_of(t))
        t += timedelta(days=7)
    return out


@dataclass(frozen=True)
class Providers:
    """Optional parts computed elsewhere: each returns a dict for the week or None."""
    drift: Callable[[Workspace, datetime, datetime], dict | None] | None = None
    accuracy: Callable[[Workspace, datetime, datetime], dict | None] | None = None
    alerts: Callable[[Workspace, datetime, datetime], list[dict] | None] | None = None
    rollback: Callable[[Workspace, datetime, datetime], dict | None] | None = None
    quality: Callable[[Workspace, datetime, datetime], dict | None] | None = None


def _change(cur: float | None, prev: float | None) -> float | None:
    if cur is None or prev in (None, 0):
        return None
    return (cur - prev) / prev


def area(status: str, reason: str, **figures) -> dict[str, Any]:
    return {"status": status, "reason": reason, **figures}


def weekly_summary(ws: Workspace, week: str | None = None, providers: Providers | None = None,
                   now: datetime | None = None, exact: bool = True) -> dict[str, Any]:
    """`exact` False: percentiles of a week over `exact_quantile_max_rows` successful requests
    come from the log-histogram (within ±0.5%, named in the latency area's `method`), as on
    the Latency page; True (the CLI's default): exact, through the second pass."""
    providers = providers or Providers()
    limit = float("inf") if exact else ws.config.exact_quantile_max_rows
    if not ws.source.has_time:
        raise ValueError(ws.source.missing("timestamp") + " A weekly summary needs a time for each row.")
    week = week or default_week(ws, now)
    start, end = week_bounds(week)
    f = Filters(start=start, end=end)
    slo = ws.config.slo
    s = metrics.summarize(ws.source, ws.con, f, "hour", with_previous=True, exact_max_rows=limit)
    w, p = s.window, s.previous
    out: dict[str, Any] = {"week": week, "start": start, "end": end, "logs": ws.config.logs,
                           "slo": {"p95_latency_ms": slo.p95_latency_ms, "error_rate": slo.error_rate}}
    areas: dict[str, dict] = {}

    # Traffic and availability.
    counts = anomalies.minute_counts(ws.source, ws.con, f)
    gaps = anomalies.find_gaps(counts, f, slo) if w.requests else []
    downtime = sum(g.minutes for g in gaps)
    # A week the logs only partly cover is no fair comparison.
    first, last = ws.extent.first, ws.extent.last
    prev_partial = first is not None and first > start - timedelta(days=7)
    this_partial = (first is not None and first > start) or (last is not None and last < end - timedelta(hours=1))
    out["partial"] = bool(this_partial)
    if prev_partial:
        p = None
    tchange = _change(w.requests, p.requests if p else None)
    if w.requests == 0:
        areas["traffic"] = area("grey", "No traffic this week: nothing to report.", requests=0,
                                 previous_requests=p.requests if p else None, change=None, requests_per_minute=0.0)
    else:
        trend = "" if tchange is None else f", {'up' if tchange >= 0 else 'down'} {abs(tchange):.0%} on last week"
        if prev_partial:
            trend = ", no full week before it to compare with"
        if this_partial:
            trend += f" (the logs cover this week only from {max(first, start):%a %d %b %H:%M} " \
                     f"to {min(last, end):%a %d %b %H:%M} UTC)"
        _, spikes = anomalies.find_spikes(counts, f, "hour", slo)
        level, spike_txt = "green", ""
        if spikes:
            top = max(spikes, key=lambda x: x.ratio)
            level = "amber"
            spike_txt = (f" Traffic spiked in {len(spikes)} hour(s), most on {WEEKDAYS[top.time.weekday()]} "
                         f"{top.time:%H:%M} UTC: {top.requests:,} requests, {top.ratio:.1f}× the expected "
                         f"{top.expected:,.0f}.")
        areas["traffic"] = area(level, f"{w.requests:,} requests ({w.requests_per_minute:,.1f} a minute){trend}."
                                 + spike_txt,
                                 requests=w.requests, previous_requests=p.requests if p else None, change=tchange,
                                 requests_per_minute=w.requests_per_minute,
                                 spikes=[{"time": x.time, "requests": x.requests, "expected": x.expected,
                                          "ratio": x.ratio} for x in spikes])
    if w.requests and not ws.source.has("status"):
        areas["availability"] = area("grey", ws.source.missing("status"), availability=None,
                                      previous_availability=None, downtime_minutes=downtime,
                                      gaps=[{"start": g.start, "end": g.end, "minutes": g.minutes} for g in gaps])
    elif w.requests:
        availability = 1 - (w.error_rate or 0)
        prev_av = 1 - p.error_rate if p and p.error_rate is not None else None
        level = "red" if availability < 1 - slo.error_rate or downtime >= 60 else "amber" if downtime else "green"
        reason = f"{availability:.2%} of requests succeeded"
        if gaps:
            g = max(gaps, key=lambda x: x.minutes)
            reason += (f"; {downtime} minutes without traffic (longest {g.minutes} min from "
                       f"{WEEKDAYS[g.start.weekday()]} {g.start:%H:%M} UTC)")
        areas["availability"] = area(level, reason + ".", availability=availability,
                                      previous_availability=prev_av, downtime_minutes=downtime,
                                      gaps=[{"start": g.start, "end": g.end, "minutes": g.minutes} for g in gaps])
    else:
        areas["availability"] = area("grey", "No traffic this week: availability not measured.",
                                      availability=None, previous_availability=None, downtime_minutes=0, gaps=[])

    # Latency and errors against the objectives.
    statuses = {x.area: x for x in kpi_status(w, slo, s.buckets)}
    lat = statuses["latency"]
    lat_reason = lat.sentence
    if w.p95 is not None and lat.level != "green":
        lat_reason = _latency_story(ws, f, s.buckets, slo.p95_latency_ms, w.p95, limit) or lat_reason
    no_latency = ws.source.missing("latency_ms")
    areas["latency"] = area(
        "grey" if w.p95 is None else lat.level,
        lat_reason if w.p95 is not None else no_latency or "No successful requests.",
        p50=w.p50, p95=w.p95, p99=w.p99, previous_p95=p.p95 if p else None,
        p95_change=_change(w.p95, p.p95 if p else None), slo_ms=slo.p95_latency_ms, method=w.method)
    err = statuses["errors"]
    err_reason = err.sentence
    if w.error_rate is not None and err.level != "green":
        err_reason = _error_story(ws, f, s.buckets, slo) or err_reason
    areas["errors"] = area(
        "grey" if w.error_rate is None else err.level,
        err_reason if w.error_rate is not None else ws.source.missing("status") or "No requests.",
        error_rate=w.error_rate, errors=w.errors, previous_error_rate=p.error_rate if p else None,
        error_rate_change=None if w.error_rate is None or not p or p.error_rate is None
        else w.error_rate - p.error_rate, objective=slo.error_rate)

    # Drift and labelled accuracy come from their own engines when they can be computed.
    drift = providers.drift(ws, start, end) if providers.drift and w.requests else None
    areas["drift"] = drift or area("grey", "Drift not computed for this week (no traffic or no reference).",
                                    drifted=[], features_checked=0)
    acc = providers.accuracy(ws, start, end) if providers.accuracy else None
    areas["accuracy"] = acc or area("grey", "No predictions were labelled this week.",
                                     accuracy=None, accuracy_ci=None, labelled=0)
    out["areas"] = areas
    worst = max((a["status"] for a in areas.values()), key=lambda x: LEVELS[x])
    out["status"] = worst
    out["headline"] = _headline(areas, worst)
    # The canary verdict (monitoring.compare) of the versions serving this week, if two did.
    out["rollback"] = providers.rollback(ws, start, end) if providers.rollback else None
    if out["rollback"] and out["rollback"]["rollback"]:
        out["status"] = "red"
        out["headline"] += " " + out["rollback"]["reason"]

    out["versions"] = _versions(ws, start, end)
    alerts = providers.alerts(ws, start, end) if providers.alerts else None
    out["alerts"] = alerts or []
    out["daily"] = _daily(s.buckets)
    out["quality"] = providers.quality(ws, start, end) if providers.quality and w.requests else None
    if (out["quality"] or {}).get("task") == "regression" and areas["accuracy"].get("accuracy") is None:
        areas["accuracy"]["reason"] = ("Accuracy does not apply to a regression model: its errors "
                                       "(MAE, RMSE, ...) are under Model quality.")
    return out


def _headline(areas: dict[str, dict], worst: str) -> str:
    if all(a["status"] == "grey" for a in areas.values()):
        return "Nothing to judge: no traffic was logged this week."
    if worst in ("green", "grey"):
        return "Healthy: every measured area met its objective this week."
    bad = [name for name, a in areas.items() if a["status"] == worst]
    word = "Needs action" if worst == "red" else "Watch"
    return f"{word}: {', '.join(bad)}. " + " ".join(areas[b]["reason"] for b in bad)


def _latency_story(ws: Workspace, f: Filters, buckets: pl.DataFrame, slo_ms: float,
                   week_p95: float | None = None, limit: float = float("inf")) -> str | None:
    """'Hourly P95 above the 2 s SLO on v3 since Tuesday 09:00 UTC: worst hour 4.60 s; week 2.36 s.'
    Each figure names its statistic: the worst hour is not the week."""
    big = buckets.filter((pl.col("requests") >= MIN_BUCKET_REQUESTS) & (pl.col("p95") > slo_ms))
    if big.height == 0:
        return None
    first = big["time"][0]
    worst = big["p95"].max()
    by_version = metrics.by_dimension(ws.source, ws.con, f, "model_version", exact_max_rows=limit)
    culprit = by_version.filter(pl.col("p95") > slo_ms).sort("p95", descending=True)
    where = f" on {culprit['key'][0]}" if culprit.height and by_version.height > 1 else ""
    week = f"; week {_ms(week_p95)}" if week_p95 is not None else ""
    return (f"Hourly P95 above the {_ms(slo_ms)} SLO{where} since {WEEKDAYS[first.weekday()]} "
            f"{first:%H:%M} UTC, in {big.height} hours: worst hour {_ms(worst)}{week}.")


def _error_story(ws: Workspace, f: Filters, buckets: pl.DataFrame, slo) -> str | None:
    bad = error_breaches(buckets, slo)
    if bad.height == 0:
        return None
    worst = bad.sort("error_rate", descending=True).row(0, named=True)
    types = metrics.error_types(ws.source, ws.con, Filters(start=worst["time"], end=worst["time"] + timedelta(hours=1),
                                                           model_versions=f.model_versions, endpoints=f.endpoints), "hour")
    top = types.group_by("error_type").agg(pl.col("errors").sum()).sort("errors", descending=True)
    kind = f", mostly {top['error_type'][0]}" if top.height else ""
    return (f"Errors peaked at {worst['error_rate']:.1%} on {WEEKDAYS[worst['time'].weekday()]} "
            f"{worst['time']:%H:%M} UTC{kind}; above the {slo.error_rate:.0%} objective in {bad.height} hour(s).")


def _versions(ws: Workspace, start: datetime, end: datetime) -> dict[str, list[dict]]:
    """Versions first seen this week (deployed) and last seen this week (retired), from the
    workspace's cached version spans (no scan)."""
    ext = ws.extent
    # Deployed: first request inside the week, after the logs began (else it was already there).
    deployed = [{"version": v, "first_seen": a} for v, a, _ in ext.version_spans
                if start <= a < end and a > ext.first]
    # Retired: last request inside the week while the logs go on for a day or more after it.
    retired = [{"version": v, "last_seen": b} for v, _, b in ext.version_spans
               if start <= b < end and ext.last - b > timedelta(days=1)]
    return {"deployed": sorted(deployed, key=lambda x: x["first_seen"]),
            "retired": sorted(retired, key=lambda x: x["last_seen"])}


def _daily(buckets: pl.DataFrame) -> list[dict]:
    if buckets.height == 0:
        return []
    day = buckets.with_columns(pl.col("time").dt.truncate("1d").alias("day"))
    agg = day.group_by("day").agg(pl.col("requests").sum(), pl.col("errors").sum(),
                                  pl.col("p95").max().alias("worst_hour_p95")).sort("day")
    return [{"day": r["day"], "requests": r["requests"], "errors": r["errors"],
             "error_rate": r["errors"] / r["requests"] if r["requests"] else None,
             "worst_hour_p95": r["worst_hour_p95"]} for r in agg.iter_rows(named=True)]

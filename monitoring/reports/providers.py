"""What the weekly summary takes from elsewhere (reports.summary.Providers): the alert history,
the reviewers' and late labels' accuracy, drift, the canary verdict and model quality of a
week, computed by the same functions as the pages and the CLI.

    s = weekly_summary(ws, "2026-W47", standard_providers(config.database_url))
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import polars as pl

from ..logs.workspace import Workspace
from ..query.filters import Filters
from .summary import Providers, area


def alerts_in_week(evaluate_fn: Callable[[Workspace], list]) -> Callable[[Workspace, datetime, datetime], list[dict]]:
    """Provider: alert episodes that fired or were still firing during the week. The history is
    evaluated once per logs and labels (quality.marks), not once per week summarised."""
    from ..quality.marks import labels_mark

    last: dict[tuple[str, str], list] = {}

    def provider(ws: Workspace, start: datetime, end: datetime) -> list[dict]:
        key = (ws.fingerprint, labels_mark(ws.config))
        if key not in last:
            last.clear()
            last[key] = evaluate_fn(ws)
        return episodes_in_week(last[key], start, end)
    return provider


def episodes_in_week(episodes: list, start: datetime, end: datetime) -> list[dict]:
    """The episodes (alerts.Episode) that fired or were still firing during [start, end)."""
    return [e.as_dict() for e in episodes if e.start < end and (e.end is None or e.end > start)]


def accuracy_in_week(database_url: str | None) -> Callable[[Workspace, datetime, datetime], dict | None]:
    """Provider: reviewed accuracy of the queues answered during the week (Wilson 95%), and
    the accuracy from late labels of the requests served that week."""
    def provider(ws: Workspace, start: datetime, end: datetime) -> dict | None:
        from ..quality import fromstore, ground_truth

        reviewed = verdicts = unavailable = None
        if database_url:
            from ..database import FAILURES, describe
            from ..labelling.db import open_db
            from ..labelling.results import window_accuracy

            try:
                engine = open_db(database_url)
                try:
                    reviewed = window_accuracy(engine, start, end, by="answered")
                    verdicts = ground_truth.reviewed_from(engine)
                finally:
                    engine.dispose()
            except FAILURES as exc:
                # Not "nothing was labelled": the reviewers' answers could not be read.
                unavailable = describe(exc, database_url)
        late = fromstore.window_accuracy(ws, start, end, verdicts)   # whole days from the rollups
        floor = ws.config.slo.accuracy_floor
        src, fig = None, None
        if reviewed and reviewed.get("accuracy") is not None:
            src, fig = "reviewers", reviewed
        elif late and late.get("accuracy") is not None:
            src, fig = "late labels", late
        if fig is None:
            if unavailable:
                return area("grey", f"Labelled accuracy unavailable: the labelling database cannot be "
                                     f"read ({unavailable}).", accuracy=None, accuracy_ci=None, labelled=None,
                             available=False, unavailable_reason=unavailable)
            return None
        acc, (lo, hi) = fig["accuracy"], fig["accuracy_ci"]
        n = fig.get("n", fig.get("labelled"))
        level = "red" if hi < floor else "amber" if acc < floor else "green"
        who = ("Reviewers judged" if src == "reviewers" else "Late labels show")
        reason = (f"{who} {acc:.1%} of {n:,} predictions correct (95% interval {lo:.1%}–{hi:.1%}); "
                  f"floor {floor:.0%}.")
        if unavailable:
            reason += " Reviewers' answers are unavailable: the labelling database cannot be read."
        return area(level, reason, accuracy=acc, accuracy_ci=[lo, hi], labelled=n, source=src,
                     reviewed=reviewed, late_labels=late, floor=floor, available=unavailable is None,
                     unavailable_reason=unavailable)
    return provider


def drift_in_week(ws: Workspace, start: datetime, end: datetime) -> dict | None:
    """Provider: which inputs and outputs drifted this week against the configured reference
    (the same `analyze` as the Drift page and `python -m monitoring drift`)."""
    from ..drift import analyze, analyze_over_time, load_settings, resolve_reference

    settings = load_settings(ws.config.section("drift"))
    try:
        ref = resolve_reference(ws.config, settings, ws.extent)
    except ValueError:
        return None
    if ref.kind == "window" and ref.start < end and ref.end > start:
        return area("grey", f"This week overlaps the drift reference ({ref.describe()}): "
                             "it is what the rest is compared with.",
                     drifted=[], features_checked=0, reference=ref.describe(), columns=[])
    result = analyze(ws, ref, Filters(start=start, end=end), settings)
    if result.message:
        return area("grey", result.message, drifted=[], features_checked=0, reference=ref.describe(), columns=[])
    checked = [f for f in result.all if f.score is not None]
    drifted = [f for f in checked if f.drifted]
    # A shift that lasts two days can hide in a week's numbers: look at each day too.
    ot = analyze_over_time(ws, ref, Filters(start=start, end=end), result, settings, chunk="day")
    daily = ot.scores.filter(pl.col("drifted")).join(ot.chunks.select("k", "start"), on="k")
    week_names = {f.name for f in drifted}
    some_days = {}
    for name in daily["name"].unique(maintain_order=True).to_list():
        if name not in week_names:
            days = daily.filter(pl.col("name") == name).sort("start")["start"].to_list()
            some_days[name] = [d.strftime("%a %d") for d in days]
    roles = {f.name: f.role for f in checked}
    is_output = {n for n, r in roles.items() if r in ("prediction", "score")}
    outputs = [f.name for f in drifted if f.name in is_output] + [n for n in some_days if n in is_output]
    inputs = [f.name for f in drifted if f.name not in is_output]
    level = "red" if outputs else "amber" if inputs or some_days else "green"
    if not drifted and not some_days:
        reason = f"No input or output drifted from the reference ({len(checked)} checked)."
    else:
        parts = []
        if inputs:
            parts.append(f"input{'s' if len(inputs) > 1 else ''} {', '.join(inputs)} drifted over the week")
        for name, days in some_days.items():
            what = "the model's " + ("predictions" if name == "prediction" else name) if name in is_output else name
            parts.append(f"{what} shifted on {', '.join(days)}")
        for name in (f.name for f in drifted if f.name in is_output):
            parts.append(f"the model's {'predictions' if name == 'prediction' else name} shifted over the week")
        text = "; ".join(parts)
        reason = text[0].upper() + text[1:] + f". Reference: {ref.describe()}."
    return area(level, reason, drifted=[f.name for f in drifted], drifted_some_days=some_days,
                 features_checked=len(checked), reference=ref.describe(),
                 columns=[{"name": f.name, "role": f.role, "method": f.method, "score": f.score,
                           "threshold": f.threshold, "drifted": f.drifted} for f in checked])


def standard_providers(database_url: str | None = None) -> Providers:
    """The providers every caller (page, CLI) uses, so their figures agree."""
    from ..alerts import evaluate_kept
    from ..compare.report import rollback_in_week
    from ..quality.summary import quality_in_week

    return Providers(alerts=alerts_in_week(evaluate_kept), accuracy=accuracy_in_week(database_url),
                     drift=drift_in_week, rollback=rollback_in_week, quality=quality_in_week(database_url))

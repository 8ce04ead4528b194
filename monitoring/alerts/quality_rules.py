"""Retrain triggers: alert rules on model quality, realized from labels or estimated before them.

Floors and ceilings come from monitoring.toml (the estimated accuracy defaults to
[slo] accuracy_floor, so the trigger works with no setting before any label arrives):

    [quality.floors]
    accuracy = 0.85
    roc_auc = 0.75
    [quality.ceilings]
    mae = 400.0

A chunk (day by default) fires when the metric is surely past its limit: the whole 95%
interval (realized) or band (estimated) lies below the floor or above the ceiling. Chunks
with too few labels or rows are not judged and keep the last state, like the drift rule.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from .rules import Signal, rule


def _limits(ctx, slo, estimated: bool) -> dict[str, tuple[str, float]]:
    s = ctx.extra["quality_settings"]
    out = {m: ("floor", v) for m, v in s.floors.items()}
    out |= {m: ("ceiling", v) for m, v in s.ceilings.items()}
    if estimated and "accuracy" not in out:
        out["accuracy"] = ("floor", slo.accuracy_floor)
    return out


def _signals(ctx, slo, key: str, estimated: bool) -> list[Signal]:
    chunks = ctx.extra["quality"]["chunks"]
    t = np.array([x.timestamp() for x in ctx.times])
    out = []
    for metric, (kind, limit) in _limits(ctx, slo, estimated).items():
        firing = np.zeros(len(t), dtype=bool)
        value = np.full(len(t), np.nan)
        state, seen = False, False
        for i, c in enumerate(chunks):
            if c["start"] is None:
                continue
            e = c[key].get(metric) or {}
            end = float("inf") if i == len(chunks) - 1 else c["end"].timestamp()
            inside = (t > c["start"].timestamp()) & (t <= end)
            ci = e.get("band" if estimated else "ci")
            if e.get("value") is not None and ci and ci[0] is not None:
                seen = True
                value[inside] = e["value"]
                state = ci[1] < limit if kind == "floor" else ci[0] > limit
            if state:
                firing |= inside
        if not seen:
            continue
        word = "estimated " if estimated else ""
        side = "below the {threshold:.3g} floor" if kind == "floor" else "above the {threshold:.3g} ceiling"
        source = "before labels (calibrated scores)" if estimated else "from the late labels"
        out.append(Signal(metric, firing, value, f"{word}{metric} " + "{value:.3f} " + f"{source} is surely {side}",
                          limit, ""))
    return out


@rule("quality_floor", area="quality", title="Model quality below its floor (retrain)", page="Quality",
      defaults={"chunk": "day"},
      help={"chunk": "quality is judged per day, week or month of served requests ([quality.floors], [quality.ceilings])"},
      needs=("quality",), worst="min")
def quality_floor(ctx, p: dict, slo) -> list[Signal]:
    return _signals(ctx, slo, "metrics", estimated=False)


@rule("estimated_quality_floor", area="quality", title="Estimated quality below its floor (retrain, before labels)",
      page="Quality", defaults={"chunk": "day"},
      help={"chunk": "the estimate is judged per day, week or month (accuracy defaults to [slo] accuracy_floor)"},
      needs=("quality",), worst="min")
def estimated_quality_floor(ctx, p: dict, slo) -> list[Signal]:
    return _signals(ctx, slo, "estimated", estimated=True)


def add_quality(ws, ctx, at: datetime | None, params: dict) -> None:
    """The quality report over the history (labels known by `at`), for the rules above."""
    from ..config import ConfigError
    from ..quality import ground_truth as gt
    from ..quality import load, quality_report

    chunk = params.get("quality_floor", {}).get("chunk") or params.get("estimated_quality_floor", {}).get("chunk")
    try:
        settings = load(ws.config)
        report = quality_report(ws, end=at, as_of=at, chunk=chunk or "day",
                                reviewed=gt.reviewed_labels(ws.config.database_url))
    except (gt.LabelsError, ConfigError, ValueError):
        return   # the Quality page says why; alerts judge what they can
    if report.get("chunks"):
        ctx.extra["quality"] = report
        ctx.extra["quality_settings"] = settings

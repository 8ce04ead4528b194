"""The week's model quality for the weekly summary and its exports: the same report as the
Quality page and `python -m monitoring quality`, with the ISO week as its one chunk.

    s["quality"] = {"task", "labelled", "coverage", "metrics": {...}, "estimated": {...},
                    "gap": {...}, "worst_segment": {...} | None, "what_is_estimated", "warnings",
                    "origin": "rollups" | "raw", "origin_note"}
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..config import ConfigError
from ..fmt import MISSING
from ..logs.workspace import Workspace

SHOWN = {"accuracy": "Accuracy", "roc_auc": "ROC AUC", "f1_macro": "F1 (macro)", "ece": "Calibration error (ECE)",
         "mae": "MAE", "rmse": "RMSE", "mape": "MAPE", "bias": "Bias (mean error)", "r2": "R²"}


def quality_in_week(database_url: str | None) -> Callable[[Workspace, datetime, datetime], dict | None]:
    def provider(ws: Workspace, start: datetime, end: datetime) -> dict | None:
        from . import ground_truth as gt
        from .report import quality_report

        reviewed = gt.reviewed_labels(database_url)
        try:
            r = quality_report(ws, start=start, end=end, chunk="week", reviewed=reviewed)
        except (gt.LabelsError, ConfigError, ValueError) as exc:
            return {"task": None, "unavailable": str(exc), "labelled": 0, "coverage": 0.0, "metrics": {},
                    "estimated": {}, "gap": {}, "worst_segment": None, "warnings": []}
        if not r.get("overall"):
            return None
        week = next((c for c in r["chunks"] if c["start"] == start), None)
        metrics = {k: v for k, v in r["overall"].items() if k in SHOWN}
        worst = next((x for x in r["segments"] if len(r["segments"]) > 1), None)
        return {"task": r["task"], "labelled": r["labelled"], "coverage": r["coverage"], "metrics": metrics,
                "estimated": week["estimated"] if week else {}, "gap": week["gap"] if week else {},
                "worst_segment": worst and {"column": worst["column"], "value": worst["value"],
                                            "metrics": {k: v for k, v in worst["metrics"].items() if k in SHOWN}},
                "what_is_estimated": r["estimation"]["what"], "warnings": r["warnings"],
                "origin": r.get("origin", "raw"), "origin_note": r.get("origin_note", "")}
    return provider


def _fmt(e: dict | None) -> str:
    if not e:
        return MISSING
    if e.get("value") is None:
        return e.get("note", MISSING)
    ci = e.get("ci") or e.get("band")
    text = f"{e['value']:.3f}"
    return text + (f" (95%: {ci[0]:.3f} – {ci[1]:.3f})" if ci and ci[0] is not None else "")


def figure_rows(q: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(area, figure, value) rows for the exports' figures table."""
    if q.get("unavailable"):
        return [("quality", "Quality", f"unavailable: {q['unavailable']}")]
    rows = [("quality", "Labelled predictions", f"{q['labelled']:,} ({q['coverage']:.1%} of served)")]
    rows += [("quality", SHOWN[k], _fmt(v)) for k, v in q["metrics"].items()]
    for k, v in q["estimated"].items():
        rows.append(("quality", f"Estimated {SHOWN.get(k, k)} (before labels)", _fmt(v)))
    if q.get("worst_segment"):
        w = q["worst_segment"]
        key = "mae" if q["task"] == "regression" else "accuracy"
        rows.append(("quality", f"Worst {w['column']}", f"{w['value']}: {_fmt(w['metrics'].get(key))}"))
    if q.get("origin_note"):
        rows.append(("quality", "Answered from", q["origin_note"]))
    return rows

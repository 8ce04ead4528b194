"""Cached calls and tables for the Quality page.

Cache keys: the source fingerprint, the labels mark (ui.data.labels_mark: the labels file and
the reviewers' answers), the filters and the page's choices.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from monitoring.fmt import md, safe_frame
from monitoring.logs.workspace import Workspace
from monitoring.quality import fairness_report, quality_report
from monitoring.quality import ground_truth as gt
from monitoring.quality.data import segment_columns
from monitoring.query.filters import Filters

from .data import TTL, labels_mark

METRIC_TITLES = {"accuracy": "Accuracy", "precision_macro": "Precision (macro)", "recall_macro": "Recall (macro)",
                 "f1_macro": "F1 (macro)", "roc_auc": "ROC AUC", "ece": "Calibration error (ECE)",
                 "mae": "MAE", "rmse": "RMSE", "mape": "MAPE", "bias": "Bias (mean error)", "r2": "R²"}


@st.cache_data(ttl=TTL, show_spinner="Joining labels and scoring each chunk…")
def _report(_ws: Workspace, fingerprint: str, mark: str, f: Filters, chunk: str,
            by: str | None, sensitive: str | None) -> dict:
    reviewed = gt.reviewed_labels(_ws.config.database_url)
    return quality_report(_ws, filters=f, chunk=chunk, by=by, sensitive=sensitive, reviewed=reviewed,
                          defer_fairness=True)


def report(ws: Workspace, f: Filters, chunk: str, by: str | None, sensitive: str | None) -> dict:
    """The report; where the store answers all but the fairness, that is left to `fairness`
    (its `fairness` says "deferred"), so the page shows the rest without waiting for it."""
    return _report(ws, ws.fingerprint, labels_mark(ws), f, chunk, by, sensitive)


def fairness(ws: Workspace, f: Filters, chunk: str, by: str | None, sensitive: str) -> dict:
    return _fairness(ws, ws.fingerprint, labels_mark(ws), f, chunk, by, sensitive)


@st.cache_data(ttl=TTL, show_spinner="Fairness: counting outcomes per group in the raw logs…")
def _fairness(_ws: Workspace, fingerprint: str, mark: str, f: Filters, chunk: str,
              by: str | None, sensitive: str) -> dict:
    reviewed = gt.reviewed_labels(_ws.config.database_url)
    return fairness_report(_ws, filters=f, chunk=chunk, by=by, sensitive=sensitive, reviewed=reviewed)


def columns(ws: Workspace) -> list[str]:
    return segment_columns(ws)


def value(e: dict | None, digits: int = 3) -> str:
    if not e or e.get("value") is None:
        return "–"
    return f"{e['value']:.{digits}f}"


def interval(e: dict | None, digits: int = 3, *, short: bool = False) -> str:
    """The 95% interval and n of a metric; `short`: only the bounds (a metric's delta line
    in a quarter of a 1440 px page holds about 20 characters before it is cut)."""
    if not e:
        return ""
    if e.get("value") is None:
        return "" if short else e.get("note", "")
    ci = e.get("ci") or e.get("band")
    if not ci or ci[0] is None:
        return ""
    if short:
        return f"95%: {ci[0]:.{digits}f} – {ci[1]:.{digits}f}"
    return f"95% interval {ci[0]:.{digits}f} – {ci[1]:.{digits}f} · n = {e['n']:,}"


def segments_frame(segs: list[dict], metric: str) -> pl.DataFrame:
    rows = []
    for s in segs:
        e = s["metrics"].get(metric) or {}
        ci = e.get("ci") or [None, None]
        rows.append({"rank": s["rank"], s["column"]: str(s["value"]), "rows": s["rows"], "labelled": s["labelled"],
                     metric: e.get("value"), "low": ci[0], "high": ci[1], "note": e.get("note", "")})
    return safe_frame(pl.DataFrame(rows))


def per_class_frame(per: dict) -> pl.DataFrame:
    return safe_frame(pl.DataFrame(
        [{"class": str(c), "precision": v["precision"], "recall": v["recall"], "f1": v["f1"],
          "support": v["support"], "predicted": v["predicted"]} for c, v in per.items()],
        schema={"class": pl.String, "precision": pl.Float64, "recall": pl.Float64,
                "f1": pl.Float64, "support": pl.Int64, "predicted": pl.Int64}))


def groups_frame(groups: list[dict]) -> pl.DataFrame:
    return safe_frame(pl.DataFrame([{"group": str(g["value"]), "rows": g["rows"], "positive rate": g["positive_rate"]["value"],
                          "TPR": g["tpr"]["value"], "FPR": g["fpr"]["value"],
                          "labelled positives": g["labelled_positive"], "labelled negatives": g["labelled_negative"]}
                         for g in groups],
                        schema={"group": pl.String, "rows": pl.Int64, "positive rate": pl.Float64, "TPR": pl.Float64,
                                "FPR": pl.Float64, "labelled positives": pl.Int64, "labelled negatives": pl.Int64}))


def too_few(chunks: list[dict], metric: str) -> list[str]:
    return [c["start"].strftime("%Y-%m-%d") if c["start"] else str(c["key"]) for c in chunks
            if (c["metrics"].get(metric) or {}).get("value") is None]


def warn(text: str) -> None:
    st.warning(md(text))

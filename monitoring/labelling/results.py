"""What the answers say: resolved labels, accuracy with intervals, agreement, pace, trend.

    report = queue_report(engine, qid)      # dict for the page and `queue status --format json`
    truth = ground_truth(engine)            # request_id, label, labeled_at, correct, ... (Polars)
    register_ground_truth(con, engine)      # ... as the DuckDB view `review_labels`

Definitions (docs/labelling.md explains them for leads):

- An item's *standing answers* are its answer events that no undo superseded. Its resolved
  verdict is their majority; a tie is marked and left out of accuracy.
- *Accuracy* = correct / (correct + wrong) over the resolved items of the random part of
  the sample; unsure answers and ties are counted and shown, not guessed. Items drawn by a
  targeted quota (lowest scores, drifted segments) are reported apart. Stratified samples
  carry design weights; the interval is Wilson's at Kish's effective sample size (exactly
  Wilson's for a uniform sample).
- The *label* of a resolved item is the prediction when judged correct, else the majority of
  the correct labels given with "wrong" (null when none was given or they tie).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from datetime import datetime
from typing import Any

import duckdb
import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from . import stats
from .db import events, items, queues, reading
from .queues import _progress, _queue

RESOLVED_SCHEMA: dict[str, pl.DataType] = {
    "queue_id": pl.Int64, "item_id": pl.Int64, "position": pl.Int64, "request_id": pl.String,
    "ts": pl.Datetime("us", "UTC"), "model_name": pl.String, "model_version": pl.String,
    "endpoint": pl.String, "prediction": pl.String, "score": pl.Float64, "stratum": pl.String,
    "reason": pl.String, "weight": pl.Float64, "calibration": pl.Boolean, "votes": pl.Int64,
    "n_correct": pl.Int64, "n_wrong": pl.Int64, "n_unsure": pl.Int64, "verdict": pl.String,
    "tie": pl.Boolean, "correct": pl.Boolean, "label": pl.String, "label_tie": pl.Boolean,
    "flagged": pl.Boolean, "flag_reasons": pl.String, "comments": pl.String,
    "reviewers": pl.String, "labeled_at": pl.Datetime("us", "UTC"), "inputs": pl.String,
}
GROUND_TRUTH_COLUMNS = ("request_id", "label", "labeled_at", "correct", "verdict", "votes",
                        "queue_id", "model_name", "model_version", "prediction")
EVENT_COLUMNS = ("id", "queue_id", "item_id", "request_id", "reviewer", "action", "verdict",
                 "correct_label", "flagged", "flag_reason", "comment", "at", "seconds_spent",
                 "prediction_shown", "score_shown", "model_version", "calibration", "supersedes")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


# -- reading ---------------------------------------------------------------------------------

def events_frame(engine: Engine, queue_id: int | None = None) -> pl.DataFrame:
    """Every event (answers, skips, undos) in id order: the audit trail."""
    with reading(engine) as conn:
        if queue_id is not None:
            _queue(conn, queue_id)
        q = sa.select(*[events.c[c] for c in EVENT_COLUMNS]).order_by(events.c.id)
        if queue_id is not None:
            q = q.where(events.c.queue_id == queue_id)
        rows = conn.execute(q).mappings().all()
    schema = {"id": pl.Int64, "queue_id": pl.Int64, "item_id": pl.Int64, "request_id": pl.String,
              "reviewer": pl.String, "action": pl.String, "verdict": pl.String,
              "correct_label": pl.String, "flagged": pl.Boolean, "flag_reason": pl.String,
              "comment": pl.String, "at": pl.Datetime("us", "UTC"), "seconds_spent": pl.Float64,
              "prediction_shown": pl.String, "score_shown": pl.Float64, "model_version": pl.String,
              "calibration": pl.Boolean, "supersedes": pl.Int64}
    return pl.DataFrame([dict(r) for r in rows], schema=schema, orient="row")


def _standing(conn: Connection, queue_ids: list[int] | None) -> list[dict[str, Any]]:
    undo = events.alias("undo")
    q = (sa.select(events.c.item_id, events.c.reviewer, events.c.verdict, events.c.correct_label,
                   events.c.flagged, events.c.flag_reason, events.c.comment, events.c.at,
                   events.c.seconds_spent)
         .where(events.c.action == "answer", ~sa.exists().where(undo.c.supersedes == events.c.id))
         .order_by(events.c.id))
    if queue_ids is not None:
        q = q.where(events.c.queue_id.in_(queue_ids))
    return [dict(r) for r in conn.execute(q).mappings().all()]


def _items(conn: Connection, queue_ids: list[int] | None, item_ids: set[int] | None = None) -> list[dict]:
    q = sa.select(items).order_by(items.c.queue_id, items.c.position)
    if queue_ids is not None:
        q = q.where(items.c.queue_id.in_(queue_ids))
    rows = [dict(r) for r in conn.execute(q).mappings().all()]
    return rows if item_ids is None else [r for r in rows if r["id"] in item_ids]


def resolved_frame(engine: Engine, queue_id: int | None = None) -> pl.DataFrame:
    """One row per item with at least one standing answer (RESOLVED_SCHEMA columns)."""
    with reading(engine) as conn:
        if queue_id is not None:
            _queue(conn, queue_id)
        return _resolved(conn, None if queue_id is None else [queue_id])


def _resolved(conn: Connection, queue_ids: list[int] | None) -> pl.DataFrame:
    answers = _standing(conn, queue_ids)
    by_item: dict[int, list[dict]] = defaultdict(list)
    for a in answers:
        by_item[a["item_id"]].append(a)
    rows = []
    for it in _items(conn, queue_ids, set(by_item)):
        rows.append(resolve_item(it, by_item[it["id"]]))
    return pl.DataFrame(rows, schema=RESOLVED_SCHEMA, orient="row")


def resolve_item(item: dict[str, Any], answers: list[dict[str, Any]]) -> dict[str, Any]:
    """An item and its standing answers -> one resolved row (see the module docstring)."""
    verdicts = [a["verdict"] for a in answers]
    verdict, tie = stats.majority(verdicts)
    label, label_tie = None, False
    if verdict == "correct":
        label = item["prediction"]
    elif verdict == "wrong":
        given = [a["correct_label"] for a in answers if a["verdict"] == "wrong" and a["correct_label"]]
        label, label_tie = stats.majority(given)
    inputs = item["inputs"]
    return {
        "queue_id": item["queue_id"], "item_id": item["id"], "position": item["position"],
        "request_id": item["request_id"], "ts": item["ts"], "model_name": item["model_name"],
        "model_version": item["model_version"], "endpoint": item["endpoint"],
        "prediction": item["prediction"], "score": item["score"], "stratum": item["stratum"],
        "reason": item["reason"], "weight": item["weight"], "calibration": bool(item["calibration"]),
        "votes": len(answers), "n_correct": verdicts.count("correct"),
        "n_wrong": verdicts.count("wrong"), "n_unsure": verdicts.count("unsure"),
        "verdict": verdict, "tie": tie,
        "correct": {"correct": True, "wrong": False}.get(verdict) if verdict else None,
        "label": label, "label_tie": label_tie,
        "flagged": any(a["flagged"] for a in answers),
        "flag_reasons": "; ".join(a["flag_reason"] for a in answers if a["flag_reason"]) or None,
        "comments": "; ".join(a["comment"] for a in answers if a["comment"]) or None,
        "reviewers": ", ".join(sorted({a["reviewer"] for a in answers})),
        "labeled_at": max(a["at"] for a in answers),
        "inputs": inputs if isinstance(inputs, str) else json.dumps(inputs, ensure_ascii=False),
    }


# -- accuracy --------------------------------------------------------------------------------

def _prop_row(p: stats.Proportion) -> dict[str, Any]:
    return {"n": p.n, "accuracy": _num(p.value), "ci_low": _num(p.low), "ci_high": _num(p.high),
            "effective_n": _num(p.n_eff)}


def accuracy(resolved: pl.DataFrame) -> stats.Proportion:
    """Accuracy over the random part's decisive items, design-weighted, with its interval."""
    d = resolved.filter((pl.col("reason") == "random") & pl.col("correct").is_not_null())
    return stats.proportion(d["correct"].to_list(), d["weight"].to_list())


def accuracy_by(resolved: pl.DataFrame, column: str) -> pl.DataFrame:
    """Accuracy per value of `column` (model_version, prediction, ...) over the random part."""
    d = resolved.filter((pl.col("reason") == "random") & pl.col("correct").is_not_null())
    rows = []
    for key in sorted(set(d[column].to_list()), key=lambda v: (v is None, str(v))):
        g = d.filter(pl.col(column).is_null() if key is None else pl.col(column) == key)
        p = stats.proportion(g["correct"].to_list(), g["weight"].to_list())
        rows.append({column: key, "correct": int(g["correct"].sum()), **_prop_row(p)})
    return _table(rows, column)


def targeted(resolved: pl.DataFrame) -> pl.DataFrame:
    """Accuracy on targeted items per quota (not part of the estimates above)."""
    d = resolved.filter((pl.col("reason") != "random") & pl.col("correct").is_not_null())
    rows = []
    for reason in sorted(set(d["reason"].to_list())):
        g = d.filter(pl.col("reason") == reason)
        p = stats.proportion(g["correct"].to_list())
        rows.append({"reason": reason, "correct": int(g["correct"].sum()), **_prop_row(p)})
    return _table(rows, "reason")


def class_scores(resolved: pl.DataFrame) -> pl.DataFrame:
    """Precision, recall, F1 per class over random-part items whose true label is known."""
    d = resolved.filter((pl.col("reason") == "random") & pl.col("label").is_not_null())
    scores = stats.precision_recall_f1(d["label"].to_list(), d["prediction"].to_list(),
                                       d["weight"].to_list())
    return pl.DataFrame(
        [{"class": s.label, "precision": _num(s.precision), "recall": _num(s.recall),
          "f1": _num(s.f1), "support": int(d.filter(pl.col("label") == s.label).height),
          "predicted": int(d.filter(pl.col("prediction") == s.label).height)} for s in scores],
        schema={"class": pl.String, "precision": pl.Float64, "recall": pl.Float64, "f1": pl.Float64,
                "support": pl.Int64, "predicted": pl.Int64}, orient="row")


def _table(rows: list[dict], key: str) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={key: pl.String, "correct": pl.Int64, "n": pl.Int64,
                                      "accuracy": pl.Float64, "ci_low": pl.Float64,
                                      "ci_high": pl.Float64, "effective_n": pl.Float64},
                        orient="row")


# -- agreement -------------------------------------------------------------------------------

def agreement(engine: Engine, queue_id: int) -> dict[str, Any] | None:
    """Agreement on the calibration items answered by two or more reviewers, or None.

    Cohen's kappa when exactly two reviewers took part, Krippendorff's alpha (nominal,
    missing answers allowed) otherwise; always with the items used and raw agreement.
    """
    with reading(engine) as conn:
        _queue(conn, queue_id)
        cal = {r[0] for r in conn.execute(sa.select(items.c.id).where(
            items.c.queue_id == queue_id, items.c.calibration.is_(True))).all()}
        answers = [a for a in _standing(conn, [queue_id]) if a["item_id"] in cal]
    return agreement_of(answers)


def agreement_of(answers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Agreement from standing answers (item_id, reviewer, verdict); see agreement()."""
    units: dict[int, dict[str, str]] = defaultdict(dict)
    for a in answers:
        units[a["item_id"]][a["reviewer"]] = a["verdict"]
    units = {k: v for k, v in units.items() if len(v) >= 2}
    if not units:
        return None
    raters = sorted({r for u in units.values() for r in u})
    values = [list(u.values()) for u in units.values()]
    raw, n_items = stats.percent_agreement(values)
    if len(raters) == 2:
        a_, b_ = raters
        pairs = [(u[a_], u[b_]) for u in units.values()]
        value = stats.cohen_kappa([p[0] for p in pairs], [p[1] for p in pairs])
        method = "cohen_kappa"
    else:
        value = stats.krippendorff_alpha_nominal(values)
        method = "krippendorff_alpha"
    disagreements = sum(1 for v in values if len(set(v)) > 1)
    return {"method": method, "value": _num(value), "items": n_items,
            "percent_agreement": _num(raw), "disagreements": disagreements, "reviewers": raters}


# -- reviewers and trend ---------------------------------------------------------------------

def reviewer_stats(ev: pl.DataFrame) -> pl.DataFrame:
    """Per reviewer: standing answers, skips, undos, flags, median seconds, items per hour."""
    superseded = set(ev.filter(pl.col("action") == "undo")["supersedes"].to_list())
    ev = ev.with_columns(pl.col("id").is_in(list(superseded)).alias("superseded"))
    standing = ev.filter((pl.col("action") == "answer") & ~pl.col("superseded"))
    out = []
    for r in sorted(set(ev["reviewer"].to_list())):
        mine = standing.filter(pl.col("reviewer") == r)
        secs = mine["seconds_spent"].drop_nulls()
        busy = float(secs.sum()) if secs.len() else 0.0
        out.append({
            "reviewer": r, "answers": mine.height,
            "skips": ev.filter((pl.col("reviewer") == r) & (pl.col("action") == "skip")).height,
            "undos": ev.filter((pl.col("reviewer") == r) & (pl.col("action") == "undo")).height,
            "flags": int(mine["flagged"].sum()),
            "median_seconds": _num(float(secs.median())) if secs.len() else None,
            "items_per_hour": _num(3600.0 * mine.height / busy) if busy > 0 else None,
            "first_at": mine["at"].min() if mine.height else None,
            "last_at": mine["at"].max() if mine.height else None,
        })
    return pl.DataFrame(out, schema={
        "reviewer": pl.String, "answers": pl.Int64, "skips": pl.Int64, "undos": pl.Int64,
        "flags": pl.Int64, "median_seconds": pl.Float64, "items_per_hour": pl.Float64,
        "first_at": pl.Datetime("us", "UTC"), "last_at": pl.Datetime("us", "UTC")}, orient="row")


def trend(engine: Engine) -> pl.DataFrame:
    """Accuracy per queue over time, overall and per version: queue_id, name, at, group,
    n, accuracy, ci_low, ci_high. `at` is the end of the queue's window (else its creation)."""
    with reading(engine) as conn:
        qs = conn.execute(sa.select(queues.c.id, queues.c.name, queues.c.created_at,
                                    queues.c.window_end).order_by(queues.c.id)).mappings().all()
        resolved = _resolved(conn, None)
    rows = []
    for q in qs:
        r = resolved.filter(pl.col("queue_id") == q["id"])
        at = q["window_end"] or q["created_at"]
        p = accuracy(r)
        if p.n:
            rows.append({"queue_id": q["id"], "name": q["name"], "at": at, "group": "all", **_prop_row(p)})
        for v in accuracy_by(r, "model_version").iter_rows(named=True):
            rows.append({"queue_id": q["id"], "name": q["name"], "at": at, "group": v["model_version"],
                         "n": v["n"], "accuracy": v["accuracy"], "ci_low": v["ci_low"],
                         "ci_high": v["ci_high"], "effective_n": v["effective_n"]})
    return pl.DataFrame(rows, schema={
        "queue_id": pl.Int64, "name": pl.String, "at": pl.Datetime("us", "UTC"), "group": pl.String,
        "n": pl.Int64, "accuracy": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
        "effective_n": pl.Float64}, orient="row")


# -- the report ------------------------------------------------------------------------------

def queue_report(engine: Engine, queue_id: int) -> dict[str, Any]:
    """Everything about one queue as plain JSON-ready values (see `queue status`)."""
    with reading(engine) as conn:
        q = _queue(conn, queue_id)
        p = _progress(conn, queue_id)
        resolved = _resolved(conn, [queue_id])
    ev = events_frame(engine, queue_id)
    acc = accuracy(resolved)
    random_part = resolved.filter(pl.col("reason") == "random")
    return {
        "id": q["id"], "name": q["name"], "status": q["status"], "created_at": q["created_at"],
        "created_by": q["created_by"], "logs": q["logs"],
        "window": {"start": q["window_start"], "end": q["window_end"]},
        "model_name": q["model_name"], "strategy": q["strategy"], "stratify_by": q["stratify_by"],
        "seed": q["seed"], "population": q["population"], "settings": q["settings"],
        "size": p.size, "labelled": p.done, "answers": p.answers, "left": p.left,
        "in_progress": p.in_progress, "skipped": p.skipped, "skips": p.skips, "flagged": p.flagged,
        "unsure": int(random_part.filter(pl.col("verdict") == "unsure").height),
        "ties": int(resolved["tie"].sum()),
        "accuracy": _num(acc.value), "accuracy_ci": [_num(acc.low), _num(acc.high)],
        "accuracy_n": acc.n, "effective_n": _num(acc.n_eff), "confidence": stats.CONFIDENCE,
        "by_version": accuracy_by(resolved, "model_version").to_dicts(),
        "by_class": accuracy_by(resolved, "prediction").to_dicts(),
        "class_scores": class_scores(resolved).to_dicts(),
        "targeted": targeted(resolved).to_dicts(),
        "agreement": agreement(engine, queue_id),
        "reviewers": reviewer_stats(ev).to_dicts(),
    }


def window_accuracy(engine: Engine, start: datetime, end: datetime,
                    model_name: str | None = None, by: str = "served") -> dict[str, Any]:
    """Reviewed accuracy of the requests served (by="served") or answered (by="answered")
    in [start, end), pooled over every queue.

    Returns {"accuracy", "accuracy_ci": [low, high], "labelled", "n", "queues"}; accuracy is
    None when no decisive answer falls in the window. Each queue's design weights are
    scaled to average 1 before pooling, so a queue weighs by its number of items.
    """
    with reading(engine) as conn:
        r = _resolved(conn, None)
    if by not in ("served", "answered"):
        raise ValueError(f"by must be 'served' or 'answered', got {by!r}")
    col = "ts" if by == "served" else "labeled_at"
    r = r.filter((pl.col(col) >= start) & (pl.col(col) < end))
    if model_name:
        r = r.filter(pl.col("model_name") == model_name)
    labelled = r.height
    d = r.filter((pl.col("reason") == "random") & pl.col("correct").is_not_null())
    d = d.with_columns((pl.col("weight") / pl.col("weight").mean().over("queue_id")).alias("w"))
    p = stats.proportion(d["correct"].to_list(), d["w"].to_list())
    return {"accuracy": _num(p.value), "accuracy_ci": [_num(p.low), _num(p.high)],
            "labelled": labelled, "n": p.n, "queues": sorted(set(d["queue_id"].to_list()))}


# -- ground truth for the other pages --------------------------------------------------------

def ground_truth(engine: Engine, queue_ids: list[int] | None = None) -> pl.DataFrame:
    """Reviewers' decisive verdicts as ground truth, one row per request_id.

    Columns: request_id, label (null when judged wrong without a correct label),
    labeled_at, correct, verdict, votes, queue_id, model_name, model_version, prediction.
    Ties and unsure items are left out; a request reviewed in several queues keeps its
    latest resolution. Same shape as MONITORING_LABELS (request_id, label, labeled_at).
    """
    with reading(engine) as conn:
        r = _resolved(conn, queue_ids)
    r = r.filter(pl.col("correct").is_not_null())
    r = r.sort(["labeled_at", "queue_id"]).unique("request_id", keep="last", maintain_order=True)
    return r.select(GROUND_TRUTH_COLUMNS).sort("request_id")


def register_ground_truth(con: duckdb.DuckDBPyConnection, engine: Engine,
                          name: str = "review_labels", queue_ids: list[int] | None = None) -> int:
    """Register ground_truth() in DuckDB as a view named `name`; returns its row count.

        register_ground_truth(ws.con, engine)
        ws.source.query(ws.con, "SELECT ... FROM logs JOIN review_labels USING (request_id)")
    """
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL name: {name!r}")
    df = ground_truth(engine, queue_ids)
    con.register(name, df.to_arrow())
    return df.height


def _num(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


"""Quality from the rollup store: the label counts and the AUC's score bins read from the
stored per-day tables instead of a scan of the raw logs (docs/rollups.md, "Quality from
the rollups").

    p = plan(ws, t, s, f, by, sensitive)            # NotCovered: the raw engine answers
    agg = aggregate(ws, t, p, f, ("week", None))     # data.Aggregates, origin "rollups"

What the store answers, and how well:
- exactly, from `outcomes` (prediction x label counts per UTC day and version): rows,
  labelled rows and coverage, the confusion matrix and every figure made from it
  (accuracy, macro and per-class precision, recall and F1, their intervals), per day,
  week or month chunk and per version;
- within a stated bound, from `scores` (score bins of 1/1000 by label): the ROC AUC of a
  score that is the positive class's probability. Pairs in different bins are ordered
  exactly; pairs sharing a bin count one half, as ties. The exact AUC counts each such pair
  0, 1/2 or 1, so |AUC from bins - exact AUC| <= (1/2) sum_b pos_b neg_b / (P N), which is
  reported with the value (`max_binning_error`, computed from the same bins);
- not at all: calibration (ECE) and the label-free estimate need prediction and score
  together, which no stored table keeps; one narrow raw pass over the window reads them
  (`data.aggregate(..., scores_only=True)`), and the same pass checks the store's one
  assumption (failed requests carry no prediction, which `outcomes` could not tell apart)
  and reads what a binary score means when [quality] score is auto.

The raw engine answers (NotCovered says why) for labels from a labels file or reviewers,
regression, windows off whole UTC days, endpoint filters, row chunks, segments other than
the version, fairness, per-class probability columns, a confidence score's AUC, and a
store that does not cover every file as it is now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from ..logs.source import INTEGER_TYPES, NUMERIC_TYPES
from ..logs.workspace import Workspace
from ..query.filters import Filters
from ..rollup.quality import outcome_counts, score_counts
from ..rollup.read import NotCovered, Store
from ..rollup.tables import DAY_US, SCORE_BINS
from . import data
from . import ground_truth as gt
from .settings import QualitySettings

ORIGIN = "rollups"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Plan:
    store: Store
    days: Filters                  # the whole UTC days of the window: read from the store
    pieces: tuple[Filters, ...]    # the rest of the window (its partial first and last days): raw
    spec: data.Spec
    outcomes: pl.DataFrame         # day, version, pred, truth, n


def value_sql(typ: str) -> Callable[[str], str]:
    """SQL turning a stored text value (CAST(x AS VARCHAR) of the raw column) into
    `ground_truth.canon` of the raw value: the same text for integers and booleans, canon
    of the text otherwise (a DOUBLE's text reads back as the same double). A 32-bit float's
    text is its shortest decimal, not the double the raw engine compares: NotCovered."""
    if typ in INTEGER_TYPES or typ == "BOOLEAN":
        return lambda col: col
    if typ in ("FLOAT", "REAL"):
        raise NotCovered("32-bit float predictions or labels are compared as doubles: the raw logs answer")
    return lambda col: gt.canon(col, "VARCHAR")


def _store(ws: Workspace, t: gt.Truth, by: str | None, sensitive: str | None) -> Store:
    store = getattr(ws.source, "rollups", None)
    if store is None:
        raise NotCovered("no rollup store covers these logs")
    if not store.complete:
        raise NotCovered("the rollups do not cover every log file as it is now")
    if t.labels is not None:
        raise NotCovered("labels from a labels file are not in the rollups")
    if t.reviewed is not None and t.reviewed.height:
        raise NotCovered("reviewers' answers are not in the rollups")
    if t.task != "classification":
        raise NotCovered("regression quality needs the raw logs (the rollups count class outcomes only)")
    if not ws.source.has("label"):
        raise NotCovered("the logs have no label column")
    ptype = ws.source.types.get("prediction", "")
    if ptype in gt.FLOAT_TYPES or ptype.startswith("DECIMAL") or not store.relation("outcomes")[0]:
        raise NotCovered("the rollups keep a float prediction as numbers, not as classes against labels")
    if not getattr(ws.source, "has_time", True):
        raise NotCovered("logs without timestamps have no UTC days")
    if by not in (None, "model_version"):
        raise NotCovered(f"segments by {by} need the raw logs (the rollups are per version)")
    if sensitive:
        raise NotCovered("fairness by a sensitive column needs the raw logs")
    if ws.source.has("score") and ws.source.types.get("score", "") not in NUMERIC_TYPES:
        raise NotCovered("a score that is not a number needs the raw logs")
    store.check(ws.source)
    return store


def _us(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(microseconds=1)


def _dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def split(ws: Workspace, f: Filters) -> tuple[Filters, tuple[Filters, ...]]:
    """(the whole UTC days inside `f`, the pieces of `f` before and after them). An edge is
    first moved out to its day boundary when that moves no row in or out (a window from the
    first request or to the last), so a window of whole days of logs has no pieces.
    NotCovered for a window without a whole UTC day, or one filtered by endpoint."""
    if f.endpoints:
        raise NotCovered("quality rollups are per version, not per endpoint")
    first, last = ws.extent.first, ws.extent.last
    if first is None or last is None:
        raise NotCovered("the logs have no valid timestamps")
    lo = _us(f.start) if f.start is not None else _us(first)
    hi = _us(f.end) if f.end is not None else _us(last) + 1
    if lo <= _us(first):
        lo -= lo % DAY_US
    if hi > _us(last):
        hi += -hi % DAY_US
    a, b = lo + -lo % DAY_US, hi - hi % DAY_US
    if a >= b:
        raise NotCovered("the window holds no whole UTC day")
    pieces = tuple(replace(f, start=_dt(x), end=_dt(y)) for x, y in ((lo, a), (b, hi)) if x < y)
    return replace(f, start=_dt(a), end=_dt(b)), pieces


def _checks(ws: Workspace, f: Filters, pred_type: str, by_pred: bool) -> pl.DataFrame:
    """One narrow pass over the window's `logs`: the rows the store would count where the
    raw engine does not, and with `by_pred`, per compared prediction, the served rows with a
    score and with a score >= 0.5 (spec_for's reading of an auto score; without it, one
    plain aggregate with no grouping)."""
    ok = "NOT coalesce(is_error, false)"
    has_score = ws.source.has("score")
    score = "score" if has_score else "CAST(NULL AS DOUBLE)"
    cond, params = f.where()
    pred = gt.canon("prediction", pred_type) if by_pred else "CAST(NULL AS VARCHAR)"
    sql = (f"SELECT {pred} AS pred, "
           f"count_if({ok} AND prediction IS NOT NULL AND {score} IS NOT NULL) AS scored, "
           f"count_if({ok} AND prediction IS NOT NULL AND {score} >= 0.5) AS high, "
           f"count_if(NOT {ok} AND prediction IS NOT NULL) AS failed_with_prediction, "
           f"count_if({score} IS NOT NULL AND label IS NOT NULL AND (NOT {ok} OR prediction IS NULL)) AS stray_scores, "
           f"count_if({score} IS NOT NULL AND NOT isfinite({score})) AS odd_scores "
           f"FROM logs WHERE {cond}" + (" GROUP BY 1" if by_pred else ""))
    return ws.source.query(ws.con, sql, params)


def plan(ws: Workspace, t: gt.Truth, s: QualitySettings, f: Filters, by: str | None,
         sensitive: str | None) -> Plan:
    """The store's answer to spec_for, or NotCovered (one sentence) for the raw engine."""
    store = _store(ws, t, by, sensitive)
    days, pieces = split(ws, f)
    types = ws.source.types
    value_p, value_l = value_sql(types.get("prediction", "")), value_sql(types.get("label", ""))
    value = {"prediction": value_p, "label": value_l}
    out = outcome_counts(store, ws.con, days, lambda c: value[c](c))
    for g in pieces:
        out = pl.concat([out, _raw_outcomes(ws, t, g)])
    pairs = out.group_by("pred", "truth").agg(pl.col("n").sum()).with_columns(
        pl.lit(0, pl.Int64).alias("scored"), pl.lit(0, pl.Int64).alias("high"))
    spec = data.spec_from_pairs(ws, s, pairs)
    # spec_for reads a binary model's auto score from the share of high scores by prediction
    detect = ws.source.has("score") and s.score == "auto" and spec.binary and spec.positive is not None
    checks = _checks(ws, f, types.get("prediction", ""), detect)
    failed = int(checks["failed_with_prediction"].sum() or 0)
    if failed:
        raise NotCovered(f"{failed:,} failed requests carry a prediction: the rollups cannot tell them from "
                         "served ones")
    if int(checks["stray_scores"].sum() or 0) or int(checks["odd_scores"].sum() or 0):
        raise NotCovered("some labelled scores are on failed or unpredicted rows, or not finite: "
                         "the rollups' score bins would count them")
    if not detect:
        return Plan(store, days, pieces, spec, out)
    extra = checks.filter((pl.col("scored") > 0) & pl.col("pred").is_not_null()).select(
        "pred", pl.lit(None, pl.String).alias("truth"), pl.lit(0, pl.Int64).alias("n"),
        pl.col("scored").cast(pl.Int64), pl.col("high").cast(pl.Int64))
    spec = data.spec_from_pairs(ws, s, pl.concat([pairs, extra]))
    return Plan(store, days, pieces, spec, out)


def _raw_outcomes(ws: Workspace, t: gt.Truth, g: Filters) -> pl.DataFrame:
    """outcome_counts' frame for a piece of the window, from the raw logs (pruned by time)."""
    cond, params = g.where()
    df = gt.query(ws, t, f"SELECT {data.ch.key_sql('day')} AS day, model_version AS version, pred, truth, "
                         f"count(*) AS n FROM truth_rows WHERE {cond} GROUP BY ALL", params)
    return df.select(pl.col("day").cast(pl.Int64), pl.col("version").cast(pl.String), pl.col("pred").cast(pl.String),
                     pl.col("truth").cast(pl.String), pl.col("n").cast(pl.Int64))


def chunk_of_day(days: np.ndarray, kind: str) -> np.ndarray:
    """`chunks.key_sql(kind)` of each UTC day number."""
    days = np.asarray(days, dtype=np.int64)
    if kind == "day":
        return days
    if kind == "week":
        return np.floor_divide(days + 3, 7)
    if kind == "month":
        return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) + 1970 * 12
    raise NotCovered(f"{kind} chunks need the raw logs (the rollups are per UTC day)")


def _with_keys(df: pl.DataFrame, kind: str) -> pl.DataFrame:
    return df.with_columns(pl.Series("chunk", chunk_of_day(df["day"].to_numpy(), kind), pl.Int64),
                           pl.col("version").fill_null("(none)").alias("seg"), pl.lit("(all)").alias("sens"))


def _raw_scores(ws: Workspace, t: gt.Truth, g: Filters) -> pl.DataFrame:
    """score_counts' frame for a piece of the window, from the raw logs, in the store's bins
    (`tables.score_bin`; the scores are finite, checked by `_checks`)."""
    cond, params = g.where()
    df = gt.query(ws, t, f"SELECT {data.ch.key_sql('day')} AS day, model_version AS version, truth, "
                         f"CAST(least(greatest(floor(score * {SCORE_BINS}), -1), {SCORE_BINS}) AS INTEGER) AS bin, "
                         f"count(*) AS n FROM truth_rows WHERE truth IS NOT NULL AND score IS NOT NULL AND {cond} "
                         "GROUP BY ALL", params)
    return df.select(pl.col("day").cast(pl.Int64), pl.col("version").cast(pl.String), pl.col("truth").cast(pl.String),
                     pl.col("bin").cast(pl.Int32), pl.col("n").cast(pl.Int64))


def _hist(ws: Workspace, t: gt.Truth, p: Plan, kind: str) -> pl.DataFrame | None:
    """hist rows (g, chunk, seg, version, cls, s, y, n) from the score bins, or None when
    the report has no AUC; NotCovered for an AUC the bins cannot give."""
    spec = p.spec
    p_pos = spec.p_pos_sql()
    if p_pos is None:
        if len(spec.classes) > 2 and spec.class_scores:
            raise NotCovered("one-vs-rest AUC from per-class probability columns needs the raw logs")
        return None
    if p_pos != "score":
        raise NotCovered("the AUC of a confidence score needs prediction and score together: the raw logs answer")
    value = value_sql(ws.source.types.get("label", ""))
    sc = score_counts(p.store, ws.con, p.days, lambda c: value(c))
    for g in p.pieces:
        sc = pl.concat([sc, _raw_scores(ws, t, g)])
    sc = _with_keys(sc, kind).with_columns(
        pl.col("bin").cast(pl.Float64).alias("s"), (pl.col("truth") == spec.positive).alias("y"))
    parts = []
    for g, keys in ((7, ()), (6, ("chunk",)), (5, ("seg",)), (3, ("version",))):
        h = sc.group_by(*keys, "s", "y").agg(pl.col("n").sum())
        for k in ("chunk", "seg", "version"):
            if k not in keys:
                h = h.with_columns(pl.lit(None, pl.Int64 if k == "chunk" else pl.String).alias(k))
        parts.append(h.select(pl.lit(g, pl.Int32).alias("g"), "chunk", "seg", "version",
                              pl.lit(spec.positive).alias("cls"), "s", "y", "n"))
    return pl.concat(parts)


def aggregate(ws: Workspace, t: gt.Truth, p: Plan, f: Filters, chunk: tuple[str, int | None]) -> data.Aggregates:
    """data.aggregate's answer: rows and pairs from `outcomes`, the AUC histogram from
    `scores`, confidence and estimation bins from one narrow raw pass over `f`."""
    kind, size = chunk
    chunk_of_day(np.zeros(0), kind)           # row chunks: NotCovered before any reading
    o = p.outcomes
    versions = o["version"].n_unique()
    if versions > data.MAX_GROUPS:
        raise NotCovered(f"{versions} versions: the raw engine groups all but the largest {data.MAX_GROUPS}")
    hist = _hist(ws, t, p, kind)
    o = _with_keys(o, kind)
    rows = o.group_by("chunk", "version", "seg", "sens", "pred").agg(
        pl.col("n").sum(), pl.col("n").filter(pl.col("truth").is_not_null()).sum().alias("labelled"),
        pl.lit(None, pl.Int64).alias("lo_us"), pl.lit(None, pl.Int64).alias("hi_us"))
    pairs = o.filter(pl.col("truth").is_not_null()).group_by(
        "chunk", "version", "seg", "sens", "pred", "truth").agg(pl.col("n").sum())
    scores = data.aggregate(ws, t, p.spec, f, chunk, scores_only=True)
    return data.Aggregates(kind, size, rows, pairs=pairs, hist=hist, hist_exact=hist is None,
                           conf=scores.conf, est=scores.est, origin=ORIGIN)


def describe(agg: data.Aggregates, p: Plan) -> str:
    text = ("counts from the rollup store (exact: rows, labels, the confusion matrix and the figures made "
            "from it)")
    if p.pieces:
        text += ", the window's partial first or last day from the raw logs"
    if agg.hist is not None:
        text += f"; ROC AUC from its score bins of 1/{SCORE_BINS} (max_binning_error bounds the difference)"
    if agg.conf is not None:
        text += "; calibration and the estimate from one pass over the raw logs (prediction x score)"
    return text

"""Quality from the rollup store: the label counts and the score bins read from the stored
per-day tables instead of a scan of the raw logs (docs/rollups.md, "Quality from the
rollups"). A window of whole UTC days reads no raw row.

    p = plan(ws, t, s, f, by, sensitive)            # NotCovered: the raw engine answers
    agg = aggregate(ws, t, p, f, ("week", None))     # data.Aggregates, origin "rollups"
    window_accuracy(ws, start, end)                  # the weekly summary's late-label accuracy

What the store answers, and how well (both tables keep `is_error`, so only served rows,
not failed and with a prediction, are counted, as the raw engine counts them):
- exactly, from `outcomes` (prediction x label counts per UTC day, version and error
  flag): rows, labelled rows and coverage, the confusion matrix and every figure made from
  it (accuracy, macro and per-class precision, recall and F1, their intervals), per day,
  week or month chunk and per version;
- exactly, from `scores` (prediction x label x score bin of 1/1000 x bin of 1 - score):
  the label-free estimate (its fine bins are the store's bins), the reference window's
  calibration for it, the calibration curve's counts and accuracies, and what a binary
  score means when [quality] score is auto (the share of negative predictions with a score
  >= 0.5: bin >= 500 is score >= 0.5 in doubles);
- within a stated bound, from `scores`: the ROC AUC of the positive class's probability
  (the score, or 1 - score on negative predictions of a confidence). Pairs in different
  bins are ordered exactly; pairs sharing a bin count one half, as ties. The exact AUC
  counts each such pair 0, 1/2 or 1, so |AUC from bins - exact AUC| <= (1/2) sum_b pos_b
  neg_b / (P N), reported with the value (`max_binning_error`, computed from the same
  bins). The ECE: each confidence counts at its bin's midpoint, so |ECE from bins - exact|
  <= 0.0005 * (rows in bins of width 1/1000) / N <= 0.0005, reported as the ECE's
  `max_binning_error` (storebins.py derives both).

One narrow raw pass remains only for calibration from per-class probability columns or
from confidences outside [0, 1] (`data.aggregate(..., scores_only=True)`). The raw engine
answers (NotCovered says why) for labels from a labels file or reviewers, regression,
windows off whole UTC days, endpoint filters, row chunks, segments other than the version,
fairness, a one-vs-rest AUC from per-class probability columns, scores that are not finite
numbers, and a store that does not cover every file as it is now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from ..config import ConfigError
from ..logs.source import INTEGER_TYPES, NUMERIC_TYPES
from ..logs.workspace import Workspace
from ..query.filters import Filters
from ..rollup.quality import outcome_counts, score_counts
from ..rollup.read import NotCovered, Store
from ..rollup.tables import DAY_US, NOT_FINITE_BIN, SCORE_BINS, score_bin
from . import data
from . import ground_truth as gt
from . import storebins as sb
from .estimate import fit_calibration
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
    scores: pl.DataFrame           # day, version, pred, truth, bin, cbin, n (rollup.quality.score_counts)


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


def plan(ws: Workspace, t: gt.Truth, s: QualitySettings, f: Filters, by: str | None,
         sensitive: str | None) -> Plan:
    """The store's answer to spec_for, or NotCovered (one sentence) for the raw engine."""
    store = _store(ws, t, by, sensitive)
    days, pieces = split(ws, f)
    types = ws.source.types
    value_p, value_l = value_sql(types.get("prediction", "")), value_sql(types.get("label", ""))
    value = {"prediction": value_p, "label": value_l}
    out = outcome_counts(store, ws.con, days, lambda c: value[c](c))
    sc = _EMPTY_SCORES
    if ws.source.has("score"):
        sc = score_counts(store, ws.con, days, lambda c: value[c](c))
    for g in pieces:
        out = pl.concat([out, _raw_outcomes(ws, t, g)])
        if ws.source.has("score"):
            sc = pl.concat([sc, _raw_scores(ws, t, g)])
    if sb.has_not_finite(sc):
        raise NotCovered("some scores are not finite numbers: the rollups' score bins do not hold them")
    pairs = out.group_by("pred", "truth").agg(pl.col("n").sum()).with_columns(
        pl.lit(0, pl.Int64).alias("scored"), pl.lit(0, pl.Int64).alias("high"))
    spec = data.spec_from_pairs(ws, s, pairs)
    # spec_for reads a binary model's auto score from the share of high scores by prediction
    if ws.source.has("score") and s.score == "auto" and spec.binary and spec.positive is not None:
        extra = sc.group_by("pred").agg(pl.col("n").sum().alias("scored"),
                                        pl.col("n").filter(pl.col("bin") >= SCORE_BINS // 2).sum().alias("high"))
        extra = extra.filter(pl.col("pred").is_not_null()).select(
            "pred", pl.lit(None, pl.String).alias("truth"), pl.lit(0, pl.Int64).alias("n"),
            pl.col("scored").cast(pl.Int64), pl.col("high").cast(pl.Int64))
        spec = data.spec_from_pairs(ws, s, pl.concat([pairs, extra]))
    return Plan(store, days, pieces, spec, out, sc)


def window_accuracy(ws: Workspace, start: datetime, end: datetime,
                    reviewed: pl.DataFrame | None = None) -> dict | None:
    """`ground_truth.window_accuracy` (the weekly summary's late-label accuracy) with the
    window's whole UTC days counted from `outcomes` and only its partial first and last
    days read raw: the same labelled and correct counts, so the same figures. Whatever the
    store cannot answer (labels from a file or reviewers, a stale store: `_store`) is
    answered by the raw engine."""
    if not gt.available(ws, reviewed):
        return None
    try:
        t = gt.default_truth(ws, reviewed=reviewed)
        store = _store(ws, t, None, None)
        days, pieces = split(ws, Filters(start=start, end=end))
        types = ws.source.types
        value = {c: value_sql(types.get(c, "")) for c in ("prediction", "label")}
    except (NotCovered, gt.LabelsError, ConfigError):
        return gt.window_accuracy(ws, start, end, reviewed)
    out = outcome_counts(store, ws.con, days, lambda c: value[c](c))
    out = out.filter(pl.col("pred").is_not_null() & pl.col("truth").is_not_null())
    n, k = int(out["n"].sum() or 0), int(out.filter(pl.col("pred") == pl.col("truth"))["n"].sum() or 0)
    for g in pieces:
        df = gt.accuracy_by_bucket(ws, 86400, g, reviewed)
        n, k = n + int(df["labelled"].sum() or 0), k + int(df["correct"].sum() or 0)
    return gt.accuracy_figures(n, k)


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


_EMPTY_SCORES = pl.DataFrame(schema={"day": pl.Int64, "version": pl.String, "pred": pl.String, "truth": pl.String,
                                     "bin": pl.Int32, "cbin": pl.Int32, "n": pl.Int64})


def _raw_scores(ws: Workspace, t: gt.Truth, g: Filters) -> pl.DataFrame:
    """score_counts' frame for a piece of the window, from the raw logs, in the store's bins
    (`tables.score_bin`, NOT_FINITE_BIN for a score that is not a finite number)."""
    cond, params = g.where()
    df = gt.query(ws, t, f"SELECT {data.ch.key_sql('day')} AS day, model_version AS version, pred, truth, "
                         f"CASE WHEN isfinite(score) THEN {score_bin('score')} WHEN score IS NOT NULL "
                         f"THEN {NOT_FINITE_BIN} END AS bin, "
                         f"CASE WHEN isfinite(score) THEN {score_bin('(1 - score)')} END AS cbin, "
                         f"count(*) AS n FROM truth_rows WHERE score IS NOT NULL AND {cond} GROUP BY ALL", params)
    return df.select(*(pl.col(k).cast(v) for k, v in _EMPTY_SCORES.schema.items()))


def _hist(p: Plan, kind: str) -> pl.DataFrame | None:
    """hist rows (g, chunk, seg, version, cls, s, y, n) from the score bins, or None when
    the report has no AUC; NotCovered for an AUC the bins cannot give."""
    spec = p.spec
    if spec.p_pos_sql() is None:
        if len(spec.classes) > 2 and spec.class_scores:
            raise NotCovered("one-vs-rest AUC from per-class probability columns needs the raw logs")
        return None
    h = sb.hist(p.scores, spec, lambda d: chunk_of_day(d, kind))
    if h is None:
        raise NotCovered("the AUC of a per-class probability column needs the raw logs (the rollups bin the score)")
    return h


def aggregate(ws: Workspace, t: gt.Truth, p: Plan, f: Filters, chunk: tuple[str, int | None]) -> data.Aggregates:
    """data.aggregate's answer: rows and pairs from `outcomes`, the AUC histogram, the
    confidence and the estimation bins from `scores` (a raw pass over `f` for those two
    only where storebins cannot bound them)."""
    kind, size = chunk
    chunk_of_day(np.zeros(0), kind)           # row chunks: NotCovered before any reading
    o = p.outcomes
    versions = o["version"].n_unique()
    if versions > data.MAX_GROUPS:
        raise NotCovered(f"{versions} versions: the raw engine groups all but the largest {data.MAX_GROUPS}")
    hist = _hist(p, kind)
    o = _with_keys(o, kind)
    rows = o.group_by("chunk", "version", "seg", "sens", "pred").agg(
        pl.col("n").sum(), pl.col("n").filter(pl.col("truth").is_not_null()).sum().alias("labelled"),
        pl.lit(None, pl.Int64).alias("lo_us"), pl.lit(None, pl.Int64).alias("hi_us"))
    pairs = o.filter(pl.col("truth").is_not_null()).group_by(
        "chunk", "version", "seg", "sens", "pred", "truth").agg(pl.col("n").sum())
    of_day = lambda d: chunk_of_day(d, kind)  # noqa: E731
    conf, est, raw_pass = None, None, False
    if p.spec.conf_sql():
        conf, est = sb.conf(p.scores, p.spec, of_day), sb.est(p.scores, p.spec, of_day)
        if conf is None or est is None:
            scores = data.aggregate(ws, t, p.spec, f, chunk, scores_only=True)
            conf, est, raw_pass = scores.conf, scores.est, True
    return data.Aggregates(kind, size, rows, pairs=pairs, hist=hist, hist_exact=hist is None,
                           conf=conf, est=est, origin=ORIGIN, raw_scores=raw_pass)


def calibrate_window(ws: Workspace, t: gt.Truth, p: Plan, f: Filters) -> tuple[np.ndarray | None, int]:
    """estimate.calibrate_window's answer from the score bins (exact), or NotCovered."""
    days, pieces = split(ws, f)
    value_p, value_l = (value_sql(ws.source.types.get(c, "")) for c in ("prediction", "label"))
    value = {"prediction": value_p, "label": value_l}
    sc = score_counts(p.store, ws.con, days, lambda c: value[c](c))
    for g in pieces:
        sc = pl.concat([sc, _raw_scores(ws, t, g)])
    df = sb.reference_bins(sc, p.spec)
    if df is None:
        raise NotCovered("the reference's scores are not in the rollups' bins")
    n = int(df["n"].sum() or 0)
    return (fit_calibration(df) if n else None), n


def describe(agg: data.Aggregates, p: Plan) -> str:
    text = ("counts from the rollup store (exact: rows, labels, the confusion matrix and the figures made "
            "from it)")
    if p.pieces:
        text += ", the window's partial first or last day from the raw logs"
    if agg.hist is not None:
        text += f"; ROC AUC from its score bins of 1/{SCORE_BINS} (max_binning_error bounds the difference)"
    if agg.conf is not None and agg.raw_scores:
        text += "; calibration and the estimate from one pass over the raw logs (prediction x score)"
    elif agg.conf is not None:
        text += ("; calibration and the estimate from its score bins (the ECE within its max_binning_error, "
                 "the estimate exact)")
    return text

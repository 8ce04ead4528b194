"""The quality report: one dict shared by the page, the CLI, the weekly summary and alerts.

    r = quality_report(ws, start=..., end=..., chunk="month", by="region", sensitive="device")
    r["overall"]["accuracy"]        # {"value", "ci": [lo, hi], "n"}
    r["chunks"][0]["estimated"]     # {"accuracy": {"value", "band": [lo, hi], "n"}, ...}

Shape (the JSON of `python -m monitoring quality --format json`):
task, labelled, coverage, overall {metric entries, per_class, confusion, calibration},
chunks [{start, end, rows, labelled, coverage, metrics, estimated, gap}], segments
[{column, value, rows, labelled, metrics, rank}], versions [...], fairness {...},
estimation {what, reference, calibrated_on, max_abs_gap}, label_delay, warnings.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from ..logs.workspace import Workspace
from ..query.filters import Filters
from ..rollup.read import NotCovered
from . import chunks as ch
from . import data, estimate, fairness, fromstore, metrics
from . import ground_truth as gt
from .settings import QualitySettings, load

CLASSIFICATION = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc", "ece")
PRIMARY = {"classification": "accuracy", "regression": "mae"}


def _auc_entry(hist: pl.DataFrame | None, spec: data.Spec, exact: bool, min_labels: int) -> dict | None:
    if hist is None or hist.height == 0:
        return None
    per = {}
    for c in hist["cls"].unique().sort().to_list():
        h = hist.filter(pl.col("cls") == c).group_by("s", "y").agg(pl.col("n").sum())
        wide = h.pivot(on="y", index="s", values="n").fill_null(0).sort("s")
        pos = wide["true"].to_numpy() if "true" in wide.columns else np.zeros(wide.height)
        neg = wide["false"].to_numpy() if "false" in wide.columns else np.zeros(wide.height)
        n = int(pos.sum() + neg.sum())
        if n < min_labels or pos.sum() == 0 or neg.sum() == 0:
            per[c] = metrics.too_few(n, min_labels, "labels of both classes" if n >= min_labels else "labels")
            continue
        a, ci, bound = metrics.auc(pos, neg)
        e = metrics.entry(a, ci, n)
        if not exact:
            e["max_binning_error"] = bound
        per[c] = e
    if spec.binary:
        return per.get(spec.positive)
    done = [e for e in per.values() if e["value"] is not None]
    if not done or len(done) < len(per):
        return metrics.too_few(min((e["n"] for e in per.values()), default=0), min_labels, "labels of every class")
    # One-vs-rest macro AUC; the interval adds the classes' half-widths (conservative: it
    # ignores their correlation, which can only narrow it).
    v = float(np.mean([e["value"] for e in done]))
    half = float(np.mean([(e["ci"][1] - e["ci"][0]) / 2 for e in done]))
    out = metrics.entry(v, (max(0.0, v - half), min(1.0, v + half)), done[0]["n"])
    out["per_class"] = {c: e["value"] for c, e in per.items()}
    return out


def _classification(pairs: pl.DataFrame, hist, conf, spec: data.Spec, s: QualitySettings, exact: bool,
                    full: bool = False) -> dict[str, Any]:
    idx = {c: i for i, c in enumerate(spec.classes)}
    cm = np.zeros((len(idx), len(idx)), dtype=np.int64)
    for r in pairs.group_by("truth", "pred").agg(pl.col("n").sum()).iter_rows(named=True):
        if r["truth"] in idx and r["pred"] in idx:
            cm[idx[r["truth"]], idx[r["pred"]]] += r["n"]
    res = metrics.classification(cm, list(spec.classes), min_labels=s.min_labels, seed=s.seed)
    out = {m: res[m] for m in ("accuracy", "precision_macro", "recall_macro", "f1_macro")}
    a = _auc_entry(hist, spec, exact, s.min_labels)
    if a is not None:
        out["roc_auc"] = a
    if conf is not None and conf.height:
        c = conf.group_by("b").agg(pl.col("n").sum(), pl.col("correct").sum(), pl.col("conf_sum").sum())
        n, k, cs = (np.zeros(metrics.CAL_BINS) for _ in range(3))
        for r in c.iter_rows(named=True):
            n[r["b"]], k[r["b"]], cs[r["b"]] = r["n"], r["correct"], r["conf_sum"]
        cal = metrics.calibration(n, k, cs, min_labels=s.min_labels, seed=s.seed)
        out["ece"] = cal["ece"]
        if "conf_err" in conf.columns and cal["ece"]["value"] is not None:
            # the store's confidence sums, at the bins' midpoints (storebins.py)
            out["ece"]["max_binning_error"] = float(conf["conf_err"].sum()) / float(n.sum())
        if full:
            out["calibration"] = cal["curve"]
    if full:
        out["per_class"] = res["per_class"]
        out["confusion"] = res["confusion"]
    return out


def _regression(reg: pl.DataFrame, blocks: bool, s: QualitySettings) -> dict[str, Any]:
    if blocks:
        b = reg.group_by("blk").agg(pl.col(c).sum() for c in ("n", "e", "ae", "e2", "ape", "n_ape", "y", "y2")).sort("blk")
        return metrics.regression_blocks({c: b[c].to_numpy() for c in b.columns if c != "blk"},
                                         min_labels=s.min_labels, seed=s.seed)
    reg = reg.sort("y", "yhat")   # DuckDB's row order varies: the seeded bootstrap must not
    return metrics.regression_rows(reg["y"].to_numpy(), reg["yhat"].to_numpy(), min_labels=s.min_labels, seed=s.seed)


def _metrics_for(agg: data.Aggregates, spec: data.Spec, s: QualitySettings, *, where: pl.Expr | None,
                 hist_g: int, hist_where: pl.Expr | None, full: bool = False) -> dict[str, Any]:
    def sub(df):
        if df is None:
            return None
        return df.filter(where) if where is not None else df
    if spec.task == "regression":
        return _regression(sub(agg.reg), agg.reg_blocks, s)
    hist = None
    if agg.hist is not None:
        hist = agg.hist.filter(pl.col("g") == hist_g)
        if hist_where is not None:
            hist = hist.filter(hist_where)
    conf = sub(agg.conf) if hist_g in (7, 6) else None
    return _classification(sub(agg.pairs), hist, conf, spec, s, agg.hist_exact, full)


def resolve_reference_calibration(ws: Workspace, t: gt.Truth, spec: data.Spec, reference: str | None,
                                  plan: fromstore.Plan | None = None):
    """(calibration, rows, description, note) from the reference file or window (a window
    from the store's score bins with `plan`, where they hold it)."""
    from ..drift import load_settings, resolve_reference
    from ..drift.windows import open_reference

    settings = load_settings(ws.config.section("drift"))
    try:
        ref = resolve_reference(ws.config, settings, ws.extent, file=reference)
    except ValueError as exc:
        return None, 0, "", str(exc)
    if ref.kind == "file":
        src = open_reference(ref.path, ws.config, ws.con)
        cal, n, note = estimate.calibrate_file(ws, src, spec)
        return cal, n, ref.describe(), note
    window = Filters(start=ref.start, end=ref.end)
    try:
        if plan is None:
            raise NotCovered("the raw engine answers")
        cal, n = fromstore.calibrate_window(ws, t, plan, window)
    except NotCovered:
        cal, n = estimate.calibrate_window(ws, t, spec, window)
    return cal, n, ref.describe() + " (its labelled rows)", None if n else "the reference window has no labelled, scored rows"


def quality_report(ws: Workspace, *, start: datetime | None = None, end: datetime | None = None,
                   chunk: str | None = None, by: str | None = None, sensitive: str | None = None,
                   reference: str | None = None, labels: str | None = None, as_of: datetime | None = None,
                   reviewed: pl.DataFrame | None = None, filters: Filters | None = None,
                   rollups: bool = True, defer_fairness: bool = False) -> dict[str, Any]:
    """Realized, estimated and fair quality of the window; raises ValueError / LabelsError
    with one sentence on bad input. With `rollups` the store answers what it can
    (quality/fromstore.py); `origin` says which path answered and `origin_note` why or how.
    With `defer_fairness`, when the store answers all but the fairness by `sensitive` (which
    needs the raw logs), the rest comes from the store and `fairness` is {"column",
    "deferred": True}: `fairness_report` gives it, from the raw logs."""
    if labels:
        ws = replace(ws, config=replace(ws.config, labels=labels))
    s = load(ws.config)
    t = gt.default_truth(ws, reviewed=reviewed, task=None if s.task == "auto" else s.task, as_of=as_of)
    f = filters or Filters()
    f = replace(f, start=start or f.start, end=end or f.end)
    warnings: list[str] = []
    if not gt.truth_sql(ws, t)[0]:
        return {"task": t.task, "labelled": 0, "coverage": 0.0, "overall": {}, "chunks": [], "segments": [],
                "fairness": {}, "warnings": ["no labels: the logs have no label column and no labels file "
                                             "(set labels / MONITORING_LABELS) or reviewed answer exists"]}
    plan, why, deferred = None, "the raw engine was asked for" if not rollups else "", False
    if rollups:
        try:
            plan = fromstore.plan(ws, t, s, f, by or "model_version", sensitive)
        except NotCovered as exc:
            why = str(exc)
            if sensitive and defer_fairness:
                try:
                    plan, deferred = fromstore.plan(ws, t, s, f, by or "model_version", None), True
                except NotCovered as again:
                    why = str(again)
    spec = plan.spec if plan is not None else data.spec_for(ws, t, s, f)
    if spec.warning:
        warnings.append(spec.warning)
    kind, size = _chunking(ws, f, chunk or s.chunk, spec, warnings)
    agg = None
    if plan is not None:
        try:
            agg = fromstore.aggregate(ws, t, plan, f, (kind, size))
        except NotCovered as exc:
            why, deferred = str(exc), False
    if agg is None:
        agg = data.aggregate(ws, t, spec, f, (kind, size), by=by or "model_version", sensitive=sensitive)
    out: dict[str, Any] = {"task": spec.task, "labelled": spec.labelled, "rows": spec.rows,
                           "origin": agg.origin, "origin_note": fromstore.describe(agg, plan) if agg.origin == fromstore.ORIGIN
                           else f"every figure from the raw logs ({why})" if why else "every figure from the raw logs",
                           "coverage": spec.labelled / spec.rows if spec.rows else 0.0,
                           "chunk": ch.label(kind, size), "min_labels": s.min_labels}
    if spec.task == "classification":
        out["classes"] = list(spec.classes)
        out["positive_class"] = spec.positive
        out["score"] = spec.score_kind
    out["overall"] = _metrics_for(agg, spec, s, where=None, hist_g=7, hist_where=None, full=True)
    if agg.hist is not None and not agg.hist_exact:
        bins = fromstore.SCORE_BINS if agg.origin == fromstore.ORIGIN else data.AUC_BINS
        out["auc_method"] = f"binned into {bins} score bins; max_binning_error bounds the difference from exact"
    # Estimation first: each chunk carries its estimate beside the realized metrics.
    est, est_info = {}, {"what": estimate.what_is_estimated(spec)}
    if spec.task == "classification" and agg.est is not None:
        cal, n_cal, desc, note = resolve_reference_calibration(
            ws, t, spec, reference, plan if agg.origin == fromstore.ORIGIN else None)
        est_info |= {"reference": desc, "calibrated_on": n_cal}
        if cal is not None and n_cal >= s.min_labels:
            est = estimate.estimate_chunks(agg.est, cal, spec, min_rows=s.min_labels, seed=s.seed)
        else:
            est_info["note"] = note or f"too few labelled reference rows ({n_cal} < {s.min_labels}): nothing estimated"
    out["chunks"] = _chunks(agg, spec, s, est)
    gaps = {}
    for c in out["chunks"]:
        for m, g in c.get("gap", {}).items():
            gaps.setdefault(m, []).append(abs(g))
    est_info["max_abs_gap"] = {m: max(v) for m, v in gaps.items()}
    out["estimation"] = est_info
    out["segments"] = _segments(agg, spec, s, "seg", by or "model_version", hist_g=5)
    out["versions"] = _segments(agg, spec, s, "version", "model_version", hist_g=3)
    out["fairness"] = ({"column": sensitive, "deferred": True} if deferred
                       else _fairness(agg, spec, s, sensitive, out["chunks"]))
    out["label_delay"] = agg.delay
    out["warnings"] = warnings
    return out


def fairness_report(ws: Workspace, *, filters: Filters | None = None, chunk: str | None = None,
                    by: str | None = None, sensitive: str | None = None,
                    reviewed: pl.DataFrame | None = None) -> dict[str, Any]:
    """The `fairness` of `quality_report` alone, from the raw logs: what a report with
    `defer_fairness` left out (the same figures as the report computed whole)."""
    s = load(ws.config)
    t = gt.default_truth(ws, reviewed=reviewed, task=None if s.task == "auto" else s.task)
    f = filters or Filters()
    if not sensitive or not gt.truth_sql(ws, t)[0]:
        return {}
    spec = data.spec_for(ws, t, s, f)
    kind, size = _chunking(ws, f, chunk or s.chunk, spec, [])
    agg = data.aggregate(ws, t, spec, f, (kind, size), by=by or "model_version", sensitive=sensitive)
    return _fairness(agg, spec, s, sensitive, _chunks(agg, spec, s, {}))


def _chunking(ws: Workspace, f: Filters, chunk: str, spec: data.Spec, warnings: list[str]) -> tuple[str, Any]:
    kind, size = ch.parse_chunk(chunk)
    if kind != "rows" and not getattr(ws.source, "has_time", True):
        kind = "auto"          # no timestamps: the row order chunks the data
        warnings.append("the logs have no timestamp: chunks are runs of rows in file order")
    if kind == "auto":
        kind, size = ch.auto(f.start or ws.extent.first, f.end or ws.extent.last, spec.rows)
    return kind, size


def _fairness(agg: data.Aggregates, spec: data.Spec, s: QualitySettings, sensitive: str | None,
              chunks: list[dict[str, Any]]) -> dict[str, Any]:
    if not sensitive:
        return {}
    if spec.task != "classification" or spec.positive is None:
        return {"column": sensitive, "note": "fairness needs a classifier with a positive outcome"}
    fr = fairness.fairness(agg.rows, agg.pairs, spec.positive, min_labels=s.min_labels, seed=s.seed)
    keys = [c["key"] for c in chunks]
    fr["chunks"] = [dict(x, start=c["start"], end=c["end"]) for x, c in zip(
        fairness.fairness_over_time(agg.rows, agg.pairs, spec.positive, keys, min_labels=s.min_labels,
                                    seed=s.seed), chunks, strict=True)]
    fr["column"] = sensitive
    fr["positive_note"] = spec.positive_note
    return fr


def _when(us) -> datetime | None:
    return None if us is None else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


def _chunks(agg: data.Aggregates, spec: data.Spec, s: QualitySettings, est: dict) -> list[dict[str, Any]]:
    per = agg.rows.group_by("chunk").agg(pl.col("n").sum(), pl.col("labelled").sum(), pl.col("lo_us").min(),
                                         pl.col("hi_us").max()).sort("chunk")
    out = []
    for r in per.iter_rows(named=True):
        key = r["chunk"]
        start, end = ch.bounds(agg.chunk_kind, key) if key is not None else (None, None)
        if start is None:
            start, end = _when(r["lo_us"]), _when(r["hi_us"])
        m = _metrics_for(agg, spec, s, where=pl.col("chunk") == key, hist_g=6, hist_where=pl.col("chunk") == key)
        c = {"key": key, "start": start, "end": end, "rows": int(r["n"]), "labelled": int(r["labelled"]),
             "coverage": r["labelled"] / r["n"] if r["n"] else 0.0, "metrics": m, "estimated": est.get(key, {})}
        c["gap"] = {name: e["value"] - m[name]["value"] for name, e in c["estimated"].items()
                    if e.get("value") is not None and m.get(name, {}).get("value") is not None}
        out.append(c)
    return out


def _segments(agg: data.Aggregates, spec: data.Spec, s: QualitySettings, dim: str, column: str,
              hist_g: int) -> list[dict[str, Any]]:
    per = agg.rows.group_by(dim).agg(pl.col("n").sum(), pl.col("labelled").sum())
    out = []
    for r in per.iter_rows(named=True):
        v = r[dim]
        m = _metrics_for(agg, spec, s, where=pl.col(dim) == v, hist_g=hist_g,
                         hist_where=pl.col("seg" if dim == "seg" else "version") == v)
        out.append({"column": column, "value": v, "rows": int(r["n"]), "labelled": int(r["labelled"]), "metrics": m})
    primary = PRIMARY[spec.task]
    worse_high = spec.task == "regression"

    def order(x):
        v = x["metrics"].get(primary, {}).get("value")
        return (v is None, -(v or 0) if worse_high else (v or 0), str(x["value"]))

    out.sort(key=order)
    for i, x in enumerate(out, 1):
        x["rank"] = i
    return out

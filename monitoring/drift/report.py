"""`python -m monitoring drift`: the drift report as JSON or a text table.

    python -m monitoring drift --logs sample_logs/ --format json
    python -m monitoring drift --reference train.parquet --start 2026-11-16 --end 2026-11-23

JSON: `features` is a list of {name, kind, method, score, threshold, drifted, n_reference,
n_current, p_value (methods with one), status, approximate (and error_bound when true: the
score is within that of the exact one), null shares, secondary test, quality};
`prediction`, `score` and `label` (from the logs or the labels file) have the same shape
(omitted when the logs lack the column); a multiclass model's `max_probability` (its
confidence) too, and `classes` lists each class's probability with its `class`;
`reference` and `current` say what was compared, with row counts; `over_time` (with
--chunk) lists the chunks where each column drifted.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..cli.options import UsageError, dump_json
from ..config import Config, load_config
from ..fmt import pct
from ..logs.workspace import open_workspace
from ..query.filters import Filters, parse_time
from . import stattests
from .chunks import parse as parse_chunk
from .engine import DriftResult, FeatureDrift
from .overtime import OverTime
from .settings import load as load_settings
from .windows import Reference, analyze, analyze_over_time, default_current, resolve_reference

SECONDARY = {"numeric": "ks", "categorical": "chisquare"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--logs", help="Parquet file, directory or glob (default MONITORING_LOGS or sample_logs/)")
    p.add_argument("--config", help="path of monitoring.toml (default MONITORING_CONFIG)")
    p.add_argument("--reference", help="reference Parquet file, e.g. a training sample "
                                       "(default MONITORING_REFERENCE, else a window of the logs)")
    p.add_argument("--reference-start", help="reference window start, ISO 8601 (UTC unless an offset is given)")
    p.add_argument("--reference-end", help="reference window end, ISO 8601 (exclusive)")
    p.add_argument("--start", help="current window start (default: the end of a reference window, "
                                   "or the first request)")
    p.add_argument("--end", help="current window end, exclusive (default: after the last request)")
    p.add_argument("--model", dest="model_name", help="only this model_name")
    p.add_argument("--chunk", metavar="auto|hour|day|week|month|rows:N",
                   help="also score each chunk of the current window (drift over time); auto "
                        "(the [drift] chunk default) picks the finest unit with enough rows per chunk")
    p.add_argument("--format", choices=["json", "table"], default="table")


def run(args: argparse.Namespace) -> int:
    if args.reference and (args.reference_start or args.reference_end):
        raise UsageError("give either --reference or --reference-start/--reference-end, not both")
    if bool(args.reference_start) != bool(args.reference_end):
        raise UsageError("--reference-start and --reference-end go together")
    if args.chunk is not None:
        try:
            parse_chunk(args.chunk)
        except ValueError as exc:
            raise UsageError(f"--chunk: {exc}") from None
    cfg = load_config(args.config, {"logs": args.logs})
    report = drift_report(cfg, reference=args.reference, reference_start=args.reference_start,
                          reference_end=args.reference_end, start=args.start, end=args.end,
                          model_name=args.model_name, chunk=args.chunk)
    print(dump_json(report) if args.format == "json" else drift_table(report))
    return 0


def drift_report(cfg: Config, *, reference: str | None = None, reference_start: str | None = None,
                 reference_end: str | None = None, start: str | None = None, end: str | None = None,
                 model_name: str | None = None, chunk: str | None = None) -> dict[str, Any]:
    """The drift report as a dict (the JSON contract); raises ValueError on bad input."""
    settings = load_settings(cfg.section("drift"))
    ws = open_workspace(cfg)
    ext = ws.extent
    if ext.rows == 0:
        raise ValueError(f"the logs at {cfg.logs} hold no valid rows")
    ref = resolve_reference(cfg, settings, ext, file=reference,
                            start=parse_time(reference_start) if reference_start else None,
                            end=parse_time(reference_end) if reference_end else None)
    cur = default_current(ref, ext)
    cur = Filters(start=parse_time(start) if start else cur.start,
                  end=parse_time(end) if end else cur.end, model_name=model_name)
    if cur.start is not None and cur.end is not None and cur.end <= cur.start:
        raise ValueError("--end must be after --start")
    result = analyze(ws, ref, cur, settings)
    out: dict[str, Any] = {
        "logs": cfg.logs,
        "reference": _reference_json(ref, result),
        "current": {"start": cur.start, "end": cur.end, "rows": result.rows_current,
                    "model_name": model_name},
        "message": result.message,
        "warnings": list(result.warnings),
        "origin": result.origin,   # "rollups": counted from the rollup store, else "raw"
    }
    if result.prediction is not None:
        out["prediction"] = feature_json(result.prediction)
    if result.score is not None:
        out["score"] = feature_json(result.score)
    if result.label is not None:  # label drift: ground truth from the logs or the labels file
        out["label"] = feature_json(result.label)
    if result.confidence is not None:  # a multiclass model: its confidence and each class
        out["max_probability"] = feature_json(result.confidence)
        out["classes"] = [{"class": f.cls} | feature_json(f) for f in result.classes]
    mv = result.multivariate
    if mv is not None:  # the numeric features' joint distribution
        out["multivariate"] = {"method": mv.method, "score": mv.score, "threshold": mv.threshold,
                               "band": mv.band, "drifted": bool(mv.drifted), "status": mv.status,
                               "n_reference": mv.n_reference, "n_current": mv.n_current,
                               "reconstruction_error_reference": mv.reference.mean,
                               "reconstruction_error_current": mv.current.mean, "model": mv.labels[0]}
    out["features"] = [feature_json(f) for f in result.ranked()]
    out["drifted"] = [f.name for f in result.all if f.drifted]
    if chunk and result.message is None:
        out["over_time"] = over_time_json(analyze_over_time(ws, ref, cur, result, settings, chunk, joint=True))
    return out


def _reference_json(ref: Reference, result: DriftResult) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": ref.kind, "rows": result.rows_reference, "description": ref.describe()}
    if ref.kind == "file":
        out["path"] = ref.path
    else:
        out |= {"start": ref.start, "end": ref.end}
    out["default"] = ref.origin == "default"
    if ref.origin == "default":
        out["note"] = ("no reference given: the first days of the logs are the reference "
                       "(drift.default_reference_days), and the current window is what follows")
    return out


def feature_json(f: FeatureDrift) -> dict[str, Any]:
    """One column's entry of the JSON report."""
    out: dict[str, Any] = {
        "name": f.name, "kind": f.kind, "method": f.method, "score": f.score,
        "threshold": f.threshold, "drifted": bool(f.drifted), "status": f.status,
        "n_reference": f.n_reference, "n_current": f.n_current,
        "approximate": f.error is not None,
    }
    if f.error is not None:
        out["error_bound"] = f.error
    out["band"] = f.band
    if stattests.REGISTRY[f.method].has_p_value:
        out["p_value"] = f.p_value
    second = SECONDARY[f.kind]
    if second != f.method and second in f.scores:
        out["secondary"] = {"method": second, "score": f.scores[second].value,
                            "p_value": f.scores[second].p_value}
    q = f.quality
    out["null_share_reference"] = q.null_share_reference if q else None
    out["null_share_current"] = q.null_share_current if q else None
    if q is not None:
        quality: dict[str, Any] = {"problems": list(q.problems)}
        if f.kind == "numeric":
            quality["out_of_range_share"] = q.out_of_range_share
        else:
            quality["new_categories"] = [{"value": c, "count": n} for c, n in q.new_categories]
            quality["new_category_count"] = q.new_count
            quality["vanished_categories"] = list(q.vanished_categories)
        if q.types:
            quality["types"] = list(q.types)
        out["quality"] = quality
    if f.problem:
        out["problem"] = f.problem
    return out


def over_time_json(ot: OverTime) -> dict[str, Any]:
    """Chunks with their rows, positions and every column's score, threshold, band and
    decision; `drifted_chunks` lists the start of each drifted chunk per column."""
    by_k: dict[int, dict[str, Any]] = {}
    for r in ot.scores.iter_rows(named=True):
        by_k.setdefault(r["k"], {})[r["name"] if r["role"] == "feature" or r["name"] == r["role"]
                                    else f"{r['role']}:{r['name']}"] = {
            "score": r["score"], "threshold": r["threshold"], "band": r["band"],
            "drifted": bool(r["drifted"]), "n": r["n"], "null_share": r["null_share"]}
    chunks = [{"start": r["start"], "end": r["end"], "rows": r["rows"], "first_row": r["first_row"],
               "last_row": r["last_row"], "scores": by_k.get(r["k"], {})}
              for r in ot.chunks.iter_rows(named=True)]
    starts = {r["k"]: (r["start"] if r["start"] is not None else r["first_row"])
              for r in ot.chunks.iter_rows(named=True)}
    drifted: dict[str, list] = {}
    for r in ot.scores.filter(ot.scores["drifted"].fill_null(False)).sort("k").iter_rows(named=True):
        drifted.setdefault(r["name"], []).append(starts[r["k"]])
    return {"chunk": ot.chunk, "requested": ot.requested, "reason": ot.reason, "rows_needed": ot.needed,
            "chunks": chunks, "drifted_chunks": drifted, "origin": ot.origin}


# -- table -------------------------------------------------------------------------------------

def _num(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"


def _pct(v: float | None) -> str:
    return pct(v, 1)


def drift_table(r: dict[str, Any]) -> str:
    ref = r["reference"]
    lines = [f"Drift of {r['logs']}",
             f"  reference: {ref['description']} · {ref['rows']:,} rows",
             f"  current:   {_when(r['current']['start'])} to {_when(r['current']['end'])} UTC · "
             f"{r['current']['rows']:,} rows"]
    if ref.get("note"):
        lines.append(f"  note: {ref['note']}")
    lines += [f"  warning: {w}" for w in r["warnings"]]
    if r["message"]:
        return "\n".join(lines + ["", r["message"]])
    header = ("column", "kind", "method", "score", "threshold", "status", "n_ref", "n_cur", "nulls")
    rows = []
    outputs = [r.get("prediction"), r.get("label"), r.get("score"), r.get("max_probability"),
               *r.get("classes", ())]
    for entry in [*outputs, *r["features"]]:
        if entry is None:
            continue
        score = _num(entry["score"]) + (f" ±{entry['error_bound']:.2g}" if entry.get("error_bound") is not None else "")
        rows.append((entry["name"], entry["kind"], entry["method"], score,
                     _num(entry["threshold"]), entry["status"].upper() if entry["drifted"] else entry["status"],
                     f"{entry['n_reference']:,}", f"{entry['n_current']:,}", _pct(entry["null_share_current"])))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 3 or i == 5 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines += ["", fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*row) for row in rows]
    lines += ["", f"drifted: {', '.join(r['drifted']) if r['drifted'] else 'none'}"]
    if any(e and e.get("error_bound") is not None for e in [*outputs, *r["features"]]):
        lines.append("±: approximate score (fine bins, above drift.exact_max_rows values per side), "
                     "within that of the exact one")
    problems = [(e["name"], p) for e in [*outputs, *r["features"]]
                if e and e.get("quality") for p in e["quality"]["problems"]]
    if problems:
        lines += ["", "data quality:"] + [f"  {n}: {p}" for n, p in problems]
    ot = r.get("over_time")
    if ot:
        lines += ["", f"drift over time ({ot['chunk']} chunks, {len(ot['chunks'])}):"]
        if ot.get("reason"):
            lines.append(f"  {ot['reason']}")
        for name, when in ot["drifted_chunks"].items():
            lines.append(f"  {name}: {len(when)} chunk(s), first {_when(when[0])}, last {_when(when[-1])}")
        if not ot["drifted_chunks"]:
            lines.append("  no chunk drifted")
    return "\n".join(lines)


def _when(dt) -> str:
    if isinstance(dt, int):
        return f"row {dt:,}"
    return "–" if dt is None else f"{dt:%Y-%m-%d %H:%M}"

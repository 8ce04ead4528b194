"""`python -m monitoring quality`: realized and estimated quality of a window, as JSON or a table.

    python -m monitoring quality --logs LOGS --labels labels.parquet --reference ref.parquet \
        --chunk month --by region --sensitive device --format json
"""

from __future__ import annotations

import argparse
from typing import Any

from ..cli.options import db_arg, dump_json, format_arg, source_args, time_window, window_args
from ..fmt import MISSING


def add_arguments(p: argparse.ArgumentParser) -> None:
    source_args(p)
    p.add_argument("--labels", help="late labels file (Parquet or CSV; columns named in [labels])")
    p.add_argument("--reference", help="labelled reference file to calibrate the estimate (default: the drift reference)")
    window_args(p)
    p.add_argument("--as-of", dest="as_of", help="only labels that had arrived by this time (labeled_at)")
    p.add_argument("--chunk", help="auto, day, week, month or rows:N (default [quality] chunk)")
    p.add_argument("--by", help="segment column (default model_version)")
    p.add_argument("--sensitive", help="sensitive column for fairness")
    p.add_argument("--raw", action="store_true",
                   help="read every figure from the raw logs, not from the rollup store")
    db_arg(p, "reviewers' verdicts")
    format_arg(p)


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..logs.workspace import open_workspace
    from . import ground_truth as gt
    from .report import quality_report

    cfg = load_config(args.config, {"logs": args.logs, "labels": args.labels, "db_url": args.db})
    ws = open_workspace(cfg)
    times = time_window(args, "start", "end", "as_of")
    reviewed = gt.reviewed_labels(cfg.database_url)   # as the page and the weekly summary do
    r = quality_report(ws, start=times["start"], end=times["end"], chunk=args.chunk, by=args.by,
                       sensitive=args.sensitive, reference=args.reference, as_of=times["as_of"], reviewed=reviewed,
                       rollups=not args.raw)
    print(dump_json(r) if args.format == "json" else table(r))
    return 0


def _v(e: dict | None, digits: int = 3) -> str:
    if not e or e.get("value") is None:
        return e.get("note", MISSING) if e else MISSING
    ci = e.get("ci") or e.get("band")
    if ci and ci[0] is not None:
        return f"{e['value']:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return f"{e['value']:.{digits}f}"


def table(r: dict[str, Any]) -> str:
    lines = [f"task {r['task']}: {r['labelled']:,} labelled of {r.get('rows', 0):,} served rows "
             f"(coverage {r['coverage']:.1%}), chunks: {r.get('chunk', '-')}"]
    if r.get("origin_note"):
        lines.append(f"answered from: {r['origin_note']}")
    lines += [f"warning: {w}" for w in r.get("warnings", [])]
    if not r.get("overall"):
        return "\n".join(lines)
    lines.append("")
    lines.append("overall (95% interval)")
    for name, e in r["overall"].items():
        if isinstance(e, dict) and "value" in e:
            lines.append(f"  {name:16} {_v(e)}")
    est = r.get("estimation", {})
    lines += ["", f"estimated: {est.get('what', '')}"]
    if est.get("note"):
        lines.append(f"  {est['note']}")
    names = [m for m in ("accuracy", "roc_auc", "f1_macro", "mae", "rmse") if m in r["overall"]]
    lines += ["", "chunk start            rows  labelled  " + "  ".join(f"{n:>28}" for n in names) + "  estimated accuracy"]
    for c in r["chunks"]:
        start = c["start"].strftime("%Y-%m-%d %H:%M") if c["start"] else "-"
        cells = "  ".join(f"{_v(c['metrics'].get(n)):>28}" for n in names)
        lines.append(f"{start:20} {c['rows']:>7} {c['labelled']:>9}  {cells}  {_v(c['estimated'].get('accuracy'))}")
    if r.get("segments"):
        seg = r["segments"]
        lines += ["", f"segments by {seg[0]['column']} (worst first)"]
        primary = "mae" if r["task"] == "regression" else "accuracy"
        for x in seg:
            lines.append(f"  {x['rank']:>3}. {str(x['value'])[:30]:30} {x['labelled']:>8} labelled  "
                         f"{primary} {_v(x['metrics'].get(primary))}")
    fr = r.get("fairness") or {}
    if fr.get("demographic_parity"):
        dp, eo = fr["demographic_parity"], fr["equalized_odds"]
        lines += ["", f"fairness by {fr['column']} (positive class {fr['positive_class']!r})",
                  f"  demographic parity difference {_v(dp['difference'])}, ratio {_v(dp['ratio'])}"
                  + ("  FOUR-FIFTHS RULE VIOLATED" if dp.get("four_fifths_violated") else ""),
                  f"  equalized odds: TPR gap {_v(eo['tpr_gap'])}, FPR gap {_v(eo['fpr_gap'])}"]
    return "\n".join(lines)

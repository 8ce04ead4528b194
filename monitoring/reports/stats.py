"""The `stats` report: one window's latency, errors and throughput, as a dict and a table.

The dict is the JSON contract of `python -m monitoring stats --format json`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..config import Config
from ..logs.health import check_health
from ..logs.workspace import open_workspace
from ..metrics.service import summarize
from ..query.filters import Filters, auto_bucket, parse_time, whole_range


def stats_report(cfg: Config, *, start: str | None = None, end: str | None = None,
                 model_name: str | None = None, model_versions: tuple[str, ...] = (),
                 endpoints: tuple[str, ...] = (), bucket: str | None = None,
                 exact: bool = True) -> dict[str, Any]:
    ws = open_workspace(cfg)
    ext = ws.extent
    if not ws.source.has_time and (start or end):
        raise ValueError(ws.source.missing("timestamp") + " --start and --end need it.")
    t_start = parse_time(start) if start else None
    t_end = parse_time(end) if end else None
    if t_start is None or t_end is None:
        if (ext.rows == 0 or ext.first is None) and (t_start is None or t_end is None):
            lo = hi = None
        else:
            lo, hi = whole_range(ext)
        t_start = t_start or lo
        t_end = t_end or hi
    if t_start is not None and t_end is not None and t_end <= t_start:
        raise ValueError("--end must be after --start")
    health = check_health(ws.source, ws.con, t_start, t_end)
    report: dict[str, Any] = {
        "logs": cfg.logs,
        "start": t_start,
        "end": t_end,
        "files": len(ws.source.files),
        "bad_files": [{"path": p, "reason": r} for p, r in health.bad_files],
        "warnings": health.warnings,
        # In the window (and rows with no usable time), and over the whole log as the app's
        # data-health panel shows it: an invalid row outside the window is still reported.
        "invalid_rows": health.invalid_rows,
        "invalid_rows_all_logs": ws.health.invalid_rows,
        "ignored_columns": [{"column": c, "reason": r} for c, r in ws.source.ignored],
        "missing": [m for m in (ws.source.missing(c) for c in ("timestamp", "latency_ms", "status")) if m],
    }
    if not ws.source.has_time:
        report |= {"rows": ws.extent.rows, "errors": None, "error_rate": None, "requests_per_minute": None,
                   "latency_ms": {"p50": None, "p95": None, "p99": None, "method": "exact"},
                   "failed_latency_ms": {"p50": None, "p95": None, "p99": None},
                   "bucket": None, "buckets": [], "message": ws.source.missing("timestamp")}
        return report
    if t_start is None or t_end is None:
        report |= {"rows": 0, "errors": 0, "error_rate": None, "requests_per_minute": 0.0,
                   "latency_ms": {"p50": None, "p95": None, "p99": None, "method": "exact"},
                   "failed_latency_ms": {"p50": None, "p95": None, "p99": None},
                   "bucket": bucket, "buckets": [], "message": "no valid rows in the logs"}
        return report
    bucket = bucket or auto_bucket(t_start, t_end)
    f = Filters(start=t_start, end=t_end, model_name=model_name,
                model_versions=model_versions, endpoints=endpoints)
    limit = float("inf") if exact else cfg.exact_quantile_max_rows
    s = summarize(ws.source, ws.con, f, bucket, exact_max_rows=limit)
    w = s.window
    no_status = not ws.source.has("status")
    report |= {
        "rows": w.requests,
        "errors": None if no_status else w.errors,
        "error_rate": None if no_status else w.error_rate,
        "requests_per_minute": w.requests_per_minute,
        "latency_ms": {"p50": w.p50, "p95": w.p95, "p99": w.p99, "method": w.method},
        "failed_latency_ms": {"p50": w.failed_p50, "p95": w.failed_p95, "p99": w.failed_p99},
        "slo": {"p95_latency_ms": cfg.slo.p95_latency_ms, "error_rate": cfg.slo.error_rate,
                "p95_ok": None if w.p95 is None else w.p95 <= cfg.slo.p95_latency_ms,
                "error_rate_ok": None if w.error_rate is None else w.error_rate <= cfg.slo.error_rate},
        "bucket": bucket,
        "buckets": [
            {"start": r["time"], "requests": r["requests"], "errors": r["errors"],
             "error_rate": r["error_rate"], "requests_per_minute": r["rpm"],
             "p50": r["p50"], "p95": r["p95"], "p99": r["p99"]}
            for r in s.buckets.iter_rows(named=True)
        ],
    }
    if no_status:
        for b in report["buckets"]:
            b["errors"] = b["error_rate"] = None
    if w.requests == 0:
        report["message"] = "no valid rows in this window"
    elif report["missing"]:
        report["message"] = " ".join(report["missing"])
    return report


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(v, float):
        return f"{v:,.1f}{unit}"
    return f"{v:,}{unit}"


def stats_table(r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    lines = [
        f"logs      {r['logs']}  ({r['files']} files)",
        f"window    {_fmt(r['start'])} .. {_fmt(r['end'])}  (bucket {r['bucket']})",
        f"rows      {_fmt(r['rows'])}   errors {_fmt(r['errors'])}   error rate "
        + ("-" if r["error_rate"] is None else f"{r['error_rate']:.3%}"),
        f"latency   p50 {_fmt(lat['p50'], ' ms')}   p95 {_fmt(lat['p95'], ' ms')}   "
        f"p99 {_fmt(lat['p99'], ' ms')}   ({lat['method']})",
        f"traffic   {_fmt(r['requests_per_minute'])} requests/minute",
    ]
    for c in r.get("ignored_columns", []):
        lines.append(f"ignored column   {c['column']}: {c['reason']}")
    for p, reason in [(b["path"], b["reason"]) for b in r["bad_files"]]:
        lines.append(f"unreadable file  {p}: {reason}")
    for reason, n in r["invalid_rows"].items():
        lines.append(f"invalid rows     {reason}: {n:,}")
    outside = {k: v - r["invalid_rows"].get(k, 0) for k, v in r.get("invalid_rows_all_logs", {}).items()}
    for reason, n in outside.items():
        if n > 0:
            lines.append(f"invalid rows outside the window  {reason}: {n:,}")
    for w in r["warnings"]:
        lines.append(f"warning   {w}")
    if r.get("message"):
        lines.append(r["message"])
    if r["buckets"]:
        lines.append("")
        lines.append(f"{'start (UTC)':<22}{'requests':>10}{'errors':>8}{'err %':>8}{'p50':>10}{'p95':>10}{'p99':>10}")
        for b in r["buckets"]:
            er = "-" if b["error_rate"] is None else f"{b['error_rate'] * 100:.2f}"
            errs = "-" if b["errors"] is None else f"{b['errors']:,}"
            lines.append(f"{b['start'].strftime('%Y-%m-%d %H:%M'):<22}{b['requests']:>10,}{errs:>8}{er:>8}"
                         f"{_fmt(b['p50']):>10}{_fmt(b['p95']):>10}{_fmt(b['p99']):>10}")
    return "\n".join(str(x) for x in lines)

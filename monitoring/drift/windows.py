"""What is compared with what: the reference (a file or a window of the logs) and the
current window, turned into engine `Side`s over one workspace.

    ref = resolve_reference(ws.config, settings, ext)            # file, [drift] window or default
    result = analyze(ws, ref, Filters(start=..., end=...), settings)

The default reference, when neither a file nor a window is given, is the first
`default_reference_days` (7) days of the logs, or their first half when they span less
than twice that; the current window then defaults to everything after the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import duckdb
import polars as pl

from ..config import Config
from ..logs.source import INTEGER_TYPES, NUMERIC_TYPES, LogSource, open_source, quote_ident
from ..logs.workspace import Workspace
from ..quality.ground_truth import LabelsError
from ..query.filters import Extent, Filters, whole_range
from ..rollup import read
from ..rollup.read import NotCovered
from . import bandstore, classes, fromstore
from .chunks import parse
from .distribution import distribution
from .engine import Column, DriftResult, Side, compare
from .labels import LateLabels, late_labels
from .overtime import OverTime, calibrate, over_time
from .quality import type_changes
from .settings import DriftSettings


@dataclass(frozen=True)
class Reference:
    """The reference: a Parquet file (`path`) or a window [start, end) of the logs."""

    kind: str  # "file" | "window"
    path: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    origin: str = ""  # where it came from: "flag", "config", "page", "default"

    def describe(self) -> str:
        if self.kind == "file":
            return f"reference file {self.path}"
        text = f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"
        if self.origin == "default":
            text += " (default: the first days of the logs)"
        return text


def default_window(ext: Extent, days: int = 7) -> tuple[datetime, datetime]:
    """The first `days` days of the logs, or their first half when they span < 2 x days."""
    first, last = whole_range(ext)
    span = last - first
    length = timedelta(days=days) if span >= timedelta(days=2 * days) else span / 2
    end = first + length
    if length >= timedelta(days=1):
        # whole days read better and match daily chunks
        end = end.replace(hour=0, minute=0, second=0, microsecond=0)
        end = max(end, first + timedelta(minutes=1))
    return first, end


def resolve_reference(cfg: Config, settings: DriftSettings, ext: Extent, *, file: str | None = None,
                      start: datetime | None = None, end: datetime | None = None) -> Reference:
    """Explicit file or window first, then `reference` (MONITORING_REFERENCE), then the
    [drift] window of monitoring.toml, then the default window."""
    if file and (start or end):
        raise ValueError("give either a reference file or a reference window, not both")
    if (start is None) != (end is None):
        raise ValueError("a reference window needs both a start and an end")
    if file:
        return Reference("file", path=file, origin="flag")
    if start is not None and end is not None:
        if end <= start:
            raise ValueError("the reference window must end after it starts")
        return Reference("window", start=start, end=end, origin="flag")
    if cfg.reference:
        return Reference("file", path=cfg.reference, origin="config")
    if settings.reference_start and settings.reference_end:
        return Reference("window", start=settings.reference_start, end=settings.reference_end,
                         origin="config")
    if ext.rows == 0:
        raise ValueError("the logs hold no valid rows")
    if ext.first is None:
        raise ValueError("these logs have no timestamp, so no reference window can be taken from "
                         "them: set a reference file (MONITORING_REFERENCE, or reference = \"...\" "
                         "in monitoring.toml), e.g. a sample of the training data")
    s, e = default_window(ext, settings.default_reference_days)
    return Reference("window", start=s, end=e, origin="default")


def default_current(ref: Reference, ext: Extent) -> Filters:
    """Everything after a reference window, or the whole logs against a reference file."""
    if ext.first is None:
        return Filters()   # no time: the whole log
    first, last = whole_range(ext)
    if ref.kind == "window" and ref.end is not None and ref.end < last:
        return Filters(start=max(ref.end, first), end=last)
    return Filters(start=first, end=last)


# -- sides and columns ---------------------------------------------------------------------------

def columns(source: LogSource, cfg: Config | None = None, *, late: LateLabels | None = None) -> list[Column]:
    """Prediction, score and label (when present, or from a labels file: `late`),
    the per-class probabilities `[columns] class_scores` declares and their maximum (the
    model's confidence), then every other feature the logs have."""
    out = []
    for name in ("prediction", "label"):
        if source.has(name) or (name == "label" and late is not None):
            typ = source.types.get(name, "")
            numeric = typ in NUMERIC_TYPES or typ.startswith("DECIMAL")
            if name == "label" and late is not None:  # compared by value, as the quality pages do
                numeric, typ = late.kind == "numeric", ""
            out.append(Column(name, name, "numeric" if numeric else "categorical",
                              integer=typ in INTEGER_TYPES))
    if source.has("score"):
        out.append(Column("score", "score", "numeric"))
    per_class = classes.of(source, cfg) if cfg is not None else []
    out += [Column(c.column, classes.ROLE, "numeric", cls=c.cls) for c in per_class]
    if per_class:
        out.append(Column(classes.max_name(source), classes.MAX_ROLE, "numeric"))
    taken = {c.column for c in per_class}
    for f in source.features:
        if f.name not in taken:
            out.append(Column(f.name, "feature", f.kind, integer=f.dtype in INTEGER_TYPES))
    return out


def logs_side(source: LogSource, filters: Filters, name: str, *, prefix: str = "",
              description: str = "", late: LateLabels | None = None) -> Side:
    """Rows of the logs in `filters`; params are prefixed so two windows can share a query.
    `late`: the labels file, joined by request id (its label wins over the logs' own)."""
    cond, params = filters.where()
    if prefix:
        for key in sorted(params, key=len, reverse=True):
            cond = cond.replace(f"${key}", f"${prefix}{key}")
        params = {prefix + k: v for k, v in params.items()}
    exprs = {"prediction": "prediction", "score": "score", "label": "label"}
    exprs |= {f.name: f.col for f in source.features}
    ctes, rows_sql, more = (("logs", source.base_sql()),), f"logs WHERE {cond}", {}
    if late is not None:
        ctes += ((late.cte, late.sql),)
        rows_sql = f"logs LEFT JOIN {late.cte} ON {late.cte}.{late.id_col} = logs.request_id WHERE {cond}"
        exprs["label"] = late.label_expr
        more = late.params
    return Side(name=name, ctes=ctes, rows_sql=rows_sql,
                params={"files": source.files, **params, **more}, exprs=exprs,
                ts_us="ts_us" if source.has_time else None,
                order_sql="row_seq" if not source.has_time else "ts_us, row_seq",
                description=description)


def only_rows(side: Side, first: int, last: int) -> Side:
    """The rows of `side` at positions first..last (0-based, inclusive) in its order."""
    order = side.order_sql or side.ts_us
    body = (f"(SELECT * FROM {side.rows_sql} QUALIFY row_number() OVER (ORDER BY {order}) - 1 "
            f"BETWEEN $rows_first AND $rows_last) AS {side.name}_rows")
    return replace(side, rows_sql=body, params=side.params | {"rows_first": int(first), "rows_last": int(last)},
                   description=f"{side.description}, rows {first:,} to {last:,}")


def file_side(ref: LogSource, names: list[str], description: str = "") -> Side:
    """Every row of a reference file; columns it lacks read as NULL."""
    scan = ref.scan_sql.replace("$files", "$ref_files")
    # the file's own row order, for chunks of the reference (`overtime.calibrate`)
    ordered = all("file_row_number" not in t for t in ref.file_types.values())
    if ordered:
        scan = scan.replace("read_parquet($ref_files,", "read_parquet($ref_files, file_row_number=true,")
    by_name = {f.name: f.expr for f in ref.features}
    exprs = {}
    for n in names:
        if n in ("prediction", "score", "label") and ref.has(n):
            exprs[n] = ref.expr(n)
        else:
            exprs[n] = by_name.get(n, "NULL")
    return Side(name="reference", ctes=(("ref_raw", f"SELECT * FROM {scan}"),), rows_sql="ref_raw",
                params={"ref_files": ref.files}, exprs=exprs, description=description,
                order_sql=f"{quote_ident(ref.file_col)}, file_row_number" if ordered else None)


def open_reference(path: str, cfg: Config, con: duckdb.DuckDBPyConnection) -> LogSource:
    """Open a reference Parquet file (serving columns optional); raises LogSourceError."""
    return open_source(path, cfg, con, reference=True)


@dataclass(frozen=True)
class Plan:
    """Both sides, the columns and what the reference file lacks, ready for the engine."""

    reference: Side
    current: Side
    columns: list[Column]
    file_types: dict[str, tuple[str, ...]]
    warnings: tuple[str, ...]


def plan(ws: Workspace, ref: Reference, filters: Filters, *, ref_source: LogSource | None = None,
         rows: tuple[int, int] | None = None) -> Plan:
    """Sides and columns; `rows` (first, last) keeps only those positions of the window
    (in its order: time, or file order for logs without time), e.g. one chunk."""
    source = ws.source
    warnings: list[str] = []
    try:
        late = late_labels(ws)
    except LabelsError as exc:  # the rest of drift does not need the labels: say why, go on
        late = None
        warnings.append(f"{exc}: label drift uses the logs' own labels only")
    cols = columns(source, ws.config, late=late)
    current = logs_side(source, filters, "current", description=_window_text(filters), late=late)
    if rows is not None:
        current = only_rows(current, *rows)
    all_files = dict(source.file_types)
    if ref.kind == "file":
        ref_source = ref_source or open_reference(ref.path, ws.config, ws.con)
        reference = file_side(ref_source, [c.name for c in cols], description=ref.describe())
        if late is not None and ref_source.has("label"):
            reference = replace(reference, exprs=reference.exprs | {
                "label": late.compared(ref_source.expr("label"), ref_source.types.get("label", ""))})
        present = {f.name for f in ref_source.features} | {c for c in ("prediction", "score", "label")
                                                            if ref_source.has(c)}
        present |= {c.name for c in cols if c.role == classes.MAX_ROLE}
        missing = [c.name for c in cols if c.name not in present]
        if missing:
            warnings.append(f"the reference file lacks {len(missing)} column(s) of the logs "
                            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}): not compared")
        all_files |= {f"reference:{k}": v for k, v in ref_source.file_types.items()}
    else:
        ref_filters = Filters(start=ref.start, end=ref.end, model_name=filters.model_name)
        reference = logs_side(source, ref_filters, "reference", prefix="ref_", description=ref.describe(),
                              late=late)
    confidence = [c for c in cols if c.role == classes.MAX_ROLE]
    if confidence:  # the row-wise maximum of the class probabilities, on both sides
        per_class = [c.name for c in cols if c.role == classes.ROLE]
        reference, current = (replace(side, exprs=side.exprs | {
            confidence[0].name: classes.max_sql([side.exprs[n] for n in per_class])})
            for side in (reference, current))
    types = {}
    for c in cols:
        raw = source.columns.get(c.name) if c.role != "feature" else c.name
        changes = type_changes(all_files, raw or c.name)
        if changes:
            types[c.name] = changes
    return Plan(reference, current, cols, types, tuple(warnings))


def store_windows(ws: Workspace, ref: Reference, filters: Filters, p: Plan):
    """(store, reference filters, current filters) on whole UTC days when the workspace's
    rollup store can answer this comparison; else NotCovered, with the reason."""
    store, ref_f = store_reference(ws, ref, filters, p)
    return store, ref_f, fromstore.day_window(filters, ws.extent.first, ws.extent.last)


def store_reference(ws: Workspace, ref: Reference, filters: Filters, p: Plan):
    """(store, reference filters on whole UTC days) when the store answers the reference."""
    store = getattr(ws.source, "rollups", None)
    if store is None:
        raise NotCovered("no rollup store covers these logs")
    if not getattr(store, "complete", True):
        raise NotCovered("the rollups do not cover every log file as it is now")
    if ref.kind != "window":
        raise NotCovered("a reference file is not in the rollups")
    if p.current.exprs.get("label") != "label":
        raise NotCovered("labels from a labels file are not in the rollups")
    store.check(ws.source)
    ref_f = Filters(start=ref.start, end=ref.end, model_name=filters.model_name)
    return store, fromstore.day_window(ref_f, ws.extent.first, ws.extent.last)


def _store_points(ws: Workspace, ref: Reference, filters: Filters, p: Plan, result: DriftResult):
    """The reference's order statistics of `result`'s numeric columns from the store's bins
    (`fromstore.reference_points`), or None when the store cannot say."""
    try:
        store, ref_f = store_reference(ws, ref, filters, p)
        ours = {(f.name, f.role) for f in result.all}
        return fromstore.reference_points(ws.con, store, ref_f, [c for c in p.columns if (c.name, c.role) in ours])
    except NotCovered:
        return None


def _store_minutes(ws: Workspace, store, ref_f: Filters):
    """The reference's rows per minute (unit, n) from the store's traffic table, or None
    (the calibration counts them from the logs) when the store cannot say."""
    try:
        return read.minute_counts(store, ws.con, ref_f, 0).rename({"minute": "unit"})
    except NotCovered:
        return None


def _window_text(f: Filters) -> str:
    if f.start is None or f.end is None:
        return "all logs"
    return f"{f.start:%Y-%m-%d %H:%M} to {f.end:%Y-%m-%d %H:%M} UTC"


def analyze(ws: Workspace, ref: Reference, filters: Filters, settings: DriftSettings, *,
            ref_source: LogSource | None = None, rows: tuple[int, int] | None = None) -> DriftResult:
    """Drift of every column of the logs in `filters` (positions `rows` of it, when
    given: one chunk) against `ref`."""
    p = plan(ws, ref, filters, ref_source=ref_source, rows=rows)
    band_store = bandstore.for_folder(ws.config.data_dir)  # the bands a restarted server reads back
    result, minutes = None, None
    if rows is None:
        try:
            store, ref_f, cur_f = store_windows(ws, ref, filters, p)
            # the reference's rows per minute, for the calibration's chunks (`timeruns`)
            minutes = lambda: _store_minutes(ws, store, ref_f)  # noqa: E731
            result, _ = fromstore.compare_store(ws.con, store, ref_f, cur_f, p.columns, settings,
                                                (p.reference.description, p.current.description),
                                                band_store=band_store)
        except NotCovered:
            result = None  # the raw engine answers, unchanged
    if result is None:
        result = compare(ws.con, p.reference, p.current, p.columns, settings, file_types=p.file_types,
                         band_store=band_store)
    result = calibrate(ws.con, p.reference, p.columns, result, minutes=minutes)
    if result.bands is not None:
        result.bands.save()
    if p.warnings:
        result = replace(result, warnings=p.warnings + result.warnings)
    return result


def distribution_of(ws: Workspace, ref: Reference, filters: Filters, result: DriftResult, name: str,
                    role: str, *, ref_source: LogSource | None = None,
                    rows: tuple[int, int] | None = None) -> pl.DataFrame:
    """The chart of one column of `result` (the comparison of `filters`, or of positions
    `rows` of it): its counts when categorical; a numeric column's from the rollup store's
    bins when the store answered the comparison (`fromstore.distribution_store`), else from
    the raw logs (`distribution.distribution`)."""
    f = result.get(name, role)
    p = plan(ws, ref, filters, ref_source=ref_source, rows=rows)
    if (rows is None and f.kind == "numeric" and result.origin == fromstore.ORIGIN
            and f.reference is not None and f.current is not None):
        try:
            store, ref_f, cur_f = store_windows(ws, ref, filters, p)
            column = next(c for c in p.columns if (c.name, c.role) == (name, role))
            return fromstore.distribution_store(ws.con, store, ref_f, cur_f, column)
        except NotCovered:
            pass  # the raw logs draw it
    return distribution(ws.con, p.reference, p.current, f)


def analyze_over_time(ws: Workspace, ref: Reference, filters: Filters, result: DriftResult,
                      settings: DriftSettings, chunk: str | None = None, *,
                      chunk_rows: int | None = None, ref_source: LogSource | None = None,
                      joint: bool = False) -> OverTime:
    """Per-chunk scores of the current window (chunk: auto, hour, day, week, month,
    rows:N or rows; default [drift] chunk)."""
    p = plan(ws, ref, filters, ref_source=ref_source)
    points = None
    try:
        if result.origin == fromstore.ORIGIN:
            try:
                store, ref_f, cur_f = store_windows(ws, ref, filters, p)
                return fromstore.over_time_store(ws.con, store, ref_f, cur_f, p.columns, result,
                                                 parse(chunk or settings.chunk, chunk_rows or settings.chunk_rows))
            except NotCovered:
                # hour or row chunks: the raw logs, counted against the same edges, and merged
                # with the reference's order statistics read off the same store bins (when it
                # covers the reference) instead of sorting its values
                points = _store_points(ws, ref, filters, p, result)
        return over_time(ws.con, p.reference, p.current, p.columns, result, chunk or settings.chunk,
                         chunk_rows=chunk_rows or settings.chunk_rows, exact_max_rows=settings.exact_max_rows,
                         joint=joint, reference_points=points)
    finally:
        if result.bands is not None:   # the chunks' bands, for the next process
            result.bands.save()

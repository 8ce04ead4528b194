"""Late ground truth: the true value of each served prediction, from labels that arrived
after serving, joined to the logs in DuckDB.

Labels come from the logs' own `label` column, from the labels file (`labels` setting /
`MONITORING_LABELS`: Parquet or CSV, its columns named in monitoring.toml `[labels]`), and
from reviewers' resolved verdicts in the product's database (labelling queues). Where several
exist for a request the file wins, then the reviewers, then the logs.

Values are compared after coercion, so 1 == 1.0 == "1" == " 1 " (numbers by value, text
trimmed, true/false in any case). A float prediction means regression: labels are read as
numbers and scored by error metrics (monitoring.quality), never by equality, and no
accuracy is reported for it.

    [labels]                 # the labels file's own column names (defaults shown)
    path = "labels.parquet"  # or the top-level `labels` setting / MONITORING_LABELS
    id = "request_id"
    label = "label"
    labeled_at = "labeled_at"   # optional in the file

    truth_sql(ws, spec)              # SQL of served rows with truth, correct, labeled_at, source
    accuracy_by_bucket(ws, 3600)     # bucket, labelled, correct (classification only)
    window_accuracy(ws, start, end)  # {"accuracy", "accuracy_ci", "labelled", "correct"}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from ..config import Config, ConfigError, Setting, did_you_mean, register_section
from ..logs.source import (
    INTEGER_TYPES,
    NUMERIC_TYPES,
    LogSourceError,
    quote_ident,
    resolve_paths,
    run,
)
from ..logs.workspace import Workspace
from ..query.filters import Filters, bucket_sql
from . import accuracy

LABEL_KEYS = {"path": None, "id": "request_id", "label": "label", "labeled_at": "labeled_at"}
LABEL_HELP = {"path": "the labels file (when the top-level `labels` setting is not used)",
              "id": "column of the labels file holding the request id",
              "label": "column holding the true value",
              "labeled_at": "column holding when the label arrived (optional in the file)"}
FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")


register_section("labels", tuple(
    Setting(k, d, LABEL_HELP[k], kind=str) for k, d in LABEL_KEYS.items()))


class LabelsError(LogSourceError):
    """The labels file or its mapping cannot be used; one sentence a person can act on."""


@dataclass(frozen=True)
class LabelsMapping:
    path: str | None = None
    id: str = "request_id"
    label: str = "label"
    labeled_at: str = "labeled_at"


def labels_mapping(cfg: Config) -> LabelsMapping:
    """[labels] of monitoring.toml, validated; raises ConfigError naming the key."""
    section = cfg.section("labels")
    values = {}
    for key, value in section.items():
        if key not in LABEL_KEYS:
            raise ConfigError(f"[labels] unknown key {key!r}{did_you_mean(key, LABEL_KEYS)}; "
                              f"known: {', '.join(LABEL_KEYS)}")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"[labels] {key} must name a column of the labels file, got {value!r}")
        values[key] = value
    return LabelsMapping(**values)


# -- value coercion -------------------------------------------------------------------------

def _num_text(d: str) -> str:
    # An integral number prints as an integer (1.0 -> '1'), any other as DuckDB's shortest text.
    return (f"CASE WHEN NOT isfinite({d}) THEN CAST({d} AS VARCHAR) "
            f"WHEN {d} = trunc({d}) AND abs({d}) < 9e15 THEN CAST(CAST({d} AS BIGINT) AS VARCHAR) "
            f"ELSE CAST({d} AS VARCHAR) END")


def canon(expr: str, typ: str) -> str:
    """SQL text of a value compared by value: 1, 1.0 and '1' give '1'; text is trimmed and
    true/false lower-cased. `typ` is the DuckDB type of `expr`."""
    if typ in INTEGER_TYPES:
        return f"CAST({expr} AS VARCHAR)"
    if typ in FLOAT_TYPES or typ.startswith("DECIMAL"):
        return _num_text(f"CAST({expr} AS DOUBLE)")
    if typ == "BOOLEAN":
        return f"CAST({expr} AS VARCHAR)"
    t = f"trim(CAST({expr} AS VARCHAR))"
    d = f"TRY_CAST({t} AS DOUBLE)"
    return (f"CASE WHEN {d} IS NOT NULL AND isfinite({d}) THEN {_num_text(d)} "
            f"WHEN lower({t}) IN ('true', 'false') THEN lower({t}) "
            f"WHEN {t} = '' THEN NULL ELSE {t} END")


def as_number(expr: str, typ: str) -> str:
    if typ in NUMERIC_TYPES or typ.startswith("DECIMAL"):
        return f"CAST({expr} AS DOUBLE)"
    return f"TRY_CAST(trim(CAST({expr} AS VARCHAR)) AS DOUBLE)"


# -- the labels file ------------------------------------------------------------------------

def labels_path(cfg: Config) -> str | None:
    """The labels file: the `labels` setting (MONITORING_LABELS, --labels) or [labels] path."""
    return cfg.labels or cfg.section("labels").get("path") or None


@dataclass(frozen=True)
class LabelsFile:
    paths: tuple[str, ...]
    mapping: LabelsMapping
    types: dict[str, str]          # id / label / labeled_at -> DuckDB type (absent: missing)

    @property
    def scan(self) -> str:
        if all(p.lower().endswith((".csv", ".csv.gz")) for p in self.paths):
            return "read_csv($label_files, union_by_name=true)"
        return "read_parquet($label_files, union_by_name=true)"


def open_labels(cfg: Config, con) -> LabelsFile | None:
    """The configured labels file, checked: its id and label columns exist. None when no file
    is configured; LabelsError (one sentence) when it cannot be used."""
    mapping = labels_mapping(cfg)
    path = labels_path(cfg)
    if not path:
        return None
    try:
        paths = tuple(resolve_paths(path))
    except LogSourceError as exc:
        raise LabelsError(f"labels file: {exc}") from exc
    probe = LabelsFile(paths, mapping, {})
    try:
        described = run(con, f"DESCRIBE SELECT * FROM {probe.scan}", {"label_files": list(paths)})
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LabelsError(f"labels file {path} cannot be read: {first[:200]}") from exc
    have = dict(zip(described["column_name"].to_list(), described["column_type"].to_list(), strict=True))
    types = {}
    for key in ("id", "label", "labeled_at"):
        col = getattr(mapping, key)
        if col in have:
            types[key] = have[col]
        elif key != "labeled_at":
            raise LabelsError(
                f"labels file {path} has no column {col!r}{did_you_mean(col, have)} for the "
                f"{key}; its columns are {', '.join(list(have)[:12])}; set [labels] {key} = \"...\" "
                "in monitoring.toml")
    return LabelsFile(paths, mapping, types)


def file_labels_sql(lf: LabelsFile, value, *, id_as: str = "request_id",
                    label_as: str = "label") -> tuple[str, dict[str, Any]]:
    """SELECT of one row per request id of the labels file (id as trimmed text, the label
    through `value(expr, type)`, e.g. `canon`), and its params; for label drift."""
    lid, lab = quote_ident(lf.mapping.id), quote_ident(lf.mapping.label)
    sql = (f"SELECT trim(CAST({lid} AS VARCHAR)) AS {quote_ident(id_as)}, "
           f"any_value({value(lab, lf.types['label'])}) AS {quote_ident(label_as)} "
           f"FROM {lf.scan} WHERE {lab} IS NOT NULL GROUP BY 1")
    return sql, {"label_files": list(lf.paths)}


# -- reviewers ------------------------------------------------------------------------------

def reviewed_labels(database_url: str | None) -> pl.DataFrame | None:
    """Reviewers' decisive verdicts (request_id, correct, label, labeled_at) from the
    product's database, or None when there is no database or no answer yet."""
    if not database_url:
        return None
    from ..labelling.db import DatabaseError, open_db

    try:
        engine = open_db(database_url)
    except DatabaseError:
        return None
    try:
        return reviewed_from(engine)
    except Exception:  # an unreadable database must not hide the late labels
        return None
    finally:
        engine.dispose()


def reviewed_from(engine) -> pl.DataFrame | None:
    """The same from an open labelling database engine."""
    from ..labelling.results import ground_truth

    gt = ground_truth(engine)
    return gt.select("request_id", "correct", "label", "labeled_at") if gt.height else None


# -- the join -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Truth:
    """What truth_sql needs: the task decides how values are compared."""
    task: str                                   # "classification" | "regression"
    labels: LabelsFile | None = None
    reviewed: pl.DataFrame | None = None
    as_of: datetime | None = None               # labels that arrived later are not known yet


def task_of(ws: Workspace, override: str | None = None) -> str:
    """'regression' for a float prediction, else 'classification' (or the override)."""
    if override in ("classification", "regression"):
        return override
    typ = ws.source.types.get("prediction", "")
    return "regression" if typ in FLOAT_TYPES or typ.startswith("DECIMAL") else "classification"


def truth_sql(ws: Workspace, t: Truth) -> tuple[str, dict[str, Any], dict[str, pl.DataFrame]]:
    """A SELECT over `logs` (alias l) of every successful request with a prediction:
    l.*, pred (compared form), truth, correct (classification), labeled_at, label_source.
    Returns (sql, params, tables for run's `tables`). Empty sql when nothing can be scored."""
    src = ws.source
    if not src.has("prediction"):
        return "", {}, {}
    params: dict[str, Any] = {}
    tables: dict[str, pl.DataFrame] = {}
    reg = t.task == "regression"
    ptype = src.types.get("prediction", "")
    pred = as_number("l.prediction", ptype) if reg else canon("l.prediction", ptype)
    value = (lambda e, ty: as_number(e, ty)) if reg else (lambda e, ty: canon(e, ty))
    joins, cases, at = "", [], []          # cases: (condition, source name, truth expression)
    if t.labels is not None:
        lf = t.labels
        params["label_files"] = list(lf.paths)
        m = lf.mapping
        lid, lab = quote_ident(m.id), quote_ident(m.label)
        when = f"{lab} IS NOT NULL"
        lat = "NULL"
        if "labeled_at" in lf.types:
            lat_col = quote_ident(m.labeled_at)
            lat = lat_col if lf.types["labeled_at"].startswith("TIMESTAMP") else f"TRY_CAST({lat_col} AS TIMESTAMPTZ)"
            if t.as_of is not None:
                when += f" AND ({lat} IS NULL OR {lat} <= $labels_as_of)"
                params["labels_as_of"] = t.as_of
        joins += (f"LEFT JOIN (SELECT trim(CAST({lid} AS VARCHAR)) AS request_id, "
                  f"any_value({value(lab, lf.types['label'])}) AS label, min({lat}) AS labeled_at "
                  f"FROM {lf.scan} WHERE {when} GROUP BY 1) f ON f.request_id = l.request_id ")
        cases.append(("f.label IS NOT NULL", "file", "f.label"))
        at.append(("file", "f.labeled_at"))
    reviewed = t.reviewed is not None and t.reviewed.height > 0
    if reviewed:
        r = t.reviewed
        cols = [pl.col("request_id").cast(pl.String), pl.col("correct").cast(pl.Boolean)]
        cols.append((pl.col("label").cast(pl.String) if "label" in r.columns else pl.lit(None, pl.String)).alias("label"))
        cols.append((pl.col("labeled_at") if "labeled_at" in r.columns
                     else pl.lit(None, pl.Datetime("us", "UTC"))).alias("labeled_at"))
        tables["reviewed"] = r.select(cols)
        joins += "LEFT JOIN reviewed r ON r.request_id = l.request_id "
        rcond = "r.correct IS NOT NULL"
        if t.as_of is not None:
            rcond += " AND (r.labeled_at IS NULL OR r.labeled_at <= $labels_as_of)"
            params["labels_as_of"] = t.as_of
        # A verdict "correct" makes the prediction the label; "wrong" carries the corrected
        # label when the reviewer gave one (else it counts for accuracy only).
        cases.append((rcond, "review", f"CASE WHEN r.label IS NOT NULL THEN {value('r.label', 'VARCHAR')} "
                                       f"WHEN r.correct THEN {pred} END"))
        at.append(("review", "r.labeled_at"))
    if src.has("label"):
        cases.append(("l.label IS NOT NULL", "log", value("l.label", src.types.get("label", ""))))
    if not cases:
        return "", {}, {}
    source_case = "CASE " + " ".join(f"WHEN {c} THEN '{name}'" for c, name, _ in cases) + " END"
    truth_case = "CASE " + " ".join(f"WHEN {c} THEN {e}" for c, _, e in cases) + " END"
    at_case = "NULL"
    if at:
        at_case = "CASE " + " ".join(f"WHEN {c} THEN {dict(at)[name]}" for c, name, _ in cases
                                     if name in dict(at)) + " END"
    inner = (f"SELECT l.*, {pred} AS pred, {source_case} AS label_source, {truth_case} AS truth, "
             f"CAST({at_case} AS TIMESTAMPTZ) AS labeled_at"
             + (", r.correct AS review_correct" if reviewed else "")
             + f" FROM logs l {joins}WHERE NOT coalesce(l.is_error, false) AND l.prediction IS NOT NULL")
    correct = "NULL::BOOLEAN" if reg else (
        "CASE WHEN truth IS NOT NULL THEN pred = truth "
        + ("WHEN label_source = 'review' THEN review_correct " if reviewed else "") + "END")
    return f"SELECT *, {correct} AS correct FROM ({inner}) AS j", params, tables


def query(ws: Workspace, t: Truth, body: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
    """Run `body`, which reads the truth rows as the table `truth_rows`; a broken labels file
    gives one sentence (LabelsError), never a binder error."""
    sql, p, tables = truth_sql(ws, t)
    if not sql:
        raise LabelsError("no labels: the logs have no label column, and no labels file or "
                          "reviewed answer is set")
    # source.query prefixes "WITH logs AS (...)": a second CTE follows it with a comma.
    return _run(ws, t, f", truth_rows AS ({sql}) {body}", {**p, **(params or {})}, tables)


def _run(ws: Workspace, t: Truth, body: str, params: dict[str, Any], tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    try:
        return ws.source.query(ws.con, body, params, tables=tables or None)
    except LogSourceError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"labels file {labels_path(ws.config)}" if t.labels is not None else "the labels"
        raise LabelsError(f"{where} could not be joined to the logs: {first[:200]}") from exc


def no_shared_values(ws: Workspace, t: Truth) -> str | None:
    """A warning when labels and predictions of a classifier share no value (every labelled
    prediction would count as wrong), e.g. 'yes'/'no' labels against 1/0 predictions."""
    if t.task != "classification":
        return None
    df = query(ws, t, "SELECT pred, truth FROM truth_rows WHERE truth IS NOT NULL GROUP BY ALL")
    return shared_warning(set(df["pred"].to_list()), set(df["truth"].to_list()))


def shared_warning(preds: set, truths: set) -> str | None:
    """The warning of no_shared_values from the labelled rows' distinct values."""
    if preds and truths and not preds & truths:
        ex = lambda s: ", ".join(repr(v) for v in sorted(s, key=str)[:3])  # noqa: E731
        return (f"labels ({ex(truths)}) and predictions ({ex(preds)}) share no value: every labelled "
                "prediction counts as wrong; check [labels] label and the label encoding")
    return None


def default_truth(ws: Workspace, *, reviewed: pl.DataFrame | None = None, task: str | None = None,
                  as_of: datetime | None = None) -> Truth:
    return Truth(task=task_of(ws, task), labels=open_labels(ws.config, ws.con), reviewed=reviewed, as_of=as_of)


# -- accuracy (the alert engine and the weekly summary) ---------------------------------------

def available(ws: Workspace, reviewed: pl.DataFrame | None = None) -> bool:
    """True when late accuracy can be computed: a classifier with some source of labels."""
    try:
        t = default_truth(ws, reviewed=reviewed)
    except (LabelsError, ConfigError):
        return bool(labels_path(ws.config))   # a broken file: accuracy_by_bucket says why
    return t.task == "classification" and bool(truth_sql(ws, t)[0])


def accuracy_by_bucket(ws: Workspace, bucket_s: int, f: Filters | None = None,
                       reviewed: pl.DataFrame | None = None, by_version: bool = False) -> pl.DataFrame:
    """Labelled and correct requests per time bucket (index since the epoch), and per model
    version (column `v`) with `by_version`; empty for a regression model (no accuracy).
    With the logs' own labels only, stored pairs are counted first (quality/accuracy.py)."""
    v = ("v",) if by_version else ()
    empty = pl.DataFrame(schema={"bucket": pl.Int64, **dict.fromkeys(v, pl.String), "labelled": pl.Int64,
                                 "correct": pl.Int64})
    t = default_truth(ws, reviewed=reviewed)
    if t.task != "classification" or not truth_sql(ws, t)[0]:
        return empty
    cond, fparams = (f or Filters()).where()
    params = fparams | {"bucket_us": bucket_s * 1_000_000}
    keys = {"bucket": bucket_sql("ts_us", "$bucket_us"), **({"v": "model_version"} if by_version else {})}
    if t.labels is None and (t.reviewed is None or t.reviewed.height == 0) and ws.source.has("label"):
        # The logs' own labels only, nothing to join: count stored pairs first (quality/accuracy.py).
        types = ws.source.types
        return _run(ws, t, accuracy.grouped_sql(keys, f"ts_us IS NOT NULL AND {cond}",
                                                canon("p", types.get("prediction", "")),
                                                canon("lab", types.get("label", ""))), params, {})
    return query(ws, t, f"SELECT {', '.join(f'{e} AS {k}' for k, e in keys.items())}, count(*) AS labelled, "
                        f"CAST(count_if(correct) AS BIGINT) AS correct FROM truth_rows "
                        f"WHERE correct IS NOT NULL AND ts_us IS NOT NULL AND {cond} GROUP BY ALL ORDER BY ALL",
                 params)


def window_accuracy(ws: Workspace, start: datetime, end: datetime,
                    reviewed: pl.DataFrame | None = None) -> dict[str, Any] | None:
    """Accuracy of the labelled requests served in [start, end) with a 95% Wilson interval;
    None when there are no labels or the model is a regressor."""
    if not available(ws, reviewed):
        return None
    df = accuracy_by_bucket(ws, 86400, Filters(start=start, end=end), reviewed)
    return accuracy_figures(int(df["labelled"].sum() or 0), int(df["correct"].sum() or 0))


def accuracy_figures(n: int, k: int) -> dict[str, Any]:
    """window_accuracy's figures from n labelled requests, k of them correct."""
    from ..labelling.stats import wilson_interval

    if n == 0:
        return {"accuracy": None, "accuracy_ci": None, "labelled": 0, "correct": 0}
    low, high = wilson_interval(k, n)
    return {"accuracy": k / n, "accuracy_ci": [low, high], "labelled": n, "correct": k}

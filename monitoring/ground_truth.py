"""Late ground truth: how often the model was right, from labels that arrived after serving.

Labels come from the logs' own `label` column, from `MONITORING_LABELS` when it names a
Parquet file (request_id, label, optional labeled_at), and from reviewers' resolved verdicts
in the product's database (labelling queues). Where several exist for a request the file wins,
then the reviewers, then the logs. Only class predictions are scored (a string prediction
equal to its label is correct; a reviewer's verdict says so directly); regression outputs
are left to a future error metric.

    accuracy_by_bucket(ws, 3600)     # bucket, labelled, correct
    window_accuracy(ws, start, end)  # {"accuracy", "accuracy_ci", "labelled", "correct"}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from .queries import Filters, bucket_sql
from .source import LogSourceError, resolve_paths
from .workspace import Workspace


def reviewed_labels(database_url: str | None) -> pl.DataFrame | None:
    """Reviewers' decisive verdicts (request_id, correct) from the product's database, or
    None when there is no database or no answer yet."""
    if not database_url:
        return None
    from .labelling.db import DatabaseError, open_db

    try:
        engine = open_db(database_url)
    except DatabaseError:
        return None
    try:
        return reviewed_from(engine)
    finally:
        engine.dispose()


def reviewed_from(engine) -> pl.DataFrame | None:
    """The same from an open labelling database engine."""
    from .labelling.results import ground_truth

    gt = ground_truth(engine)
    return gt.select("request_id", "correct") if gt.height else None


def _labels_sql(ws: Workspace, reviewed: pl.DataFrame | None = None) -> tuple[str, dict[str, Any]]:
    """A SELECT of (ts, ts_us, ok) for successful requests with any label: ok says whether
    the prediction was right (NULL where no label)."""
    params: dict[str, Any] = {}
    if not ws.source.has("prediction"):
        return "", params
    sources = []
    if ws.config.labels:
        params["label_files"] = resolve_paths(ws.config.labels)
        sources.append("f")
    if reviewed is not None:
        sources.append("r")
    if not sources and not ws.source.has("label"):
        return "", params
    log_label = "CAST(l.label AS VARCHAR)" if ws.source.has("label") else "NULL"
    file_join = ("LEFT JOIN (SELECT CAST(request_id AS VARCHAR) AS request_id, any_value(label) AS label "
                 "FROM read_parquet($label_files, union_by_name=true) GROUP BY 1) f USING (request_id) "
                 if "f" in sources else "")
    review_join = "LEFT JOIN reviewed r USING (request_id) " if "r" in sources else ""
    ok = "CASE "
    if "f" in sources:
        ok += "WHEN f.label IS NOT NULL THEN CAST(l.prediction AS VARCHAR) = CAST(f.label AS VARCHAR) "
    if "r" in sources:
        ok += "WHEN r.correct IS NOT NULL THEN r.correct "
    ok += f"WHEN {log_label} IS NOT NULL THEN CAST(l.prediction AS VARCHAR) = {log_label} END"
    return (f"SELECT l.ts, l.ts_us, {ok} AS ok FROM logs l {file_join}{review_join}WHERE NOT l.is_error",
            params)


def available(ws: Workspace, reviewed: pl.DataFrame | None = None) -> bool:
    return bool(_labels_sql(ws, reviewed)[0])


def accuracy_by_bucket(ws: Workspace, bucket_s: int, f: Filters | None = None,
                       reviewed: pl.DataFrame | None = None) -> pl.DataFrame:
    """Labelled and correct requests per time bucket (index since the epoch)."""
    body, params = _labels_sql(ws, reviewed)
    if not body:
        return pl.DataFrame(schema={"bucket": pl.Int64, "labelled": pl.Int64, "correct": pl.Int64})
    cond, fparams = (f or Filters()).where()
    params |= fparams | {"bucket_us": bucket_s * 1_000_000}
    try:
        return ws.source.query(
            ws.con,
            f"SELECT {bucket_sql('ts_us', '$bucket_us')} AS bucket, count(*) AS labelled, "
            f"CAST(count_if(ok) AS BIGINT) AS correct FROM ({body}) AS t "
            f"WHERE ok IS NOT NULL AND {cond} GROUP BY 1 ORDER BY 1", params,
            tables={"reviewed": reviewed} if reviewed is not None else None)
    except Exception as exc:  # a broken labels file must not take the page down
        raise LogSourceError(f"labels file {ws.config.labels}: {str(exc).splitlines()[0]}") from exc


def window_accuracy(ws: Workspace, start: datetime, end: datetime,
                    reviewed: pl.DataFrame | None = None) -> dict[str, Any] | None:
    """Accuracy of the labelled requests served in [start, end) with a 95% Wilson interval."""
    if not available(ws, reviewed):
        return None
    from .labelling.stats import wilson_interval

    df = accuracy_by_bucket(ws, 86400, Filters(start=start, end=end), reviewed)
    n, k = int(df["labelled"].sum() or 0), int(df["correct"].sum() or 0)
    if n == 0:
        return {"accuracy": None, "accuracy_ci": None, "labelled": 0, "correct": 0}
    low, high = wilson_interval(k, n)
    return {"accuracy": k / n, "accuracy_ci": [low, high], "labelled": n, "correct": k}

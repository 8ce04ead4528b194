"""Late ground truth: how often the model was right, from labels that arrived after serving.

Labels come from the logs' own `label` column and, when `MONITORING_LABELS` names a Parquet
file (request_id, label, optional labeled_at), from that file, which wins where both exist.
Only class predictions are scored (a string prediction equal to its label is correct);
regression outputs are left to a future error metric.

    accuracy_by_bucket(ws, 3600)     # bucket, labelled, correct
    window_accuracy(ws, start, end)  # {"accuracy", "accuracy_ci", "labelled", "correct"}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from .queries import Filters
from .source import LogSourceError, resolve_paths
from .workspace import Workspace


def _labels_sql(ws: Workspace) -> tuple[str, dict[str, Any]]:
    """A SELECT of (ts_us, prediction, label) for labelled successful requests."""
    params: dict[str, Any] = {}
    if not ws.source.has("prediction"):
        return "", params
    if ws.config.labels:
        files = resolve_paths(ws.config.labels)
        params["label_files"] = files
        joined = ("SELECT l.ts, l.ts_us, CAST(l.prediction AS VARCHAR) AS prediction, "
                  "CAST(coalesce(g.label, l.label) AS VARCHAR) AS label "
                  "FROM logs l LEFT JOIN (SELECT CAST(request_id AS VARCHAR) AS request_id, "
                  "  any_value(label) AS label FROM read_parquet($label_files, union_by_name=true) "
                  "  GROUP BY 1) g USING (request_id) WHERE NOT l.is_error")
        return joined, params
    if not ws.source.has("label"):
        return "", params
    return ("SELECT ts, ts_us, CAST(prediction AS VARCHAR) AS prediction, CAST(label AS VARCHAR) AS label "
            "FROM logs WHERE NOT is_error"), params


def available(ws: Workspace) -> bool:
    return bool(_labels_sql(ws)[0])


def accuracy_by_bucket(ws: Workspace, bucket_s: int, f: Filters | None = None) -> pl.DataFrame:
    """Labelled and correct requests per time bucket (index since the epoch)."""
    body, params = _labels_sql(ws)
    if not body:
        return pl.DataFrame(schema={"bucket": pl.Int64, "labelled": pl.Int64, "correct": pl.Int64})
    cond, fparams = (f or Filters()).where()
    params |= fparams | {"bucket_us": bucket_s * 1_000_000}
    try:
        return ws.source.query(
            ws.con,
            f"SELECT ts_us // $bucket_us AS bucket, count(*) AS labelled, "
            f"CAST(count_if(prediction = label) AS BIGINT) AS correct FROM ({body}) AS t "
            f"WHERE label IS NOT NULL AND {cond} GROUP BY 1 ORDER BY 1", params)
    except Exception as exc:  # a broken labels file must not take the page down
        raise LogSourceError(f"labels file {ws.config.labels}: {str(exc).splitlines()[0]}") from exc


def window_accuracy(ws: Workspace, start: datetime, end: datetime) -> dict[str, Any] | None:
    """Accuracy of the labelled requests served in [start, end) with a 95% Wilson interval."""
    if not available(ws):
        return None
    from .labelling.stats import wilson_interval

    df = accuracy_by_bucket(ws, 86400, Filters(start=start, end=end))
    n, k = int(df["labelled"].sum() or 0), int(df["correct"].sum() or 0)
    if n == 0:
        return {"accuracy": None, "accuracy_ci": None, "labelled": 0, "correct": 0}
    low, high = wilson_interval(k, n)
    return {"accuracy": k / n, "accuracy_ci": [low, high], "labelled": n, "correct": k}

"""Accuracy counts from the logs' own labels, counted before values are compared.

When the logs' `label` column is the only source of labels (no labels file and no
reviewed answers: nothing is joined by request id), `ground_truth.accuracy_by_bucket`
counts the served rows per (bucket, version, prediction, label) as stored, and only those
few distinct pairs go through the value coercion (`ground_truth.canon`: casts, trim, lower)
that the general path (`ground_truth.truth_sql`) applies to every row. The coercion is a
function of the stored value, so the rows of one stored pair share one verdict and the
counts are the general path's. 100M rows (30 files, 3 versions, 5-minute buckets): 4.5 -> 1.9 s,
9.0 -> 3.7 s of CPU; a plain scan of the same rows takes 0.85 s.

This module only builds the SQL: the compared forms come from ground_truth, which imports
it (not the other way round).
"""

from __future__ import annotations

SERVED = "NOT coalesce(is_error, false) AND prediction IS NOT NULL AND label IS NOT NULL"


def grouped_sql(keys: dict[str, str], cond: str, pred: str, label: str) -> str:
    """A SELECT over `logs` of the `keys` (output name -> SQL), labelled and correct, ordered
    by the keys: the served rows with a label under `cond`, counted per stored pair first.
    `pred` and `label` are the compared forms of the stored columns `p` and `lab`; a pair
    whose either form is NULL is not labelled (as in truth_sql, where `correct` is NULL)."""
    names = ", ".join(keys)
    inner = ", ".join(f"{sql} AS {name}" for name, sql in keys.items())
    return (f"SELECT {names}, CAST(sum(n) AS BIGINT) AS labelled, "
            "CAST(coalesce(sum(n) FILTER (WHERE same), 0) AS BIGINT) AS correct "
            f"FROM (SELECT {names}, n, {pred} = {label} AS same FROM ("
            f"SELECT {inner}, prediction AS p, label AS lab, count(*) AS n FROM logs "
            f"WHERE {SERVED} AND ({cond}) GROUP BY ALL) AS g) AS c "
            "WHERE same IS NOT NULL GROUP BY ALL ORDER BY ALL")

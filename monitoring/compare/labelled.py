"""Labelled production accuracy per version, for Compare and Models: from the rollup
store's `outcomes` (prediction x label per UTC day and version) for the window's whole UTC
days and from the raw logs for the rest, else from the raw logs alone.

    labelled_by_version(ws, f, reviewed)   # {version: (labelled, correct)}

The store holds the logs' own `label` column only: with a labels file or reviewers'
answers the raw engine (`ground_truth`) answers. `outcomes` keeps whether a request failed
(a key since store format 4) and accuracy counts served requests only, so the whole days
read no raw row and the counts are exactly the raw engine's. Values are compared in ground_truth's canonical form
(`quality.fromstore.value_sql` of the stored text, `ground_truth.canon` of the raw value).
"""

from __future__ import annotations

import polars as pl

from ..logs.workspace import Workspace
from ..quality import ground_truth as gt
from ..quality.fromstore import value_sql
from ..query.filters import Filters
from ..rollup.partial import FALLBACK
from ..rollup.quality import outcome_counts
from ..rollup.read import NotCovered
from . import fromstore


def labelled_by_version(ws: Workspace, f: Filters, reviewed: pl.DataFrame | None) -> dict[str, tuple[int, int]]:
    """version -> (labelled, correct) of the served requests with a time under `f`: the rows
    `ground_truth.accuracy_by_bucket` counts, per version; {} for a regression model."""
    t = gt.default_truth(ws, reviewed=reviewed)
    if t.task != "classification" or not gt.truth_sql(ws, t)[0]:
        return {}
    try:
        return _from_store(ws, t, f)
    except FALLBACK:
        return _raw(ws, t, f)


def _raw(ws: Workspace, t: gt.Truth, f: Filters, where: tuple[str, dict] | None = None) -> dict[str, tuple[int, int]]:
    cond, params = where or f.where()
    df = gt.query(ws, t, "SELECT model_version AS v, count(*) AS labelled, CAST(count_if(correct) AS BIGINT) "
                         f"AS correct FROM truth_rows WHERE correct IS NOT NULL AND ts_us IS NOT NULL AND ({cond}) "
                         "GROUP BY 1", params)
    return {r["v"]: (int(r["labelled"]), int(r["correct"])) for r in df.iter_rows(named=True)}


def _from_store(ws: Workspace, t: gt.Truth, f: Filters) -> dict[str, tuple[int, int]]:
    if t.labels is not None or (t.reviewed is not None and t.reviewed.height) or t.as_of is not None:
        raise NotCovered("labels from a labels file or from reviewers are not in the store")
    if not ws.source.has("label"):
        raise NotCovered("the logs have no label column")
    if f.endpoints:
        raise NotCovered("the store's outcomes are per version, not per endpoint")
    store = fromstore.store_of(ws)
    days, pieces = fromstore.split(f)
    types = ws.source.types
    ptype, ltype = types.get("prediction", ""), types.get("label", "")
    value = {"prediction": value_sql(ptype), "label": value_sql(ltype)}
    # served rows only: `outcomes` keeps is_error as a key (store format 4), no raw pass
    oc = outcome_counts(store, ws.con, days, lambda c: value[c](c)).select("version", "pred", "truth", "n")
    out: dict[str, list[int]] = {}
    for x in oc.filter(pl.col("truth").is_not_null()).group_by("version").agg(
            pl.col("n").sum().alias("labelled"), pl.col("n").filter(pl.col("pred") == pl.col("truth")).sum()
            .alias("correct")).iter_rows(named=True):
        out[x["version"]] = [int(x["labelled"]), int(x["correct"] or 0)]
    if pieces:
        for v, (n, k) in _raw(ws, t, f, fromstore.pieces_where(pieces)).items():
            a = out.setdefault(v, [0, 0])
            a[0], a[1] = a[0] + n, a[1] + k
    return {v: (n, k) for v, (n, k) in out.items() if n}

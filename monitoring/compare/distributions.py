"""The Compare page's distribution frames (successful latency by log-bin, score by
0.05-wide bin, per version) from the rollup store for the window's whole UTC days and the
raw logs for the rest; `queries.distributions` is the raw engine's, the same frames.

    frames(ws, ("v2", "v3"), f)   # {"latency": v, x, n; "score": v, x, n}; NotCovered: raw

Latency comes from `latency/day` (successful requests are a key there). Scores come from
`scores` (bins of 1/1000, which sum exactly into the chart's twentieths), whose `is_error`
key (store format 4) keeps failed requests' scores out with no raw pass. A negative score (the store keeps all of them in one bin) leaves the raw
engine to answer.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from ..logs.source import run
from ..logs.workspace import Workspace
from ..metrics import sketch
from ..query.filters import Filters
from ..rollup.read import NotCovered
from ..rollup.tables import SCORE_BINS
from . import fromstore

_PER_BAR = SCORE_BINS // 20       # store bins in one bar of the chart


def frames(ws: Workspace, versions: tuple[str, str], f: Filters) -> dict[str, pl.DataFrame]:
    store = fromstore.store_of(ws)
    if f.endpoints:
        raise NotCovered("the store's score table is per version, not per endpoint")
    days, pieces = fromstore.split(f)
    cond, params = replace(days, model_versions=tuple(versions)).where(time=False)
    rng = fromstore.day_range(days)
    lat_rel, p1 = store.relation("latency/day")
    lat = [run(ws.con, f"SELECT model_version AS v, bin, CAST(sum(n) AS BIGINT) AS n FROM {lat_rel} "
                       f"WHERE {rng.format(col='t')} AND {cond} AND NOT is_error GROUP BY ALL", params | p1)]
    score: list[pl.DataFrame] = []
    if ws.source.has("score"):
        sc_rel, p2 = store.relation("scores")
        if not sc_rel:
            raise NotCovered("the store has no scores table")
        # successful requests only: `scores` keeps is_error as a key (store format 4)
        sc = run(ws.con, f"SELECT model_version AS v, bin, CAST(sum(n) AS BIGINT) AS n FROM {sc_rel} "
                         f"WHERE {rng.format(col='day')} AND {cond} AND NOT is_error GROUP BY ALL", params | p2)
        both = sc.cast({"bin": pl.Int32, "n": pl.Int64}).filter(pl.col("n") != 0)
        if both.filter(pl.col("bin") < 0).height:
            raise NotCovered("negative scores are one bin in the store: the raw logs answer")
        score.append(both.select("v", (pl.min_horizontal(pl.col("bin") // _PER_BAR, 19)).alias("b"), "n"))
    if pieces:
        pc, pp = fromstore.pieces_where(pieces, versions)
        lat.append(ws.source.query(ws.con, f"SELECT model_version AS v, {sketch.bin_sql('latency_ms')} AS bin, "
                                           f"count(*) AS n FROM logs WHERE ({pc}) AND NOT is_error AND latency_ms IS NOT "
                                           "NULL GROUP BY ALL", pp))
        if score:
            score.append(ws.source.query(ws.con, "SELECT model_version AS v, least(floor(score * 20), 19) AS b, "
                                                 f"count(*) AS n FROM logs WHERE ({pc}) AND NOT is_error AND score IS "
                                                 "NOT NULL AND isfinite(score) GROUP BY ALL", pp))
    la = (pl.concat([x.cast({"bin": pl.Int32, "n": pl.Int64}) for x in lat]).group_by("v", "bin")
          .agg(pl.col("n").sum()).filter(pl.col("n") != 0).sort("bin", "v"))
    la = la.with_columns(pl.Series("x", sketch.representative(la["bin"].to_numpy()))).drop("bin")
    if score:
        s = (pl.concat([x.cast({"b": pl.Int64, "n": pl.Int64}) for x in score]).group_by("v", "b")
             .agg(pl.col("n").sum()).filter(pl.col("n") != 0).sort("b", "v"))
        s = s.select("v", (pl.col("b") / 20 + 0.025).alias("x"), "n")
    else:
        s = pl.DataFrame(schema={"v": pl.String, "x": pl.Float64, "n": pl.Int64})
    return {"latency": la, "score": s}

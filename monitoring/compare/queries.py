"""The evidence of two versions over a window, aggregated in DuckDB.

Three small queries over the `logs` view, whatever the log's size:
1. per version: requests, errors, score moments, the point percentiles (quantile_cont) and,
   per class, the predictions; error types;
2. exact order statistics: `quantile_cont` at probability (r - 1)/(n - 1), which is the r-th
   smallest successful latency, for every rank r an interval at any grid z can ask for (a few
   hundred values per version, one sort each);
3. labelled accuracy per version from `monitoring.quality.ground_truth` (late labels, labels file,
   reviewers' verdicts).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

import numpy as np
import polars as pl

from ..logs.workspace import Workspace
from ..metrics import sketch
from ..quality import ground_truth
from ..query.filters import Filters
from ..rollup.partial import FALLBACK
from . import fromstore, stats
from .distributions import frames as store_frames
from .evidence import (
    QS,
    Moments,
    Quantiles,
    VersionStats,
    binned_quantiles,
    empty_quantiles,
)
from .labelled import labelled_by_version


def window_stats(ws: Workspace, versions: tuple[str, str], f: Filters,
                 reviewed: pl.DataFrame | None = None, *, raw: bool = False) -> dict[str, VersionStats]:
    """VersionStats of each of `versions` over the window and filters of `f` (its own
    version filter is replaced by `versions`)."""
    return window_evidence(ws, versions, f, reviewed, raw=raw)[0]


def window_evidence(ws: Workspace, versions: tuple[str, str], f: Filters,
                    reviewed: pl.DataFrame | None = None, *, raw: bool = False) -> tuple[dict[str, VersionStats], str]:
    """(window_stats, a sentence saying which path answered). The rollup store answers the
    window's whole UTC days when it covers the logs (`fromstore`; the rest from the raw
    logs), else the raw engine; `raw` asks for the raw engine."""
    if not raw:
        try:
            return _stats_from_store(ws, versions, f, reviewed)
        except FALLBACK as exc:
            why = str(exc).split("\n")[0]
            return _raw_window_stats(ws, versions, f, reviewed), f"from the raw logs ({why})"
    return _raw_window_stats(ws, versions, f, reviewed), "from the raw logs (asked for)"


def _stats_from_store(ws: Workspace, versions: tuple[str, str], f: Filters,
                      reviewed: pl.DataFrame | None) -> tuple[dict[str, VersionStats], str]:
    tallies = fromstore.tally(ws, tuple(versions), f)
    total_ok = sum(t.ok for t in tallies.values())
    exact = total_ok <= ws.config.exact_quantile_max_rows
    order = fromstore.order_statistics(ws, f, {v: (t, _wanted_ranks(t.ok)) for v, t in tallies.items() if t.ok}) \
        if exact else {}
    accuracy = _accuracy(ws, f, versions, reviewed)
    kind = fromstore.prediction_kind(ws)
    flags = {"has_latency": True, "has_status": True}
    out = {}
    for v in versions:
        t = tallies[v]
        if t.requests == 0:
            out[v] = VersionStats(v, 0, 0, empty_quantiles(), labelled=None if accuracy is None else 0,
                                  classes={} if kind == "class" else None, **flags)
            continue
        if exact and t.ok:
            ranks, values = order[v]
            lat = Quantiles(t.ok, _point_estimates(t.ok, ranks, values), ranks, values)
        elif t.ok:
            bins = np.array(sorted(t.hist), dtype=np.int64)
            lat = binned_quantiles(bins, np.array([t.hist[b] for b in bins]))
        else:
            lat = empty_quantiles()
        lab, cor = accuracy.get(v, (0, 0)) if accuracy is not None else (None, 0)
        out[v] = VersionStats(
            version=v, requests=t.requests, errors=t.errors, latency=lat,
            score=_moments(t.score), labelled=lab, correct=cor,
            classes={c: n for c, n in t.classes.items() if n} if kind == "class" else None,
            prediction=_moments(t.pred) if kind == "numeric" else None,
            error_types={k: n for k, n in t.error_types.items() if n},
            first=t.first_us / 1e6 if t.first_us is not None else None,
            last=t.last_us / 1e6 if t.last_us is not None else None, **flags)
    how = ("exact percentiles from a second pass over the needed latency bins" if exact else
           f"percentiles from the log-histogram, within ±{sketch.RELATIVE_ERROR:.1%} of exact")
    return out, f"from the rollup store for the window's whole UTC days, the raw logs for the rest; {how}"


def _moments(m: list) -> Moments | None:
    """Moments from (n, sum, sum of squares): the sample variance var_samp gives."""
    n, s1, s2 = m
    if n <= 0:
        return None
    mean = s1 / n
    return Moments(int(n), mean, max(0.0, (s2 - n * mean * mean) / (n - 1)) if n > 1 else 0.0)


def _wanted_ranks(n: int) -> np.ndarray:
    return np.unique(np.concatenate([stats.grid_ranks(n, q) for q in QS] + [_point_ranks(n)]))


def _raw_window_stats(ws: Workspace, versions: tuple[str, str], f: Filters,
                      reviewed: pl.DataFrame | None = None) -> dict[str, VersionStats]:
    f = replace(f, model_versions=tuple(versions))
    cond, params = f.where()
    kind = fromstore.prediction_kind(ws)
    pred = ("avg(CAST(prediction AS DOUBLE)) FILTER (WHERE NOT is_error) AS pred_mean, "
            "var_samp(CAST(prediction AS DOUBLE)) FILTER (WHERE NOT is_error) AS pred_var, "
            "count(prediction) FILTER (WHERE NOT is_error) AS pred_n, " if kind == "numeric" else "")
    base = ws.source.query(
        ws.con,
        "SELECT model_version AS v, count(*) AS requests, CAST(count_if(is_error) AS BIGINT) AS errors, "
        "count(latency_ms) FILTER (WHERE NOT is_error) AS ok, "
        "count(score) FILTER (WHERE NOT is_error) AS score_n, avg(score) FILTER (WHERE NOT is_error) AS score_mean, "
        "var_samp(score) FILTER (WHERE NOT is_error) AS score_var, "
        f"{pred}"
        "min(ts_us) AS first_us, max(ts_us) AS last_us "
        f"FROM logs WHERE {cond} GROUP BY 1",
        params)
    rows = {r["v"]: r for r in base.iter_rows(named=True)}
    classes: dict[str, dict[str, int]] = {}
    if kind == "class":
        cls = ws.source.query(ws.con, "SELECT model_version AS v, CAST(prediction AS VARCHAR) AS c, count(*) AS n "
                                      f"FROM logs WHERE {cond} AND NOT is_error AND prediction IS NOT NULL "
                                      "GROUP BY 1, 2", params)
        for r in cls.iter_rows(named=True):
            classes.setdefault(r["v"], {})[r["c"]] = int(r["n"])
    types: dict[str, dict[str, int]] = {}
    et = ws.source.query(ws.con, "SELECT model_version AS v, coalesce(error_type, '(none)') AS t, count(*) AS n "
                                 f"FROM logs WHERE {cond} AND is_error GROUP BY 1, 2", params)
    for r in et.iter_rows(named=True):
        types.setdefault(r["v"], {})[r["t"]] = int(r["n"])

    order = _order_statistics(ws, cond, params, {v: int(rows[v]["ok"]) for v in versions if v in rows})
    accuracy = _accuracy(ws, f, versions, reviewed)
    out = {}
    flags = {"has_latency": ws.source.has("latency_ms"), "has_status": ws.source.has("status")}
    for v in versions:
        r = rows.get(v)
        if r is None:
            out[v] = VersionStats(v, 0, 0, empty_quantiles(), labelled=None if accuracy is None else 0,
                                  classes={} if kind == "class" else None, **flags)
            continue
        n_ok = int(r["ok"])
        ranks, values = order.get(v, (np.zeros(0, dtype=np.int64), np.zeros(0)))
        est = _point_estimates(n_ok, ranks, values)
        lab, cor = accuracy.get(v, (0, 0)) if accuracy is not None else (None, 0)
        out[v] = VersionStats(
            version=v, requests=int(r["requests"]), errors=int(r["errors"]),
            latency=Quantiles(n_ok, est, ranks, values) if n_ok else empty_quantiles(),
            score=Moments(int(r["score_n"]), r["score_mean"], r["score_var"] or 0.0) if r["score_n"] else None,
            labelled=lab, correct=cor,
            classes=classes.get(v, {}) if kind == "class" else None,
            prediction=Moments(int(r["pred_n"]), r["pred_mean"], r["pred_var"] or 0.0)
            if kind == "numeric" and r.get("pred_n") else None,
            error_types=types.get(v, {}),
            first=r["first_us"] / 1e6 if r["first_us"] is not None else None,
            last=r["last_us"] / 1e6 if r["last_us"] is not None else None, **flags)
    return out


def _order_statistics(ws: Workspace, cond: str, params: dict, n_ok: dict[str, int]):
    """version -> (ranks, values): the r-th smallest successful latency for every needed r."""
    wanted = {v: _wanted_ranks(n) for v, n in n_ok.items() if n}
    if not wanted:
        return {}
    parts, p = [], dict(params)
    for i, (v, ranks) in enumerate(wanted.items()):
        n = n_ok[v]
        p[f"v{i}"] = v
        p[f"p{i}"] = [0.0] if n == 1 else [float(r - 1) / (n - 1) for r in ranks]
        parts.append(f"quantile_cont(latency_ms, $p{i}) FILTER (WHERE model_version = $v{i}) AS q{i}")
    row = ws.source.query(ws.con, f"SELECT {', '.join(parts)} FROM logs WHERE {cond} AND NOT is_error", p).row(0)
    return {v: (ranks, np.asarray(row[i], dtype=float)) for i, (v, ranks) in enumerate(wanted.items())}


def _point_ranks(n: int) -> np.ndarray:
    """1-based ranks of the two order statistics each point percentile interpolates."""
    h = np.array(QS) * (n - 1)
    return np.concatenate([np.floor(h), np.ceil(h)]).astype(np.int64) + 1


def _point_estimates(n: int, ranks: np.ndarray, values: np.ndarray) -> dict[float, float]:
    """Percentiles by linear interpolation between order statistics (quantile_cont, numpy),
    from the fetched ranks: no second sort."""
    if n == 0:
        return {q: math.nan for q in QS}
    at = dict(zip(ranks.tolist(), values.tolist(), strict=True))
    out = {}
    for q in QS:
        h = q * (n - 1)
        lo, hi = math.floor(h), math.ceil(h)
        out[q] = at[lo + 1] + (h - lo) * (at[hi + 1] - at[lo + 1])
    return out


def _accuracy(ws: Workspace, f: Filters, versions: tuple[str, ...],
              reviewed: pl.DataFrame | None) -> dict[str, tuple[int, int]] | None:
    """version -> (labelled, correct), or None when no labels exist at all."""
    if not ground_truth.available(ws, reviewed):
        return None
    return labelled_by_version(ws, replace(f, model_versions=tuple(versions)), reviewed)


def version_traffic(ws: Workspace, f: Filters | None = None) -> pl.DataFrame:
    """Requests, first and last request per version (columns version, requests, first, last)."""
    f = replace(f or Filters(), model_versions=())
    try:
        df = fromstore.traffic(ws, f)     # the store's whole days, the raw logs for the rest
    except FALLBACK:
        cond, params = f.where()
        df = ws.source.query(ws.con, "SELECT model_version AS version, count(*) AS requests, min(ts_us) AS first_us, "
                                     f"max(ts_us) AS last_us FROM logs WHERE {cond} GROUP BY 1", params)
    if df.height == 0:
        return pl.DataFrame(schema={"version": pl.String, "requests": pl.Int64,
                                    "first": pl.Datetime("us", "UTC"), "last": pl.Datetime("us", "UTC")})
    return df.with_columns(pl.from_epoch("first_us", "us").dt.replace_time_zone("UTC").alias("first"),
                           pl.from_epoch("last_us", "us").dt.replace_time_zone("UTC").alias("last")) \
        .drop("first_us", "last_us").sort("first")


def default_pair(traffic: pl.DataFrame, baseline: str | None = None,
                 candidate: str | None = None) -> tuple[str, str]:
    """(baseline, candidate), filling what is not given: the candidate is the newest version
    (latest first request), the baseline the other version with most traffic."""
    if candidate is None:
        rest = traffic.filter(pl.col("version") != baseline) if baseline else traffic
        candidate = rest.sort(["first", "version"]).row(-1, named=True)["version"]
    if baseline is None:
        rest = traffic.filter(pl.col("version") != candidate).sort(["requests", "first"], descending=[True, False])
        baseline = rest.row(0, named=True)["version"] if rest.height else candidate
    return baseline, candidate


def overlap(traffic: pl.DataFrame, a: str, b: str) -> tuple[datetime, datetime] | None:
    """[start, end) where both versions served (first of the later to last of the earlier)."""
    rows = {r["version"]: r for r in traffic.iter_rows(named=True)}
    if a not in rows or b not in rows or rows[a]["first"] is None or rows[b]["first"] is None:
        return None
    from datetime import timedelta

    start = max(rows[a]["first"], rows[b]["first"])
    end = min(rows[a]["last"], rows[b]["last"]) + timedelta(microseconds=1)
    return (start, end) if end > start else None


def distributions(ws: Workspace, versions: tuple[str, str], f: Filters) -> dict[str, pl.DataFrame]:
    """Small frames for the charts: successful latency by log-bin and score by 0.05-wide bin,
    per version (columns v, x, n): from the rollup store for the window's whole UTC days
    when it covers the logs (`compare.distributions`), else the raw logs."""
    try:
        return store_frames(ws, versions, f)
    except FALLBACK:
        pass
    cond, params = replace(f, model_versions=tuple(versions)).where()
    lat = ws.source.query(ws.con, f"SELECT model_version AS v, {sketch.bin_sql('latency_ms')} AS bin, count(*) AS n "
                                  f"FROM logs WHERE {cond} AND NOT is_error AND latency_ms IS NOT NULL GROUP BY ALL ORDER BY 2",
                          params)
    lat = lat.with_columns(pl.Series("x", sketch.representative(lat["bin"].to_numpy()))).drop("bin")
    score = ws.source.query(ws.con, "SELECT model_version AS v, least(floor(score * 20), 19) / 20 + 0.025 AS x, "
                                    f"count(*) AS n FROM logs WHERE {cond} AND NOT is_error AND score IS NOT NULL "
                                    "AND isfinite(score) GROUP BY ALL ORDER BY 2", params)
    return {"latency": lat, "score": score}

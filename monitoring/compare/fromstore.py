"""A comparison's evidence from the rollup store for the whole UTC days of its window, and
from the raw logs for the rest (the partial first and last days), summed.

    tallies = tally(ws, ("v2", "v3"), f)     # NotCovered: the raw engine answers instead
    tallies["v3"].requests, tallies["v3"].hist   # counts exact, duplicates counted once

What is summed is mergeable: requests, errors and error types (`traffic/day`), the
successful requests' latency histogram in the sketch's bins (`latency/day`), the score's and
a numeric prediction's count, sum and sum of squares (`numeric`), class counts
(`categorical`), and the first and last request (the minute from `traffic/minute`, the
microsecond from the raw rows of that minute).

The drift tables count every valid row, failed ones included, where the comparison counts
successful requests only: one narrow raw pass over the days' failed requests
(`_failed`) subtracts what they carry (a score, a prediction), so the sums are exact.
Percentiles come from the histogram (`queries.window_stats` asks for an exact second pass
over the needed bins when the window is small enough, as the latency pages do).

The store answers only when it covers every log file as it is now, the logs have a
timestamp, a status and a latency, no endpoint filter is set (drift tables are per
version) and the window holds a whole UTC day; otherwise NotCovered says why in one sentence.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from ..logs.source import INTEGER_TYPES, NUMERIC_TYPES, run
from ..logs.workspace import Workspace
from ..metrics import sketch
from ..query.filters import Filters
from ..rollup.read import NotCovered, Store
from ..rollup.tables import DAY_US, MINUTE_US

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Tally:
    """Mergeable evidence of one version: sums of counts over disjoint pieces of a window."""
    requests: int = 0
    errors: int = 0
    error_types: Counter = field(default_factory=Counter)
    hist: Counter = field(default_factory=Counter)      # latency bin -> successful requests
    score: list = field(default_factory=lambda: [0, 0.0, 0.0])   # n, sum, sum of squares
    pred: list = field(default_factory=lambda: [0, 0.0, 0.0])
    classes: Counter = field(default_factory=Counter)
    first_us: int | None = None
    last_us: int | None = None

    def add(self, o: Tally, sign: int = 1) -> None:
        self.requests += sign * o.requests
        self.errors += sign * o.errors
        for mine, theirs in ((self.error_types, o.error_types), (self.hist, o.hist), (self.classes, o.classes)):
            for k, n in theirs.items():
                mine[k] += sign * n
        for mine, theirs in ((self.score, o.score), (self.pred, o.pred)):
            for i in range(3):
                mine[i] += sign * theirs[i]
        firsts = [x for x in (self.first_us, o.first_us) if x is not None]
        lasts = [x for x in (self.last_us, o.last_us) if x is not None]
        self.first_us = min(firsts) if firsts else None
        self.last_us = max(lasts) if lasts else None

    @property
    def ok(self) -> int:
        return int(sum(self.hist.values()))


def store_of(ws: Workspace) -> Store:
    """The complete store attached to the logs, or NotCovered (one sentence)."""
    store = getattr(ws.source, "rollups", None)
    if store is None:
        raise NotCovered("no rollup store is built for these logs")
    if not store.complete:
        raise NotCovered("the rollups do not cover every log file as it is now")
    missing = [c for c in ("timestamp", "status", "latency_ms") if not ws.source.has(c)]
    if missing:
        raise NotCovered(f"the logs have no {', '.join(missing)} column: the raw logs answer")
    return store


def _us(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(microseconds=1)


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def split(f: Filters) -> tuple[Filters, list[Filters]]:
    """(the whole UTC days of f's window, the partial pieces around them). NotCovered when
    the window holds no whole day. An open end stays open (the store's days reach it)."""
    lo = None if f.start is None else _us(f.start)
    hi = None if f.end is None else _us(f.end)
    d0 = None if lo is None else -(-lo // DAY_US) * DAY_US
    d1 = None if hi is None else hi // DAY_US * DAY_US
    if d0 is not None and d1 is not None and d1 <= d0:
        raise NotCovered("the window holds no whole UTC day: the raw logs answer")
    pieces = []
    if lo is not None and d0 > lo:
        pieces.append(replace(f, start=f.start, end=_dt(d0)))
    if hi is not None and hi > d1:
        pieces.append(replace(f, start=_dt(d1), end=f.end))
    days = replace(f, start=None if d0 is None else _dt(d0), end=None if d1 is None else _dt(d1))
    return days, pieces


def day_range(days: Filters, grain_us: int = DAY_US) -> str:
    """SQL condition on a store table's time index `{col}` in units of `grain_us` (`day`,
    or `t` of the day or minute tables) for the whole days of `days`."""
    conds = ["TRUE"]
    if days.start is not None:
        conds.append(f"{{col}} >= {_us(days.start) // grain_us}")
    if days.end is not None:
        conds.append(f"{{col}} < {_us(days.end) // grain_us}")
    return " AND ".join(conds)


def prediction_kind(ws: Workspace) -> str | None:
    """'numeric' (a float prediction: regression), 'class', or None (no prediction)."""
    if not ws.source.has("prediction"):
        return None
    typ = ws.source.types.get("prediction", "")
    return "numeric" if typ in NUMERIC_TYPES and typ not in INTEGER_TYPES else "class"


# -- the store's whole days ------------------------------------------------------------------------

def store_tally(ws: Workspace, store: Store, versions: tuple[str, ...], days: Filters) -> dict[str, Tally]:
    """Tally of each version over whole UTC days (days.start/end on midnights or open)."""
    con, out = ws.con, {v: Tally() for v in versions}
    if days.endpoints:
        raise NotCovered("the store's feature tables are per version, not per endpoint")
    cond, params = replace(days, model_versions=tuple(versions)).where(time=False)
    rng = day_range(days)

    def table(name: str) -> str:
        rel, p = store.relation(name)
        if not rel:
            raise NotCovered(f"the store has no {name} table")
        params.update(p)
        return rel

    t = run(con, "SELECT model_version AS v, is_error, coalesce(error_type, '(none)') AS et, "
                 f"CAST(sum(n) AS BIGINT) AS n FROM {table('traffic/day')} WHERE {rng.format(col='t')} "
                 f"AND {cond} GROUP BY ALL HAVING sum(n) <> 0", params)
    for r in t.iter_rows(named=True):
        x = out[r["v"]]
        x.requests += r["n"]
        if r["is_error"]:
            x.errors += r["n"]
            x.error_types[r["et"]] += r["n"]
    h = run(con, f"SELECT model_version AS v, bin, CAST(sum(n) AS BIGINT) AS n FROM {table('latency/day')} "
                 f"WHERE {rng.format(col='t')} AND {cond} AND NOT is_error GROUP BY ALL HAVING sum(n) <> 0", params)
    for r in h.iter_rows(named=True):
        out[r["v"]].hist[r["bin"]] += r["n"]
    kind = prediction_kind(ws)
    roles = ["score"] + (["prediction"] if kind == "numeric" else [])
    if ws.source.has("score") or kind == "numeric":
        m = run(con, f"SELECT model_version AS v, role, CAST(sum(n) AS BIGINT) AS n, sum(sum) AS s1, sum(sum2) AS s2 "
                     f"FROM {table('numeric')} WHERE {rng.format(col='day')} AND {cond} AND list_contains($roles, role) "
                     "AND feature = role GROUP BY ALL", params | {"roles": roles})
        for r in m.iter_rows(named=True):
            dst = out[r["v"]].score if r["role"] == "score" else out[r["v"]].pred
            dst[:] = [int(r["n"] or 0), float(r["s1"] or 0.0), float(r["s2"] or 0.0)]
    if kind == "class":
        c = run(con, f"SELECT model_version AS v, value AS c, CAST(sum(n) AS BIGINT) AS n FROM {table('categorical')} "
                     f"WHERE {rng.format(col='day')} AND {cond} AND role = 'prediction' AND feature = 'prediction' GROUP BY ALL "
                     "HAVING sum(n) <> 0", params)
        for r in c.iter_rows(named=True):
            out[r["v"]].classes[r["c"]] += r["n"]
    _first_last(ws, store, out, days)
    for v, x in _failed(ws, versions, days, kind).items():
        failed = Tally(score=x.score, pred=x.pred, classes=x.classes)
        out[v].add(failed, sign=-1)
    return out


def _first_last(ws: Workspace, store: Store, out: dict[str, Tally], days: Filters) -> None:
    """Each version's first and last request over the days: the minutes from `traffic/minute`,
    then the microseconds from the raw rows of those minutes (pruned by time: a small read)."""
    rel, p = store.relation("traffic/minute")
    cond, params = replace(days, model_versions=tuple(out)).where(time=False)
    rng = day_range(days, MINUTE_US).format(col="t")
    m = run(ws.con, f"SELECT v, min(t) AS a, max(t) AS b FROM (SELECT model_version AS v, t FROM {rel} "
                    f"WHERE {rng} AND {cond} GROUP BY 1, 2 HAVING sum(n) > 0) GROUP BY 1", params | p)
    # One read of the logs with the minutes OR-ed (time alone in WHERE, so that each prunes
    # the row groups; the version is in each FILTER): a UNION of one query per minute reads
    # the `logs` view once and materialises it (2 s, not 0.2, at 10M rows).
    aggs, ranges, q = [], [], {}
    rows = list(m.iter_rows(named=True))
    for i, r in enumerate(rows):
        q[f"v{i}"] = r["v"]
        for side, agg, t in (("a", "min", r["a"]), ("b", "max", r["b"])):
            q |= {f"{side}{i}": _dt(t * MINUTE_US), f"{side}{i}e": _dt((t + 1) * MINUTE_US)}
            rng = f"(ts >= ${side}{i} AND ts < ${side}{i}e)"
            ranges.append(rng)
            aggs.append(f"{agg}(ts_us) FILTER (WHERE {rng} AND model_version = $v{i}) AS {side}{i}")
    if not rows:
        return
    extra, p2 = replace(days, start=None, end=None, model_versions=()).where()
    got = ws.source.query(ws.con, f"SELECT {', '.join(aggs)} FROM logs WHERE ({' OR '.join(ranges)}) AND {extra}",
                          q | p2).row(0, named=True)
    for i, r in enumerate(rows):
        x = out[r["v"]]
        for side, us in (("a", got[f"a{i}"]), ("b", got[f"b{i}"])):
            if us is None:
                continue
            if side == "a":
                x.first_us = us if x.first_us is None else min(x.first_us, us)
            else:
                x.last_us = us if x.last_us is None else max(x.last_us, us)


def _failed(ws: Workspace, versions: tuple[str, ...], days: Filters, kind: str | None) -> dict[str, Tally]:
    """What the days' failed requests carry that the drift tables counted: score and numeric
    prediction sums, class counts (one narrow raw pass; failed requests are few)."""
    cond, params = replace(days, model_versions=tuple(versions)).where()
    return raw_tally(ws, versions, cond, params, kind, failed_only=True)


# -- the raw rest ------------------------------------------------------------------------------------

def pieces_where(pieces: list[Filters], versions: tuple[str, ...] = ()) -> tuple[str, dict]:
    """One condition for several windows (OR-ed; each still prunes the files' row groups)."""
    conds, params = [], {}
    for i, g in enumerate(pieces):
        c, p = replace(g, model_versions=tuple(versions) or g.model_versions).where()
        for name in sorted(p, key=len, reverse=True):     # each piece's parameters named apart
            c = c.replace(f"${name}", f"$w{i}_{name}")
        conds.append(f"({c})")
        params |= {f"w{i}_{k}": x for k, x in p.items()}
    return " OR ".join(conds) or "FALSE", params


def raw_tally(ws: Workspace, versions: tuple[str, ...], cond: str, params: dict, kind: str | None,
              *, failed_only: bool = False) -> dict[str, Tally]:
    """The same tally from the raw logs under `cond` (the pieces around the whole days), or
    with failed_only the score, prediction and classes of failed requests only: one grouped
    query (version, failed, error type, latency bin, class), summed here."""
    out = {v: Tally() for v in versions}
    has_score = ws.source.has("score")
    cls = "CAST(prediction AS VARCHAR)" if kind == "class" else "CAST(NULL AS VARCHAR)"
    num = "CAST(prediction AS DOUBLE)" if kind == "numeric" else "CAST(NULL AS DOUBLE)"
    # the store keeps finite scores and numeric predictions only (NaN and ±inf as NULL)
    score = ("CASE WHEN isfinite(score) THEN score END" if failed_only else "score") if has_score \
        else "CAST(NULL AS DOUBLE)"
    if failed_only and kind == "numeric":
        num = f"CASE WHEN isfinite({num}) THEN {num} END"
    where = f"({cond})"
    if failed_only:
        # successful rows with a non-finite score or prediction: the raw mean is NaN or
        # infinite, the store's is not (it keeps finite values only), so the raw engine answers
        odd = [f"NOT isfinite({x})" for x, on in (("score", has_score), ("CAST(prediction AS DOUBLE)",
                                                                        kind == "numeric")) if on]
        where += " AND (is_error" + "".join(f" OR {o}" for o in odd) + ")"
    df = ws.source.query(
        ws.con, "SELECT model_version AS v, is_error AS e, coalesce(error_type, '(none)') AS et, "
                f"CASE WHEN NOT is_error AND latency_ms IS NOT NULL THEN {sketch.bin_sql('latency_ms')} END AS bin, "
                f"{cls} AS c, count(*) AS n, count({score}) AS sn, sum({score}) AS s1, sum({score} * {score}) AS s2, "
                f"count({num}) AS pn, sum({num}) AS p1, sum({num} * {num}) AS p2, min(ts_us) AS a, max(ts_us) AS b "
                f"FROM logs WHERE {where} GROUP BY ALL", params)
    # served rows are the failed ones in the correction pass, the successful ones otherwise
    for r in df.iter_rows(named=True):
        if failed_only and not r["e"]:
            raise NotCovered("some scores or predictions are not finite (NaN or infinite): the raw logs answer")
        x, served = out[r["v"]], r["e"] if failed_only else not r["e"]
        if served:
            x.score = [x.score[0] + int(r["sn"]), x.score[1] + (r["s1"] or 0.0), x.score[2] + (r["s2"] or 0.0)]
            x.pred = [x.pred[0] + int(r["pn"]), x.pred[1] + (r["p1"] or 0.0), x.pred[2] + (r["p2"] or 0.0)]
            if r["c"] is not None:
                x.classes[r["c"]] += r["n"]
        if failed_only:
            continue
        x.add(Tally(requests=r["n"], errors=r["n"] if r["e"] else 0, first_us=r["a"], last_us=r["b"]))
        if r["e"]:
            x.error_types[r["et"]] += r["n"]
        elif r["bin"] is not None:
            x.hist[r["bin"]] += r["n"]
    return out


def tally(ws: Workspace, versions: tuple[str, ...], f: Filters) -> dict[str, Tally]:
    """Each version's tally over f's window: the store's whole days plus the raw pieces.
    Raises NotCovered (one sentence) when the store cannot answer."""
    store = store_of(ws)
    if f.endpoints:
        raise NotCovered("the store's feature tables are per version, not per endpoint: the raw logs answer")
    days, pieces = split(f)
    out = store_tally(ws, store, versions, days)
    if pieces:
        cond, params = pieces_where(pieces, versions)
        for v, x in raw_tally(ws, versions, cond, params, prediction_kind(ws)).items():
            out[v].add(x)
    return out


def traffic(ws: Workspace, f: Filters) -> pl.DataFrame:
    """Requests, first and last request per version from the store's whole days and the raw
    pieces around them (version_traffic's frame before its time columns: version,
    requests, first_us, last_us)."""
    store = store_of(ws)
    days, pieces = split(f)
    cond, params = replace(days, model_versions=()).where(time=False)
    rel, p = store.relation("traffic/day")
    t = run(ws.con, f"SELECT model_version AS v, CAST(sum(n) AS BIGINT) AS n FROM {rel} WHERE "
                    f"{day_range(days).format(col='t')} AND {cond} GROUP BY 1 HAVING sum(n) <> 0", params | p)
    out = {r["v"]: Tally(requests=int(r["n"])) for r in t.iter_rows(named=True)}
    if out:
        _first_last(ws, store, out, days)
    if pieces:
        c, pp = pieces_where(pieces)
        raw = ws.source.query(ws.con, "SELECT model_version AS v, count(*) AS requests, min(ts_us) AS a, "
                                      f"max(ts_us) AS b FROM logs WHERE {c} GROUP BY 1", pp)
        for r in raw.iter_rows(named=True):
            out.setdefault(r["v"], Tally()).add(Tally(requests=int(r["requests"]), first_us=r["a"], last_us=r["b"]))
    rows = [(v, x.requests, x.first_us, x.last_us) for v, x in out.items() if x.requests]
    return pl.DataFrame(rows, schema={"version": pl.String, "requests": pl.Int64, "first_us": pl.Int64,
                                      "last_us": pl.Int64}, orient="row")


def order_statistics(ws: Workspace, f: Filters, wanted: dict[str, tuple[Tally, np.ndarray]]
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """version -> (ranks, values): the exact r-th smallest successful latency for every
    wanted rank, by the sketch's two passes: the tally's histogram says which bin holds
    each rank, one raw read fetches the values of those bins only."""
    need, where = [], {}
    for v, (t, ranks) in wanted.items():
        bins = np.array(sorted(t.hist), dtype=np.int64)
        counts = np.array([t.hist[b] for b in bins], dtype=np.int64)
        cum = np.cumsum(counts)
        idx = np.searchsorted(cum, ranks)          # the first bin whose cumulative count reaches r
        where[v] = (bins[idx], ranks - 1 - (cum[idx] - counts[idx]), dict(zip(bins.tolist(), counts.tolist(),
                                                                              strict=True)))
        need += [(v, int(b)) for b in np.unique(bins[idx])]
    if not need:
        return {}
    cond, params = replace(f, model_versions=tuple(wanted)).where()
    values = ws.source.query(
        ws.con, f"SELECT * FROM (SELECT model_version AS v, {sketch.bin_sql('latency_ms')} AS bin, latency_ms AS x "
                f"FROM logs WHERE {cond} AND NOT is_error AND latency_ms IS NOT NULL) "
                "WHERE (v, bin) IN (SELECT v, bin FROM need)", params,
        tables={"need": pl.DataFrame(need, schema={"v": pl.String, "bin": pl.Int32}, orient="row")})
    groups = {(k[0], k[1]): np.sort(g["x"].to_numpy()) for k, g in values.partition_by("v", "bin", as_dict=True).items()}
    out = {}
    for v, (bins, k, counts) in where.items():
        vals = np.empty(len(k))
        for i, (b, j) in enumerate(zip(bins.tolist(), k.tolist(), strict=True)):
            g = groups.get((v, b))
            if g is None or len(g) != counts[b]:
                raise NotCovered("the raw logs no longer match the rollups' latency bins")
            vals[i] = g[j]
        out[v] = (wanted[v][1], vals)
    return out

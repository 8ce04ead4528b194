"""The `rollback` alert rule: a canary that is significantly worse than its baseline on a
guarded metric (monitoring.toml [compare]) fires, through the same `compare.judge` as the
Compare page and `python -m monitoring compare`.

At every look (hourly by default) the versions that served in the trailing `active_hours`
are paired as on the page: the newest against the one with most traffic. The evidence is
cumulative from the moment both served, so the looks accumulate traffic as a canary does;
the always-valid intervals keep the false-alarm rate at [compare] alpha however often it
is looked at. A sequential test that has rejected has decided: the rule keeps firing for
that pair while both still serve. Latency percentiles come from the log-histogram rollup
(within its ±0.5%), counts are exact.

    [alerts.rules.rollback]
    look_minutes = 60
    active_hours = 24
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ..logs.workspace import Workspace
from ..metrics import service as metrics
from ..metrics import sketch
from ..query.filters import Filters, bucket_sql
from .engine import PROVIDERS, Context
from .rules import Signal, hold, rule

if TYPE_CHECKING:
    from ..compare.evidence import VersionStats

# compare and quality are imported where they are used: their packages import scipy.stats
# (0.7 s), and this module is imported by every `monitoring.alerts` import, which the time
# charts' alert markers make on every page.

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@rule("rollback", area="rollout", title="Canary worse than its baseline: roll back", page="Compare",
      defaults={"look_minutes": 60, "active_hours": 24},
      help={"look_minutes": "how often the comparison is looked at (cumulative evidence)",
            "active_hours": "versions with requests in this trailing window are compared"},
      needs=("rollback",))
def rollback(ctx: Context, p: dict, slo) -> list[Signal]:
    out = []
    t = np.array([x.timestamp() for x in ctx.times])
    for pair in ctx.extra["rollback"]:
        looks = np.asarray(pair["looks"], dtype=float)
        idx = np.searchsorted(looks, t, side="right") - 1
        judged = (idx >= 0) & np.isin(idx, np.flatnonzero(pair["judged"]))
        state = np.where(idx >= 0, np.asarray(pair["firing"])[np.maximum(idx, 0)], False)
        firing = hold(judged, judged & state) & (idx >= 0) & (t <= pair["end"])
        value = np.where(idx >= 0, np.asarray(pair["value"])[np.maximum(idx, 0)], np.nan)
        message = pair["message"].replace("{", "{{").replace("}", "}}")
        out.append(Signal(f"{pair['candidate']} vs {pair['baseline']}", firing, value, message, 0.0, ""))
    return out


def _series(ws: Workspace, end: datetime | None, step_s: int, labels: bool, ctx: Context | None = None,
            scores: bool = True):
    """Per (look bucket, version): the latency histogram of successful requests, the request,
    error and score counts, and (with labels) labelled and correct counts.

    The histograms, requests and errors are each version's `metrics.rollup` (the rollup
    store's hours when it covers the logs, else a scan); the score sums need the rows (one
    scan of the successful requests; none with `scores=False`: score_n 0, no sums); the
    labels are the accuracy rule's per grid step when it ran (ctx.extra['labels_by_version']),
    added up per look, else one query for every version."""
    from ..quality import ground_truth

    rolled = {}
    for v, first, _ in ws.extent.version_spans:     # versions that served before `end`
        if end is None or first < end:
            r = metrics.rollup(ws.source, ws.con, Filters(end=end, model_versions=(v,)), step_s)
            if (r := r.filter(pl.col("bucket").is_not_null())).height:
                rolled[v] = r
    versions = sorted(rolled)
    frames = [r.group_by("bucket").agg(pl.col("n").sum().alias("requests"),
                                       pl.col("n").filter(pl.col("is_error")).sum().alias("errors"))
              .select(pl.col("bucket").alias("b"), pl.lit(v, pl.String).alias("v"), "requests", "errors")
              for v, r in rolled.items()]
    counts = (pl.concat(frames).cast({"b": pl.Int64, "requests": pl.Int64, "errors": pl.Int64}) if frames
              else pl.DataFrame(schema={"b": pl.Int64, "v": pl.String, "requests": pl.Int64, "errors": pl.Int64}))
    sums = pl.DataFrame(schema={"b": pl.Int64, "v": pl.String, "score_n": pl.Int64, "score_sum": pl.Float64,
                                "score_sq": pl.Float64})
    if scores and ws.source.has("score") and versions:
        cond, params = Filters(end=end).where()
        params["step_us"] = step_s * 1_000_000
        sums = ws.source.query(ws.con, f"SELECT {bucket_sql('ts_us', '$step_us')} AS b, model_version AS v, "
                                       "count(score) AS score_n, sum(score) AS score_sum, "
                                       "sum(score * score) AS score_sq FROM logs "
                                       f"WHERE {cond} AND ts_us IS NOT NULL AND NOT is_error GROUP BY ALL",
                               params).cast(sums.schema)
    counts = (counts.join(sums, on=["b", "v"], how="left").with_columns(pl.col("score_n").fill_null(0))
              .sort("b", "v"))
    frames = [r.filter(~pl.col("is_error") & pl.col("bin").is_not_null())
              .select(pl.col("bucket").alias("b"), pl.lit(v, pl.String).alias("v"), "bin", "n") for v, r in rolled.items()]
    hist = pl.concat(frames) if frames else pl.DataFrame(schema={"b": pl.Int64, "v": pl.String, "bin": pl.Int32,
                                                                 "n": pl.Int64})
    acc: dict[str, pl.DataFrame] = {}
    if labels:
        shared = (ctx.extra.get("labels_by_version") if ctx is not None else None)
        if shared is not None and step_s % shared[0] == 0:
            k = step_s // shared[0]
            by_v = (shared[1].with_columns(pl.col("bucket").floordiv(k)).group_by("bucket", "v")
                    .agg(pl.col("labelled").sum(), pl.col("correct").sum()))
        else:
            reviewed = ground_truth.reviewed_labels(ws.config.database_url)
            by_v = (ground_truth.accuracy_by_bucket(ws, step_s, Filters(end=end), reviewed, by_version=True)
                    if ground_truth.available(ws, reviewed) else None)
        if by_v is not None:     # every version, labelled or not (its labelled count is then 0)
            acc = {v: by_v.filter(pl.col("v") == v).drop("v").sort("bucket") for v in versions}
    return hist, counts, acc


class _Running:
    """Cumulative evidence of one version from a pair's first look bucket on."""

    def __init__(self, v: str, n_bins: int, labels: bool, flags: dict[str, bool]):
        self.v, self.hist, self.labels, self.flags = v, np.zeros(n_bins, dtype=np.int64), labels, flags
        self.c = np.zeros(5)          # requests, errors, score_n, score_sum, score_sq
        self.lab = np.zeros(2, dtype=np.int64)

    def add(self, b: int, hist: dict, counts: dict, acc: dict) -> None:
        if (self.v, b) in hist:
            idx, n = hist[(self.v, b)]
            np.add.at(self.hist, idx, n)
        if (self.v, b) in counts:
            self.c += counts[(self.v, b)]
        if (self.v, b) in acc:
            self.lab += acc[(self.v, b)]

    def stats(self, reps: np.ndarray) -> VersionStats:
        from ..compare.evidence import Moments, VersionStats, quantiles_from_histogram

        requests, errors, n_s, s1, s2 = self.c
        score = None
        if n_s > 1:
            mean = s1 / n_s
            score = Moments(int(n_s), mean, max(0.0, (s2 - n_s * mean * mean) / (n_s - 1)))
        return VersionStats(self.v, int(requests), int(errors), quantiles_from_histogram(reps, self.hist),
                            score=score, labelled=int(self.lab[0]) if self.labels else None,
                            correct=int(self.lab[1]), **self.flags)


def provide(ws: Workspace, ctx: Context, at: datetime | None, params: dict[str, Any]) -> None:
    """ctx.extra['rollback']: per compared pair, the looks (epoch s), whether each was
    judged and fired, a value (guarded metrics breached) and the first firing sentence."""
    from ..compare.settings import load_compare_settings
    from ..compare.verdict import judge

    settings = load_compare_settings(ws.config)
    step_s = int(params["look_minutes"] * 60)
    # The judge reads unguarded metrics for no verdict: no labels or score sums for them.
    hist_df, counts_df, acc_df = _series(ws, at, step_s, "accuracy" in settings.guarded, ctx,
                                         scores="score_mean" in settings.guarded)
    ctx.extra["rollback"] = pairs = []
    if counts_df.height == 0:
        return
    bins = np.sort(hist_df["bin"].unique().to_numpy()) if hist_df.height else np.zeros(0, dtype=np.int64)
    reps = sketch.representative(bins)
    hist = {(k[0], k[1]): (np.searchsorted(bins, g["bin"].to_numpy()), g["n"].to_numpy())
            for k, g in hist_df.partition_by("v", "b", as_dict=True).items()}
    counts = {(r["v"], r["b"]): np.array([r["requests"], r["errors"], r["score_n"] or 0, r["score_sum"] or 0.0,
                                          r["score_sq"] or 0.0], dtype=float)
              for r in counts_df.iter_rows(named=True)}
    acc = {(v, r["bucket"]): np.array([r["labelled"], r["correct"]], dtype=np.int64)
           for v, df in acc_df.items() for r in df.iter_rows(named=True)}
    labels = bool(acc_df)
    flags = {"has_latency": ws.source.has("latency_ms"), "has_status": ws.source.has("status")}
    req = {k: c[0] for k, c in counts.items()}
    first: dict[str, int] = {}
    for v, b in sorted(req, key=lambda k: k[1]):
        first.setdefault(v, b)
    b0, b1 = min(k[1] for k in req), max(k[1] for k in req)
    active_k = max(1, int(params["active_hours"] * 3600 // step_s))
    versions = sorted(first)
    # requests per version in the trailing active window, kept as a running sum
    trailing = dict.fromkeys(versions, 0.0)
    current: dict | None = None
    run: tuple[_Running, _Running] | None = None
    for b in range(b0, b1 + 1):
        for v in versions:
            trailing[v] += req.get((v, b), 0.0) - req.get((v, b - active_k), 0.0)
        live = [v for v in versions if trailing[v] > 0]
        if len(live) < 2:
            current = None
            continue
        cand = max(live, key=lambda v: (first[v], v))
        base = max((v for v in live if v != cand), key=lambda v: (trailing[v], -first[v]))
        if current is None or (current["baseline"], current["candidate"]) != (base, cand):
            start = max(first[base], first[cand])
            current = {"baseline": base, "candidate": cand, "looks": [], "judged": [], "firing": [], "value": [],
                       "message": "", "end": float("inf")}
            pairs.append(current)
            run = (_Running(base, len(bins), labels, flags), _Running(cand, len(bins), labels, flags))
            for bb in range(start, b):
                for r in run:
                    r.add(bb, hist, counts, acc)
        for r in run:
            r.add(b, hist, counts, acc)
        fired = bool(current["firing"]) and current["firing"][-1]
        value = current["value"][-1] if fired else 0.0
        if not fired:     # a sequential test that rejected has decided
            result = judge(run[0].stats(reps), run[1].stats(reps), settings, None)
            fired = result.rollback
            value = float(sum(m.worse for m in result.metrics if m.guarded))
            if fired and not current["message"]:
                current["message"] = f"{cand} is worse than {base} on a guarded metric: " + " ".join(result.reasons).rstrip(".")
        look_t = (b + 1) * step_s
        current["looks"].append(look_t)
        current["judged"].append(True)
        current["firing"].append(fired)
        current["value"].append(value)
        current["end"] = look_t + step_s
    if current is not None:
        current["end"] = float("inf")


PROVIDERS["rollback"] = provide

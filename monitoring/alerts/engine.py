"""Evaluate the alert rules over the whole log history, on a fixed time grid.

Two reads (the rollup store, or scans of the logs) build the context: per grid step (5
minutes by default) the requests, failures and log-histogram of successful latencies; per
minute the request counts (silences, expected traffic). Rules work on small arrays: trailing
windows are differences of cumulative sums, windowed percentiles merge histograms (±0.5%).

An `Episode` is a run of grid points where a rule fired: it starts at the first firing
point and resolves at the first point after it where the rule no longer fires (None while
it still fires at the end of the history).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from ..config import ConfigError, check_keys, coerce
from ..logs.workspace import Workspace
from ..metrics import anomalies, sketch
from ..metrics import service as metrics
from ..query.filters import Filters, whole_range
from .rules import RULES, Rule, Signal

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_STEP_MINUTES = 5
MAX_CELLS = 30_000_000   # grid points x latency bins held at once; coarser steps beyond
DEFAULT_MERGE_MINUTES = 30   # quiet spells this short inside an episode do not resolve it


@dataclass(frozen=True)
class Episode:
    rule: str
    subject: str
    area: str
    title: str
    page: str
    start: datetime
    end: datetime | None          # resolved at; None while firing
    peak: float
    threshold: float
    unit: str
    message: str

    @property
    def firing(self) -> bool:
        return self.end is None

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "subject": self.subject, "area": self.area, "title": self.title,
                "page": self.page, "start": self.start, "end": self.end, "firing": self.firing,
                "peak": self.peak, "threshold": self.threshold, "unit": self.unit, "message": self.message}


@dataclass
class Context:
    step_s: int
    b0: int                                   # first grid bucket index (step units since epoch)
    times: list[datetime]                     # evaluation time of each point: its bucket's end
    series: dict[str, np.ndarray]             # requests, errors, expected per bucket
    hist: np.ndarray                          # buckets x bins, successful requests
    bins: np.ndarray                          # bin id of each hist column
    minute0: int
    minute_counts: np.ndarray                 # requests per minute from minute0
    minute_expected: np.ndarray
    within_data: np.ndarray                   # grid point lies between first and last request
    extra: dict[str, Any] = field(default_factory=dict)   # providers for drift, quality, ...

    def rolling(self, name: str, k: int) -> np.ndarray:
        x = self.series[name].astype(float)
        cs = np.concatenate([[0.0], np.cumsum(x)])
        idx = np.arange(1, len(x) + 1)
        return cs[idx] - cs[np.maximum(idx - k, 0)]

    def rolling_quantile(self, q: float, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The q-quantile of successful latencies over the trailing k buckets, and its n."""
        n_rows = self.hist.shape[0]
        if n_rows == 0 or self.hist.shape[1] == 0:
            return np.full(n_rows, np.nan), np.zeros(n_rows)
        cs = np.cumsum(self.hist, axis=0, dtype=np.int64)
        cs = np.vstack([np.zeros((1, cs.shape[1]), dtype=np.int64), cs])
        idx = np.arange(1, n_rows + 1)
        window = cs[idx] - cs[np.maximum(idx - k, 0)]
        n = window.sum(axis=1)
        cum = np.cumsum(window, axis=1)
        h = q * np.maximum(n - 1, 0)
        lo, hi = np.floor(h), np.ceil(h)
        reps = sketch.representative(self.bins)
        v_lo = reps[np.minimum((cum <= lo[:, None]).sum(axis=1), len(reps) - 1)]
        v_hi = reps[np.minimum((cum <= hi[:, None]).sum(axis=1), len(reps) - 1)]
        value = np.where(n > 0, v_lo + (h - lo) * (v_hi - v_lo), np.nan)
        return value, n

    def silence(self) -> tuple[np.ndarray, np.ndarray]:
        """At each grid point: minutes since the last request, and the requests expected in them."""
        counts = self.minute_counts
        m = np.arange(len(counts))
        last = np.maximum.accumulate(np.where(counts > 0, m, -1))
        exp_cs = np.concatenate([[0.0], np.cumsum(self.minute_expected)])
        # every grid point at once (a 4-year history has 400k of them): its time is its
        # bucket's end, (b0 + i + 1) * step_s seconds since the epoch
        t_s = (self.b0 + np.arange(len(self.times), dtype=np.int64) + 1) * self.step_s
        end_m = t_s // 60 - self.minute0                    # minutes [0, end_m) have happened
        ok = (end_m > 0) & np.asarray(self.within_data, dtype=bool)
        end_m = np.clip(end_m, 1, len(counts))
        seen = last[end_m - 1]
        ok &= seen >= 0
        out_min = np.where(ok, end_m - 1 - seen, 0).astype(np.float64)
        out_exp = np.where(ok, exp_cs[end_m] - exp_cs[np.maximum(seen, -1) + 1], 0.0)
        return out_min, out_exp


# Context parts provided by rule modules of their own (e.g. alerts/rollback.py): need name ->
# fn(ws, ctx, at, params) that fills ctx.extra[need]; run when a rule needing it is enabled.
PROVIDERS: dict[str, Callable[[Workspace, Context, datetime | None, dict[str, Any]], None]] = {}


def rule_params(cfg_section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Effective parameters per rule: defaults overridden by [alerts.rules.NAME]."""
    configured = cfg_section.get("rules", {}) or {}
    if not isinstance(configured, dict):
        raise ConfigError("[alerts.rules] must be a table of rule tables")
    check_keys("[alerts.rules]", configured, RULES, what="rule")
    out = {}
    for name, r in RULES.items():
        params = dict(r.defaults)
        table = configured.get(name) or {}
        if not isinstance(table, dict):
            raise ConfigError(f"[alerts.rules.{name}] must be a table, got {table!r}")
        check_keys(f"[alerts.rules.{name}]", table, params)
        for key, value in table.items():
            where = f"[alerts.rules.{name}] {key}"
            value = coerce(where, value, params[key])
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ConfigError(f"{where} cannot be negative, got {value!r}")
            params[key] = value
        out[name] = params
    return out


def build_context(ws: Workspace, at: datetime | None = None, step_minutes: int = DEFAULT_STEP_MINUTES,
                  f: Filters | None = None) -> Context | None:
    """Roll the logs up (up to `at`, exclusive) into the arrays the rules read; None if empty."""
    ext = ws.extent
    if ext.rows == 0 or ext.first is None:
        return None
    first = ext.first
    end = min(at, ext.last + timedelta(minutes=1)) if at else ext.last + timedelta(minutes=1)
    if end <= first:
        return None
    step_s = step_minutes * 60
    f = f or Filters()
    window = Filters(start=first, end=end, model_name=f.model_name, model_versions=f.model_versions,
                     endpoints=f.endpoints)
    # The same rows on whole minutes, which the store answers (an `at` inside a minute: raw)
    whole = replace(window, start=whole_range(ext)[0], end=end if at and at == end else whole_range(ext)[1])
    rolled = metrics.rollup(ws.source, ws.con, whole, step_s).rename({"bucket": "b"})
    minutes = anomalies.minute_counts(ws.source, ws.con, whole, baseline_days=0)
    # Rows with no latency (batch logs) have no bin: they count as traffic, not as latencies.
    bins = np.sort(rolled.filter(~pl.col("is_error") & pl.col("bin").is_not_null())["bin"].unique().to_numpy())
    # Long histories get a coarser grid (merging the rollup's buckets) so that grid points x
    # latency bins stay within MAX_CELLS.
    while ((int(end.timestamp()) - 1) // step_s - int(first.timestamp()) // step_s + 1) \
            * max(len(bins), 1) > MAX_CELLS:
        step_s *= 2
        rolled = rolled.with_columns(pl.col("b") // 2).group_by("b", "is_error", "bin").agg(pl.col("n").sum())
    b0 = int(first.timestamp()) // step_s
    b1 = (int(end.timestamp()) - 1) // step_s
    n_b = b1 - b0 + 1
    ok = rolled.filter(~pl.col("is_error") & pl.col("bin").is_not_null())
    hist = np.zeros((n_b, len(bins)), dtype=np.int32)
    if ok.height:
        np.add.at(hist, (ok["b"].to_numpy() - b0, np.searchsorted(bins, ok["bin"].to_numpy())),
                  ok["n"].to_numpy())
    requests = np.bincount(rolled["b"].to_numpy() - b0, weights=rolled["n"].to_numpy(), minlength=n_b)
    err = rolled.filter(pl.col("is_error"))
    errors = np.bincount(err["b"].to_numpy() - b0, weights=err["n"].to_numpy(), minlength=n_b) \
        if err.height else np.zeros(n_b)

    minute0 = int(first.timestamp()) // 60
    minute1 = (int(end.timestamp()) - 1) // 60
    mc = np.zeros(minute1 - minute0 + 1)
    np.add.at(mc, minutes["minute"].to_numpy() - minute0, minutes["n"].to_numpy())
    m_exp = anomalies.expected_per_minute(minutes, np.arange(minute0, minute1 + 1))
    expected = np.bincount((np.arange(minute0, minute1 + 1) * 60 // step_s) - b0, weights=m_exp, minlength=n_b)

    times = [_EPOCH + timedelta(seconds=(b0 + i + 1) * step_s) for i in range(n_b)]
    last_seen = ext.last if at is None else min(ext.last, at)
    t_s = (b0 + np.arange(n_b, dtype=np.int64) + 1) * step_s   # each time, as epoch seconds
    within = (first.timestamp() <= t_s - step_s) & (t_s <= last_seen.timestamp() + step_s)
    return Context(step_s=step_s, b0=b0, times=times,
                   series={"requests": requests, "errors": errors, "expected": expected[:n_b]},
                   hist=hist, bins=bins, minute0=minute0, minute_counts=mc, minute_expected=m_exp,
                   within_data=within,
                   # For rules that call the shared detectors (anomalies.find_gaps) directly.
                   extra={"minutes": minutes, "window": window,
                          "open_end": at is not None and ext.last is not None and at < ext.last})


def episodes_of(rule: Rule, sig: Signal, times: list[datetime], merge_points: int = 0) -> list[Episode]:
    """Runs of firing points; runs separated by at most `merge_points` quiet points are one
    episode (no flapping when a noisy value dips under its threshold for a moment)."""
    out = []
    fire = np.asarray(sig.firing, dtype=bool)
    if not fire.any() and not sig.spans:
        return out
    edges = np.diff(np.concatenate([[0], fire.astype(np.int8), [0]]))
    runs: list[list[int]] = []
    for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if runs and s - runs[-1][1] <= merge_points:
            runs[-1][1] = e
        else:
            runs.append([s, e])
    if sig.spans is not None:
        # The rule's own incidents (e.g. gaps from the shared detector): their exact times.
        return [Episode(rule=rule.name, subject=sig.subject, area=rule.area, title=rule.title,
                        page=rule.page, start=a, end=b, peak=v, threshold=sig.threshold, unit=sig.unit,
                        message=sig.message.format(value=v, threshold=sig.threshold, subject=sig.subject))
                for a, b, v in sig.spans]
    for s, e in runs:
        vals = sig.value[s:e]
        finite = vals[np.isfinite(vals)]
        peak = float("nan")
        if finite.size:
            peak = float(finite.min() if rule.worst == "min" else finite.max())
        end = times[e] if e < len(times) else None
        out.append(Episode(rule=rule.name, subject=sig.subject, area=rule.area, title=rule.title,
                           page=rule.page, start=times[s], end=end, peak=peak, threshold=sig.threshold,
                           unit=sig.unit, message=sig.message.format(value=peak, threshold=sig.threshold,
                                                                     subject=sig.subject)))
    return out


def evaluate(ws: Workspace, at: datetime | None = None,
             step_minutes: int = DEFAULT_STEP_MINUTES) -> list[Episode]:
    """Every episode of every enabled rule over the history (up to `at`)."""
    section = ws.config.section("alerts")
    params = rule_params(section)
    merge_minutes = section.get("merge_minutes", DEFAULT_MERGE_MINUTES)
    if isinstance(merge_minutes, bool) or not isinstance(merge_minutes, int | float) or merge_minutes < 0:
        raise ConfigError("[alerts] merge_minutes must be a number of minutes >= 0")
    ctx = build_context(ws, at, step_minutes)
    if ctx is None:
        return []
    if params["accuracy_floor"]["enabled"]:
        _add_labels(ws, ctx, at)
    if params["drift"]["enabled"]:
        _add_drift(ws, ctx, at, params["drift"]["chunk"])
    for name, r in RULES.items():
        for need in r.needs:
            if need in PROVIDERS and params[name]["enabled"] and need not in ctx.extra:
                PROVIDERS[need](ws, ctx, at, params[name])
    if params["quality_floor"]["enabled"] or params["estimated_quality_floor"]["enabled"]:
        from .quality_rules import add_quality

        add_quality(ws, ctx, at, params)
    out: list[Episode] = []
    for name, r in RULES.items():
        p = params[name]
        if not p["enabled"]:
            continue
        if any(need not in ctx.extra for need in r.needs):
            continue
        for sig in r.evaluate(ctx, p, ws.config.slo):
            out.extend(episodes_of(r, sig, ctx.times, int(merge_minutes * 60 // ctx.step_s)))
    return sorted(out, key=lambda e: (e.start, e.rule, e.subject))


def _add_labels(ws: Workspace, ctx: Context, at: datetime | None) -> None:
    """Late labels per grid step (labelled, correct), for the accuracy and rollback rules."""
    from ..quality import ground_truth

    reviewed = ground_truth.reviewed_labels(ws.config.database_url)
    if not ground_truth.available(ws, reviewed):
        return
    df = ground_truth.accuracy_by_bucket(ws, ctx.step_s, Filters(end=at) if at else None, reviewed, by_version=True)
    ctx.extra["labels_by_version"] = (ctx.step_s, df)    # the rollback rule's looks add these up
    n = len(ctx.times)
    idx = df["bucket"].to_numpy() - ctx.b0
    keep = (idx >= 0) & (idx < n)
    ctx.series["labelled"] = np.bincount(idx[keep], weights=df["labelled"].to_numpy()[keep], minlength=n)
    ctx.series["correct"] = np.bincount(idx[keep], weights=df["correct"].to_numpy()[keep], minlength=n)
    if ctx.series["labelled"].sum():
        ctx.extra["labels"] = True


def _add_drift(ws: Workspace, ctx: Context, at: datetime | None, chunk: str) -> None:
    """Per-chunk drift of everything after the reference, for the drift rule."""
    from dataclasses import replace

    from ..drift import (
        analyze,
        analyze_over_time,
        default_current,
        load_settings,
        resolve_reference,
    )

    settings = load_settings(ws.config.section("drift"))
    try:
        ref = resolve_reference(ws.config, settings, ws.extent)
    except ValueError:
        return  # no reference: nothing to compare with
    cur = default_current(ref, ws.extent)
    if at is not None:
        cur = replace(cur, end=min(cur.end, at))
        if cur.end <= cur.start:
            return
    result = analyze(ws, ref, cur, settings)
    if result.message:
        return
    from ..drift import parse_chunk

    try:
        parse_chunk(chunk)
    except ValueError as exc:
        raise ConfigError(f"[alerts.rules.drift] {exc}") from None
    ot = analyze_over_time(ws, ref, cur, result, settings, chunk=chunk)
    ctx.extra["drift"] = ot
    ctx.extra["drift_onsets"] = _drift_onsets(ws, ref, cur, result, settings, ot)


# Below this many rows an hour on average, a drifted chunk is not re-read hour by hour.
ONSET_MIN_ROWS_PER_HOUR = 30


def _drift_onsets(ws: Workspace, ref, cur: Filters, result, settings, ot) -> dict[tuple[str, int], datetime]:
    """When each drift began, to the hour: (column, first chunk of a drifted run) -> onset.

    A chunk that drifted as a whole says only that the drift began by its end; stamping the
    alert at the chunk's start put it up to a chunk (half a day for a noon onset in day
    chunks) before the drift. Each run's first chunk is scored again hour by hour, for its
    drifted columns only, with the same one judgement, and each hour read as drifted (`drifted`: above the
    threshold and the chance band of its size), clean (not drifted, at or under the
    threshold, or by its p-value) or inconclusive (above the threshold but inside its band:
    too few rows that hour to tell). The onset is the drifted hour where a step from clean to
    drifted fits best (fewest drifted hours before it plus clean hours from it; the earliest
    on a tie; inconclusive hours count for neither), else the chunk's start. A chunk with
    fewer than `ONSET_MIN_ROWS_PER_HOUR` rows an hour on average keeps its start: hours that
    small are all inside their chance bands, so re-reading them costs time and says nothing
    (a sparse multi-year history has hundreds of single-chunk runs)."""
    from dataclasses import replace

    from ..drift import analyze_over_time

    scores = ot.scores.filter(pl.col("score").is_not_null())
    chunks = {int(r["k"]): (r["start"], r["end"]) for r in ot.chunks.iter_rows(named=True)
              if r["start"] is not None}
    rows = {int(r["k"]): int(r["rows"] or 0) for r in ot.chunks.iter_rows(named=True)}
    firsts: dict[int, list[str]] = {}
    for name in scores.filter(pl.col("drifted"))["name"].unique(maintain_order=True).to_list():
        ks = sorted(int(k) for k in scores.filter((pl.col("name") == name) & pl.col("drifted"))["k"].to_list())
        for i, k in enumerate(ks):
            if k in chunks and (i == 0 or ks[i - 1] != k - 1):
                firsts.setdefault(k, []).append(name)
    out = {(name, k): chunks[k][0] for k, names in firsts.items() for name in names}
    for k, names in firsts.items():
        start, end = chunks[k]
        hours_in = (end - start) / timedelta(hours=1)
        if hours_in <= 1 or rows.get(k, 0) < ONSET_MIN_ROWS_PER_HOUR * hours_in:
            continue
        # Only this chunk's hours and only its drifted columns: the chance bands (simulated
        # per column and size) are most of the cost.
        def keep(f, names=names):
            return f if f is not None and f.name in names else None
        only = replace(result, features=tuple(f for f in result.features if f.name in names),
                       prediction=keep(result.prediction), score=keep(result.score),
                       label=keep(result.label), multivariate=keep(result.multivariate))
        hours = analyze_over_time(ws, ref, replace(cur, start=max(start, cur.start or start),
                                                   end=min(end, cur.end or end)), only, settings, chunk="hour")
        h = (hours.scores.filter(pl.col("score").is_not_null())
             .join(hours.chunks.select("k", pl.col("start").alias("hour")), on="k")
             .with_columns(pl.when(pl.col("drifted")).then(1)
                           .when(pl.col("p_value").is_null() & pl.col("band").is_not_null()
                                 & (pl.col("score") > pl.col("threshold"))).then(0)
                           .otherwise(-1).alias("state")))   # 1 drifted, 0 inconclusive, -1 clean
        for name in names:
            hs = h.filter((pl.col("name") == name) & (pl.col("hour") >= start) & (pl.col("hour") < end)).sort("hour")
            i = step_onset(hs["state"].to_list())
            if i is not None:
                out[(name, k)] = max(hs["hour"][i], start)
    return out


def step_onset(states: list[int]) -> int | None:
    """Where a step from clean to drifted fits a run of hours best: the index of the drifted
    hour (state 1) with the fewest drifted hours before it plus clean hours (-1) from it, the
    earliest on a tie; inconclusive hours (0) count for neither. None without a drifted hour."""
    best = None
    for i, st in enumerate(states):
        if st == 1:
            misfit = states[:i].count(1) + states[i:].count(-1)
            if best is None or misfit < best[0]:
                best = (misfit, i)
    return None if best is None else best[1]

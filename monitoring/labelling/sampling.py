"""Draw a review sample from the logs, in DuckDB, reproducibly.

    spec = QueueSpec(filters=Filters(start, end), size=60, seed=7, stratify_by="model_version")
    drawn = draw(ws.source, ws.con, spec)       # Sample: items (Polars), population, notes

Only successful requests with a prediction are eligible (failed requests have nothing to
review). Every choice is an ordering by md5(request_id # salt # seed): the same logs and
settings give the same sample on any machine and DuckDB version, and no row is pulled into
Python except the chosen ones.

The sample has a *random* part (uniform, or stratified with design weights) that the
accuracy estimates use, and optional *targeted* quotas (the lowest scores, drifted
segments) drawn from what the random part left, at most half of the sample together.
Targeted items are reported apart: they are chosen to find errors, not to measure.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import polars as pl

from ..logs.source import LogSource, quote_ident
from ..query.filters import Filters

STRATIFY_COLUMNS = ("model_version", "endpoint", "prediction", "model_name")
ALLOCATIONS = ("equal", "proportional")
MISSING = "(missing)"
MAX_CLASSES = 20          # more distinct predictions than this: no per-class buttons
MAX_SIZE = 100_000
MAX_SEED = 2**63 - 1   # stored as a signed 64-bit integer


class SamplingError(ValueError):
    """The settings cannot give a sample; the message says which setting and why."""


@dataclass(frozen=True)
class Segment:
    """A slice of the logs to over-sample: column values (categorical) or [low, high)."""

    column: str
    values: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None

    def describe(self) -> str:
        if self.values:
            return f"{self.column} in {', '.join(self.values)}"
        lo = "" if self.low is None else f"{self.low:g} ≤ "
        hi = "" if self.high is None else f" < {self.high:g}"
        return f"{lo}{self.column}{hi}"

    @classmethod
    def parse(cls, text: str) -> Segment:
        """`device=android,ios` (values) or `income=80000..` / `income=..2e4` / `x=1..5`."""
        column, sep, rest = text.partition("=")
        column, rest = column.strip(), rest.strip()
        if not sep or not column or not rest:
            raise SamplingError(f"segment {text!r}: expected COLUMN=VALUE[,VALUE] or COLUMN=LOW..HIGH")
        if ".." in rest:
            lo_s, _, hi_s = rest.partition("..")
            try:
                lo = float(lo_s) if lo_s.strip() else None
                hi = float(hi_s) if hi_s.strip() else None
            except ValueError as exc:
                raise SamplingError(f"segment {text!r}: range bounds must be numbers") from exc
            if lo is None and hi is None:
                raise SamplingError(f"segment {text!r}: give at least one bound")
            return cls(column, low=lo, high=hi)
        values = tuple(v.strip() for v in rest.split(",") if v.strip())
        return cls(column, values=values)


@dataclass(frozen=True)
class QueueSpec:
    """Everything that decides a queue's sample; stored with the queue to reproduce it."""

    filters: Filters = field(default_factory=Filters)
    size: int = 60
    seed: int = 0
    stratify_by: str | None = None          # one of STRATIFY_COLUMNS; None = uniform
    allocation: str = "equal"               # strata: equal shares, or proportional to traffic
    low_score: int = 0                      # targeted: items from the lowest-score tail
    low_score_quantile: float = 0.10        # ... the tail: scores at or below this quantile
    segments: tuple[Segment, ...] = ()      # targeted: drifted segments
    segment_size: int = 0                   # ... how many items from them
    calibration_share: float = 0.0          # share of the random part labelled blind by several
    calibration_reviewers: int = 2          # ... reviewers each
    lease_seconds: float = 600.0            # how long a claimed item stays with its reviewer
    name: str | None = None

    @property
    def strategy(self) -> str:
        return "stratified" if self.stratify_by else "uniform"

    @property
    def targeted(self) -> int:
        return self.low_score + self.segment_size

    def validate(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise SamplingError(f"seed must be a whole number from 0 to {MAX_SEED:,} (2**63 - 1), got {self.seed!r}")
        if not 1 <= self.size <= MAX_SIZE:
            raise SamplingError(f"size must be between 1 and {MAX_SIZE:,}, got {self.size}")
        if self.stratify_by is not None and self.stratify_by not in STRATIFY_COLUMNS:
            raise SamplingError(f"cannot stratify by {self.stratify_by!r}: choose one of "
                                f"{', '.join(STRATIFY_COLUMNS)}")
        if self.allocation not in ALLOCATIONS:
            raise SamplingError(f"allocation must be one of {', '.join(ALLOCATIONS)}")
        if self.low_score < 0 or self.segment_size < 0:
            raise SamplingError("quota sizes cannot be negative")
        if self.targeted * 2 > self.size:
            raise SamplingError(f"targeted quotas ({self.targeted}) may take at most half of the "
                                f"sample ({self.size // 2} of {self.size})")
        if self.segment_size and not self.segments:
            raise SamplingError("a segment quota needs at least one segment")
        if not 0 < self.low_score_quantile < 1:
            raise SamplingError("low_score_quantile must be in (0, 1)")
        if not 0 <= self.calibration_share <= 1:
            raise SamplingError(f"calibration share must be within 0..1, got {self.calibration_share}")
        if self.calibration_share and not 2 <= self.calibration_reviewers <= 10:
            raise SamplingError("calibration items need between 2 and 10 reviewers each")
        if not 1 <= self.lease_seconds <= 86_400:
            raise SamplingError("lease must be between 1 second and 1 day")
        if self.filters.start and self.filters.end and self.filters.end <= self.filters.start:
            raise SamplingError("the window ends before it starts")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (times as ISO 8601 UTC)."""
        d = asdict(self)
        f = d.pop("filters")
        d["filters"] = {
            "start": _iso(f["start"]), "end": _iso(f["end"]), "model_name": f["model_name"],
            "model_versions": list(f["model_versions"]), "endpoints": list(f["endpoints"]),
        }
        d["segments"] = [asdict(s) | {"values": list(s.values)} for s in self.segments]
        return d


@dataclass
class Sample:
    """The drawn items (one row each, presentation order) and how they were drawn."""

    items: pl.DataFrame          # request_id, ts, model_name, model_version, endpoint,
                                 # prediction (text), score, inputs (JSON text), stratum,
                                 # reason, weight, calibration, position
    population: int              # eligible requests in the window
    strata: dict[str, int]       # stratum -> eligible requests
    allocation: dict[str, int]   # stratum -> random items drawn
    features: list[str]
    classes: list[str]
    notes: list[str] = field(default_factory=list)


def allocate(counts: dict[str, int], n: int, method: str = "equal") -> dict[str, int]:
    """Split `n` items over strata (largest remainder), never more than a stratum holds.

    equal: the same number per stratum; proportional: by the stratum's share of traffic.
    A stratum too small for its share gives the rest to the others.
    """
    if method not in ALLOCATIONS:
        raise SamplingError(f"allocation must be one of {', '.join(ALLOCATIONS)}")
    alloc = {h: 0 for h in counts}
    open_ = {h for h, c in counts.items() if c > 0}
    remaining = min(n, sum(counts.values()))
    while remaining > 0 and open_:
        share = {h: (counts[h] if method == "proportional" else 1) for h in open_}
        total = sum(share.values())
        quota = {h: remaining * share[h] / total for h in open_}
        give = {h: math.floor(q) for h, q in quota.items()}
        left = remaining - sum(give.values())
        for h in sorted(open_, key=lambda h: (-(quota[h] - give[h]), -counts[h], h))[:left]:
            give[h] += 1
        capped = {h for h in open_ if alloc[h] + give[h] > counts[h]}
        if capped:  # fill those strata completely, then share the rest among the others
            for h in capped:
                remaining -= counts[h] - alloc[h]
                alloc[h] = counts[h]
            open_ -= capped
            continue
        for h, g in give.items():
            alloc[h] += g
        remaining = 0
    return alloc


def draw(source: LogSource, con: duckdb.DuckDBPyConnection, spec: QueueSpec) -> Sample:
    """Draw the sample for `spec` from the logs; raises SamplingError on unusable settings."""
    spec.validate()
    if not source.has("prediction"):
        raise SamplingError("the logs have no prediction column: nothing to review")
    where, params = spec.filters.where()
    where += " AND NOT is_error AND prediction IS NOT NULL"
    params = {**params, "seed": str(int(spec.seed))}
    notes: list[str] = []
    if spec.stratify_by == "prediction" and source.types.get("prediction") in ("DOUBLE", "FLOAT", "REAL"):
        raise SamplingError("cannot stratify by a numeric prediction (regression); choose another column")
    if spec.stratify_by:
        try:
            by = source.logs_col(spec.stratify_by)
        except KeyError:
            raise SamplingError(f"cannot stratify by {spec.stratify_by!r}: no such column in the logs") from None
        stratum = f"coalesce(CAST({by} AS VARCHAR), '{MISSING}')"
    else:
        stratum = "'all'"

    counts_df = source.query(con, f"SELECT {stratum} AS stratum, count(*) AS n FROM logs "
                             f"WHERE {where} GROUP BY 1 ORDER BY 1", params)
    counts = {str(r["stratum"]): int(r["n"]) for r in counts_df.iter_rows(named=True)}
    population = sum(counts.values())
    if population == 0:
        raise SamplingError("no successful requests with a prediction in this window and filters")
    n_random = spec.size - spec.targeted
    alloc = allocate(counts, n_random, spec.allocation)
    if sum(alloc.values()) < n_random:
        notes.append(f"only {population:,} eligible requests: the random part has "
                     f"{sum(alloc.values())} items instead of {n_random}")
    strata = list(alloc)
    random_ids = source.query(
        con,
        f"SELECT request_id, stratum FROM (SELECT request_id, {stratum} AS stratum, "
        f"row_number() OVER (PARTITION BY {stratum} ORDER BY md5(request_id || '#r#' || $seed), "
        f"request_id) AS rn FROM logs WHERE {where}) "
        "WHERE rn <= coalesce(($alloc)[list_position($strata, stratum)], 0)",
        {**params, "strata": strata, "alloc": [alloc[h] for h in strata]},
    )
    picked: list[tuple[str, str, str, float]] = [
        (r["request_id"], r["stratum"], "random", counts[r["stratum"]] / alloc[r["stratum"]])
        for r in random_ids.iter_rows(named=True)
    ]
    taken = [p[0] for p in picked]

    if spec.low_score:
        if not source.has("score"):
            raise SamplingError("a lowest-score quota needs a score column in the logs")
        low = source.query(
            con,
            f"SELECT request_id, {stratum} AS stratum FROM logs WHERE {where} "
            f"AND score <= (SELECT quantile_disc(score, $q) FROM logs WHERE {where}) "
            "AND NOT list_contains($taken, request_id) "
            "ORDER BY md5(request_id || '#low#' || $seed), request_id LIMIT $k",
            {**params, "q": spec.low_score_quantile, "taken": taken, "k": spec.low_score},
        )
        picked += [(r["request_id"], r["stratum"], "low_score", 1.0) for r in low.iter_rows(named=True)]
        taken += low["request_id"].to_list()
        if low.height < spec.low_score:
            notes.append(f"lowest-score quota: {low.height} of {spec.low_score} items available")

    if spec.segment_size:
        cond, seg_params = _segment_condition(source, spec.segments)
        seg = source.query(
            con,
            f"SELECT request_id, {stratum} AS stratum FROM logs WHERE {where} AND ({cond}) "
            "AND NOT list_contains($taken, request_id) "
            "ORDER BY md5(request_id || '#seg#' || $seed), request_id LIMIT $k",
            {**params, **seg_params, "taken": taken, "k": spec.segment_size},
        )
        picked += [(r["request_id"], r["stratum"], "segment", 1.0) for r in seg.iter_rows(named=True)]
        if seg.height < spec.segment_size:
            notes.append(f"segment quota: {seg.height} of {spec.segment_size} items available")

    features = [f.name for f in source.features]
    details = _details(source, con, [p[0] for p in picked], features)
    meta = pl.DataFrame(
        {"request_id": [p[0] for p in picked], "stratum": [p[1] for p in picked],
         "reason": [p[2] for p in picked], "weight": [float(p[3]) for p in picked]},
        schema={"request_id": pl.String, "stratum": pl.String, "reason": pl.String, "weight": pl.Float64},
    )
    items = meta.join(details, on="request_id", how="inner")
    items = _order_and_calibrate(items, spec)
    return Sample(items=items, population=population, strata=counts, allocation=alloc,
                  features=features, classes=_classes(source, con, where, params), notes=notes)


def _segment_condition(source: LogSource, segments: tuple[Segment, ...]) -> tuple[str, dict[str, Any]]:
    allowed = {f.name: f.kind for f in source.features}
    allowed |= {"model_name": "categorical", "model_version": "categorical",
                "endpoint": "categorical", "prediction": "categorical", "score": "numeric",
                "latency_ms": "numeric"}
    conds, params = [], {}
    for i, s in enumerate(segments):
        if s.column not in allowed:
            raise SamplingError(f"segment column {s.column!r} is not in the logs "
                                f"(features: {', '.join(f.name for f in source.features) or 'none'})")
        col = source.logs_col(s.column)
        if s.values:
            conds.append(f"list_contains($seg{i}, CAST({col} AS VARCHAR))")
            params[f"seg{i}"] = list(s.values)
        else:
            if allowed[s.column] != "numeric":
                raise SamplingError(f"segment {s.describe()}: a range needs a numeric column")
            parts = []
            if s.low is not None:
                parts.append(f"CAST({col} AS DOUBLE) >= $seg{i}lo")
                params[f"seg{i}lo"] = float(s.low)
            if s.high is not None:
                parts.append(f"CAST({col} AS DOUBLE) < $seg{i}hi")
                params[f"seg{i}hi"] = float(s.high)
            conds.append("(" + " AND ".join(parts) + ")")
    return " OR ".join(conds), params


def _details(source: LogSource, con: duckdb.DuckDBPyConnection, ids: list[str],
             features: list[str]) -> pl.DataFrame:
    """What reviewers will see of each chosen request, read once from the logs."""
    cols = ", ".join(f"{source.feature(f).col} AS {quote_ident('f:' + f)}" for f in features)
    df = source.query(
        con,
        "SELECT request_id, ts_us, model_name, model_version, endpoint, "
        "CAST(prediction AS VARCHAR) AS prediction, score"
        + (f", {cols}" if cols else "")
        + " FROM logs WHERE request_id IN (SELECT unnest($ids))",
        {"ids": ids},
    )
    shown = df.select([pl.col("f:" + f).alias(f) for f in features]) if features else None
    inputs = ([json.dumps({f: _jsonable(row[f]) for f in features}, ensure_ascii=False)
               for row in shown.iter_rows(named=True)] if shown is not None else ["{}"] * df.height)
    return df.select(
        "request_id",
        pl.from_epoch(pl.col("ts_us"), time_unit="us").dt.replace_time_zone("UTC").alias("ts"),
        "model_name", "model_version", "endpoint", "prediction",
        pl.col("score").cast(pl.Float64),
    ).with_columns(pl.Series("inputs", inputs, dtype=pl.String))


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v


def _hash(request_id: str, salt: str, seed: int) -> str:
    return hashlib.md5(f"{request_id}#{salt}#{seed}".encode(), usedforsecurity=False).hexdigest()


def _order_and_calibrate(items: pl.DataFrame, spec: QueueSpec) -> pl.DataFrame:
    # Presentation order mixes strata and quota items, so reviewers cannot tell why an item
    # was drawn; calibration items are the first share of the random part in another order.
    seed = int(spec.seed)
    ids = items["request_id"].to_list()
    order = sorted(range(len(ids)), key=lambda i: (_hash(ids[i], "order", seed), ids[i]))
    items = items[order].with_columns(pl.Series("position", range(1, len(ids) + 1), dtype=pl.Int64))
    random_ids = items.filter(pl.col("reason") == "random")["request_id"].to_list()
    k = math.ceil(spec.calibration_share * len(random_ids)) if spec.calibration_share else 0
    chosen = set(sorted(random_ids, key=lambda r: (_hash(r, "cal", seed), r))[:k])
    return items.with_columns(pl.col("request_id").is_in(list(chosen)).alias("calibration"))


def _classes(source: LogSource, con: duckdb.DuckDBPyConnection, where: str,
             params: dict[str, Any]) -> list[str]:
    """The classes a reviewer may pick as the correct label (predictions and known labels)."""
    if source.types.get("prediction") in ("DOUBLE", "FLOAT", "REAL"):
        return []
    label = "UNION SELECT CAST(label AS VARCHAR) AS c FROM logs WHERE label IS NOT NULL " \
        if source.has("label") else ""
    df = source.query(
        con,
        f"SELECT c FROM (SELECT CAST(prediction AS VARCHAR) AS c FROM logs WHERE {where} "
        f"{label}) GROUP BY c ORDER BY c LIMIT {MAX_CLASSES + 1}",
        params,
    )
    classes = [c for c in df["c"].to_list() if c is not None] if df.height else []
    return classes if len(classes) <= MAX_CLASSES else []


def _iso(v: datetime | None) -> str | None:
    return v.isoformat().replace("+00:00", "Z") if v is not None else None




def segment_values(source: LogSource, con: duckdb.DuckDBPyConnection, column: str,
                   filters: Filters | None = None, limit: int = 50) -> list[str]:
    """The most frequent values of a categorical column in the window (to pick a segment)."""
    allowed = {f.name for f in source.features if f.kind == "categorical"}
    allowed |= {"model_name", "model_version", "endpoint", "prediction"}
    if column not in allowed:
        raise SamplingError(f"{column!r} is not a categorical column of the logs")
    where, params = (filters or Filters()).where()
    col = source.logs_col(column)
    df = source.query(con, f"SELECT CAST({col} AS VARCHAR) AS v, count(*) AS n FROM logs "
                           f"WHERE {where} AND {col} IS NOT NULL GROUP BY 1 ORDER BY n DESC, v LIMIT $k",
                      {**params, "k": int(limit)})
    return df["v"].to_list() if df.height else []

"""Status of a window against its objectives, as (area, level, sentence) records.

Levels are "green" (within objective), "amber" (within over the window, but breached in
some buckets), "red" (breached over the window) and "grey" (not measured: no requests, no
successful ones, or the logs lack the column). Sentences are plain words a manager
reads without help; every page, report and alert uses these same judgements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ..config import SLO
from ..fmt import ms as _ms
from .service import WindowStats

# A bucket with fewer requests than this is too small to call a latency breach on its own.
MIN_BUCKET_REQUESTS = 20
# A bucket breaches the error objective only when its failures would be this unlikely were
# the true rate at the objective (one-sided binomial test): one failure in 30 requests
# (3.3%) is chance, 50 in 200 is an incident.
ERROR_BREACH_P = 1e-3


def error_breaches(buckets: pl.DataFrame, slo: SLO) -> pl.DataFrame:
    """Buckets whose error rate is significantly above the objective (columns as given)."""
    if buckets.height == 0:
        return buckets
    # scipy.special (0.2 s to import) rather than scipy.stats (0.7 s): this runs on every
    # first render. bdtrc(k, n, p) = P(X > k), so P(X >= errors) = bdtrc(errors - 1, n, p).
    from scipy.special import bdtrc

    errors = buckets["errors"].to_numpy().astype(np.int64)
    p = np.where(errors > 0, bdtrc(np.maximum(errors - 1, 0), buckets["requests"].to_numpy().astype(np.int64),
                                   slo.error_rate), 1.0)
    return buckets.filter(pl.Series((p < ERROR_BREACH_P) & (buckets["error_rate"].to_numpy() > slo.error_rate)))


def latency_breaches(buckets: pl.DataFrame, slo: SLO) -> pl.DataFrame:
    """Buckets with enough requests whose P95 is above the SLO (columns as given)."""
    if buckets.height == 0:
        return buckets
    return buckets.filter((pl.col("requests") >= MIN_BUCKET_REQUESTS) & (pl.col("p95") > slo.p95_latency_ms))


@dataclass(frozen=True)
class Status:
    area: str        # "latency" | "errors"
    level: str       # "green" | "amber" | "red" | "grey"
    sentence: str


def kpi_status(w: WindowStats, slo: SLO, buckets: pl.DataFrame | None = None,
               missing: frozenset[str] = frozenset()) -> list[Status]:
    """`missing`: the canonical columns the logs lack ("latency_ms", "status")."""
    out: list[Status] = []
    big = buckets.filter(pl.col("requests") >= MIN_BUCKET_REQUESTS) if buckets is not None else None
    slo_txt = _ms(slo.p95_latency_ms)
    if w.p95 is None:
        out.append(Status("latency", "grey", "Latency not measured: the logs have no latency_ms column."
                          if "latency_ms" in missing else "No requests: latency not measured." if not w.requests
                          else "No successful requests: latency not measured."))
    elif w.p95 > slo.p95_latency_ms:
        out.append(Status("latency", "red", f"P95 latency is {_ms(w.p95)}, above the {slo_txt} SLO."))
    else:
        bad = latency_breaches(buckets, slo) if buckets is not None else None
        if bad is not None and bad.height:
            worst = bad.sort("p95", descending=True).row(0, named=True)
            out.append(Status("latency", "amber",
                              f"P95 latency is {_ms(w.p95)} over the window, but was above the {slo_txt} SLO "
                              f"in {bad.height} of {big.height} buckets (worst {_ms(worst['p95'])} at "
                              f"{worst['time']:%Y-%m-%d %H:%M} UTC)."))
        else:
            out.append(Status("latency", "green", f"P95 latency is {_ms(w.p95)}, within the {slo_txt} SLO."))
    if w.error_rate is None:
        out.append(Status("errors", "grey", "Error rate not measured: the logs have no status column."
                          if "status" in missing or w.requests else "No requests: error rate not measured."))
    elif w.error_rate > slo.error_rate:
        out.append(Status("errors", "red",
                          f"Error rate is {w.error_rate:.2%}, above the {slo.error_rate:.0%} objective."))
    else:
        bad = error_breaches(buckets, slo) if buckets is not None else None
        if bad is not None and bad.height:
            worst = bad.sort("error_rate", descending=True).row(0, named=True)
            out.append(Status("errors", "amber",
                              f"Error rate is {w.error_rate:.2%} over the window, but was above "
                              f"{slo.error_rate:.0%} in {bad.height} of {buckets.height} buckets (worst "
                              f"{worst['error_rate']:.1%} at {worst['time']:%Y-%m-%d %H:%M} UTC)."))
        else:
            out.append(Status("errors", "green",
                              f"Error rate is {w.error_rate:.2%}, within the {slo.error_rate:.0%} objective."))
    return out

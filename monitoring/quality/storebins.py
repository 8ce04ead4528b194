"""The score figures of quality/fromstore.py from the store's score bins: the AUC histogram,
the calibration bins (ECE, the reliability curve), the label-free estimate's fine bins and
the reference's calibration, each from `score_counts` rows (day, version, pred, truth,
bin, cbin, n over the served rows with a score; rollup/quality.py) instead of a raw pass.

    k = confidence_bin(spec)            # the bin of the figure's score, per row, or None
    hist(sc, spec, chunk_of)            # data.Aggregates.hist (g, chunk, seg, version, cls, s, y, n)
    conf(sc, spec, chunk_of)            # data.Aggregates.conf (chunk, b, n, correct, conf_sum, conf_err)
    est(sc, spec, chunk_of)             # data.Aggregates.est (chunk, pred_pos, fb, n)
    reference_bins(sc, spec)            # (fb, n, k) for estimate.fit_calibration

Every score the quality engine reads is the score or 1 - score (`Spec.p_pos_sql`,
`Spec.conf_sql`): its bin of 1/1000 is `bin` or `cbin`, each computed in doubles from the
same double as the raw engine's (`tables.score_bin`: b in 0..999 holds [b, b + 1) / 1000,
-1 below 0, 1000 exactly 1, 1001 above 1). So:

- the estimate's fine bins (data.fine_bin_sql: EST_BINS = 1000 bins of that score, clipped)
  are the store's bins clipped to 0..999: exact, and so is the estimate and the
  reference's calibration;
- the calibration bins (metrics.CAL_BINS = 10 bins of the confidence) are the store's
  bins // 100, clipped: the same rows in each (the fine bins nest in the coarse ones; a
  confidence within a rounding error, ~1e-15, of a multiple of 0.1 could land on the other
  side in one engine only), so the counts, the correct counts, the accuracies and their
  intervals are exact. The sum of confidences in a bin is not kept: each row counts at its
  fine bin's midpoint, within 1/2000 of its confidence (exactly 1 in bin 1000), so
  |ECE from bins - exact ECE| <= sum_bins |conf_sum error| / N <= (1/2000) * (rows in bins
  0..999) / N <= 0.0005, reported with the value as the ECE's `max_binning_error`
  (`conf_err`). A confidence below 0 or above 1 has no bound: None (the raw pass answers).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from ..rollup.tables import NOT_FINITE_BIN, SCORE_BINS
from .data import EST_BINS, Spec
from .metrics import CAL_BINS

HALF_BIN = 0.5 / SCORE_BINS


def _by_positive(spec: Spec) -> pl.Expr:
    """The bin of `CASE WHEN pred = positive THEN score ELSE 1 - score END`."""
    return pl.when(pl.col("pred") == spec.positive).then(pl.col("bin")).otherwise(pl.col("cbin"))


def p_pos_bin(spec: Spec) -> pl.Expr | None:
    """The bin of `spec.p_pos_sql()`, or None when that is not the score (no positive
    probability, or a per-class probability column the store does not bin)."""
    p_pos = spec.p_pos_sql()
    if p_pos is None or spec.positive in spec.class_scores:
        return None
    return pl.col("bin") if p_pos == "score" else _by_positive(spec)


def confidence_bin(spec: Spec) -> pl.Expr | None:
    """The bin of `spec.conf_sql()`, or None (no score, or per-class probability columns)."""
    if spec.class_scores and len(spec.class_scores) == len(spec.classes):
        return None
    if spec.score_kind is None:
        return None
    if spec.score_kind == "positive" and spec.positive is not None:
        return _by_positive(spec)
    return pl.col("bin")


def has_not_finite(sc: pl.DataFrame) -> bool:
    return bool(sc.height) and bool((sc["bin"] == NOT_FINITE_BIN).any())


def _keys(sc: pl.DataFrame, chunk_of: Callable[[np.ndarray], np.ndarray]) -> pl.DataFrame:
    return sc.with_columns(pl.Series("chunk", chunk_of(sc["day"].to_numpy()), pl.Int64),
                           pl.col("version").fill_null("(none)").alias("seg"))


def hist(sc: pl.DataFrame, spec: Spec, chunk_of) -> pl.DataFrame | None:
    """The AUC histogram by overall (g 7), chunk (6), segment (5) and version (3): s is the
    bin of the positive class's probability, y the label is the positive class."""
    k = p_pos_bin(spec)
    if k is None:
        return None
    h0 = _keys(sc.filter(pl.col("truth").is_not_null()), chunk_of).with_columns(
        k.cast(pl.Float64).alias("s"), (pl.col("truth") == spec.positive).alias("y"))
    parts = []
    for g, keys in ((7, ()), (6, ("chunk",)), (5, ("seg",)), (3, ("version",))):
        h = h0.group_by(*keys, "s", "y").agg(pl.col("n").sum())
        for c in ("chunk", "seg", "version"):
            if c not in keys:
                h = h.with_columns(pl.lit(None, pl.Int64 if c == "chunk" else pl.String).alias(c))
        parts.append(h.select(pl.lit(g, pl.Int32).alias("g"), "chunk", "seg", "version",
                              pl.lit(spec.positive).alias("cls"), "s", "y", "n"))
    return pl.concat(parts)


def conf(sc: pl.DataFrame, spec: Spec, chunk_of) -> pl.DataFrame | None:
    """chunk, b, n, correct, conf_sum, conf_err over the labelled rows: b the calibration
    bin, conf_sum at the fine bins' midpoints, conf_err the most that sum can be off. None
    when a labelled confidence lies outside [0, 1] (its value is not bounded by its bin)."""
    k = confidence_bin(spec)
    if k is None:
        return None
    lab = sc.filter(pl.col("truth").is_not_null()).with_columns(k.alias("k")).filter(pl.col("k").is_not_null())
    if bool(((lab["k"] < 0) | (lab["k"] > SCORE_BINS)).any()):
        return None
    exact = pl.col("k") == SCORE_BINS                      # exactly 1
    mid = pl.when(exact).then(1.0).otherwise((pl.col("k").cast(pl.Float64) + 0.5) / SCORE_BINS)
    per = SCORE_BINS // CAL_BINS
    return _keys(lab, chunk_of).group_by(
        "chunk", (pl.col("k") // per).clip(0, CAL_BINS - 1).cast(pl.Int64).alias("b")).agg(
        pl.col("n").sum(), pl.col("n").filter(pl.col("pred") == pl.col("truth")).sum().alias("correct"),
        (pl.col("n") * mid).sum().alias("conf_sum"),
        (pl.col("n") * pl.when(exact).then(0.0).otherwise(HALF_BIN)).sum().alias("conf_err"))


def _fine(k: pl.Expr) -> pl.Expr:
    return k.clip(0, EST_BINS - 1).cast(pl.Int64).alias("fb")


def est(sc: pl.DataFrame, spec: Spec, chunk_of) -> pl.DataFrame | None:
    """chunk, pred_pos, fb, n over every served row with a score: the estimate's fine bins
    of the positive class's probability (binary) or of the confidence."""
    p, c = p_pos_bin(spec), confidence_bin(spec)
    k = p if spec.p_pos_sql() else c
    if k is None:
        return None
    pp = (pl.col("pred") == spec.positive) if spec.p_pos_sql() else pl.lit(True)
    df = _keys(sc, chunk_of).with_columns(_fine(k), pp.alias("pred_pos")).filter(pl.col("fb").is_not_null())
    return df.group_by("chunk", "pred_pos", "fb").agg(pl.col("n").sum())


def reference_bins(sc: pl.DataFrame, spec: Spec) -> pl.DataFrame | None:
    """(fb, n, k) of the labelled rows with a score: what `estimate.calibrate_window` reads
    from the raw logs (k: the positive class, or a correct prediction, without one)."""
    p_pos = spec.p_pos_sql()
    k = p_pos_bin(spec) if p_pos else confidence_bin(spec)
    if k is None or (p_pos and p_pos_bin(spec) is None) or has_not_finite(sc):
        return None
    event = (pl.col("truth") == spec.positive) if p_pos else (pl.col("pred") == pl.col("truth"))
    df = sc.filter(pl.col("truth").is_not_null()).with_columns(_fine(k), event.alias("event"))
    return df.filter(pl.col("fb").is_not_null()).group_by("fb").agg(
        pl.col("n").sum(), pl.col("n").filter(pl.col("event")).sum().alias("k"))

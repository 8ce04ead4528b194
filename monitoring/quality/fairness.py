"""Fairness across the groups of a sensitive column, for one positive outcome.

- Demographic parity: the positive-prediction rate of each group (every served row, labelled
  or not); its difference (highest - lowest rate) and ratio (lowest / highest). The
  four-fifths rule (US EEOC) flags a ratio below 0.8.
- Equalized odds: true-positive rate (among labelled positives) and false-positive rate
  (among labelled negatives) per group, and the gaps (highest - lowest).

Intervals: Wilson for each group's rate; for differences, ratios and gaps a seeded
parametric bootstrap (each group's count redrawn as Binomial(n, rate), 2,000 times), which
also accounts for picking the highest and lowest group. Groups with fewer than `min_labels`
rows (or labelled positives/negatives for TPR/FPR) are listed but left out of the gaps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from .metrics import BOOT, entry, wilson

FOUR_FIFTHS = 0.8


def _spread(k: np.ndarray, n: np.ndarray, rng, ratio: bool = False) -> dict[str, Any]:
    keep = n > 0
    k, n = k[keep], n[keep]
    if len(n) < 2:
        return {"difference": entry(None, None, int(n.sum()), "needs two groups with enough rows")} | (
            {"ratio": entry(None, None, int(n.sum()), "needs two groups with enough rows")} if ratio else {})
    p = k / n
    draws = rng.binomial(n.astype(np.int64)[None, :], p[None, :], size=(BOOT, len(n))) / n[None, :]
    hi, lo = draws.max(axis=1), draws.min(axis=1)
    out = {"difference": entry(float(p.max() - p.min()), np.percentile(hi - lo, [2.5, 97.5]), int(n.sum()))}
    if ratio:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(hi > 0, lo / np.where(hi > 0, hi, 1), np.nan)
        value = float(p.min() / p.max()) if p.max() > 0 else None
        r = r[np.isfinite(r)]
        out["ratio"] = entry(value, np.percentile(r, [2.5, 97.5]) if r.size else None, int(n.sum()))
    return out


def fairness(rows: pl.DataFrame, pairs: pl.DataFrame | None, positive: str, *, min_labels: int,
             seed: int = 0) -> dict[str, Any]:
    """rows: sens, pred, n (every served row); pairs: sens, pred, truth, n (labelled)."""
    rng = np.random.default_rng(seed)
    rates = rows.group_by("sens").agg(pl.col("n").sum().alias("rows"),
                                      pl.col("n").filter(pl.col("pred") == positive).sum().alias("positive"))
    if pairs is not None and pairs.height:
        lab = pairs.group_by("sens").agg(
            pl.col("n").filter(pl.col("truth") == positive).sum().alias("P"),
            pl.col("n").filter((pl.col("truth") == positive) & (pl.col("pred") == positive)).sum().alias("TP"),
            pl.col("n").filter(pl.col("truth") != positive).sum().alias("N"),
            pl.col("n").filter((pl.col("truth") != positive) & (pl.col("pred") == positive)).sum().alias("FP"))
        rates = rates.join(lab, on="sens", how="left")
    else:
        rates = rates.with_columns(*(pl.lit(0, pl.Int64).alias(c) for c in ("P", "TP", "N", "FP")))
    rates = rates.fill_null(0).sort(["rows", "sens"], descending=[True, False])
    groups = []
    for r in rates.iter_rows(named=True):
        g = {"value": r["sens"], "rows": int(r["rows"]), "labelled_positive": int(r["P"]),
             "labelled_negative": int(r["N"])}
        g["positive_rate"] = entry(r["positive"] / r["rows"], wilson(r["positive"], r["rows"]), r["rows"]) \
            if r["rows"] >= min_labels else entry(None, None, r["rows"], f"too few rows ({r['rows']} < {min_labels})")
        for name, k, n in (("tpr", "TP", "P"), ("fpr", "FP", "N")):
            g[name] = entry(r[k] / r[n], wilson(r[k], r[n]), r[n]) if r[n] >= min_labels else \
                entry(None, None, r[n], f"too few labels ({r[n]} < {min_labels})")
        groups.append(g)

    def arr(col: str, n_col: str) -> tuple[np.ndarray, np.ndarray]:
        ok = rates.filter(pl.col(n_col) >= min_labels)
        return ok[col].to_numpy().astype(float), ok[n_col].to_numpy().astype(float)

    dp = _spread(*arr("positive", "rows"), rng, ratio=True)
    if dp["ratio"]["value"] is not None:
        dp["four_fifths_violated"] = dp["ratio"]["value"] < FOUR_FIFTHS
        hi = dp["ratio"]["ci"][1] if dp["ratio"]["ci"] else None
        dp["four_fifths_surely_violated"] = hi is not None and hi < FOUR_FIFTHS
    eo = {"tpr_gap": _spread(*arr("TP", "P"), rng)["difference"], "fpr_gap": _spread(*arr("FP", "N"), rng)["difference"]}
    return {"positive_class": positive, "groups": groups, "demographic_parity": dp, "equalized_odds": eo}


def fairness_over_time(rows: pl.DataFrame, pairs: pl.DataFrame | None, positive: str, chunk_keys: list,
                       *, min_labels: int, seed: int = 0) -> list[dict[str, Any]]:
    out = []
    for key in chunk_keys:
        fr = fairness(rows.filter(pl.col("chunk") == key), None if pairs is None else pairs.filter(pl.col("chunk") == key),
                      positive, min_labels=min_labels, seed=seed)
        out.append({"chunk": key, "dp_difference": fr["demographic_parity"]["difference"],
                    "dp_ratio": fr["demographic_parity"]["ratio"], "tpr_gap": fr["equalized_odds"]["tpr_gap"],
                    "fpr_gap": fr["equalized_odds"]["fpr_gap"]})
    return out

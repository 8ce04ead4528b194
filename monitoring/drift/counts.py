"""Step 3 of a comparison: one scan per side (or per chunk) counting every column's
bins, moments and categories, and the `Summary` each test reads from those counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from . import stattests
from .sql import Side, _params, _Plan, _q, _value, _with
from .stattests import Merge, Score, Summary


def _counts(con, sides: Sequence[tuple[int, Side, str]], plans: Sequence[_Plan],
            edges: dict[str, tuple[float, ...]], extra: dict[str, Any],
            leave_out: frozenset[int] = frozenset()) -> pl.DataFrame:
    """Per (side, k): rows, time span, and per column its bins, moments and categories.

    `sides` are (s, side, key SQL) triples; the key is the chunk of each row (0: none).
    Columns whose index is in `leave_out` (counted in fine bins instead) are not read.
    """
    params: dict[str, Any] = dict(extra)
    aggs = ["count(*) AS rows", "min(t) AS t0", "max(t) AS t1"]
    used = [i for i, p in enumerate(plans) if not p.skip and i not in leave_out]
    moments: list[int] = []
    for i in used:
        p = plans[i]
        if p.kind == "numeric":
            # Sums of (x - shift) and its square, the shift being about the mean: half the
            # cost of avg + stddev_pop here, and as accurate (nothing large cancels).
            params[f"m{i}"] = float(p.shift or 0.0)
            aggs += [f"count(c{i}) AS n{i}", f"sum(c{i} - $m{i}) AS d1_{i}",
                     f"sum((c{i} - $m{i}) * (c{i} - $m{i})) AS d2_{i}",
                     f"min(c{i}) AS lo{i}", f"max(c{i}) AS hi{i}"]
            moments.append(i)
            # count_if: measured faster than sum(CAST(... AS INTEGER)) and than FILTER
            for j, e in enumerate(edges.get(p.column.name, ())):
                params[f"e{i}_{j}"] = e
                aggs.append(f"count_if(c{i} >= $e{i}_{j}) AS ge{i}_{j}")
            if p.lo is not None:
                params[f"lo{i}"], params[f"hi{i}"] = p.lo, p.hi
                aggs.append(f"count_if(c{i} < $lo{i} OR c{i} > $hi{i}) AS out{i}")
        else:
            aggs += [f"count(c{i}) AS n{i}", f"histogram(c{i}) AS h{i}"]
    parts = []
    for s, side, key in sides:
        vals = [f"{s} AS s", f"{key} AS k", f"{side.ts_us or 'NULL::BIGINT'} AS t"]
        vals += [f"{_value(side.exprs[plans[i].column.name], plans[i].kind, plans[i].column.integer)} AS c{i}"
                 for i in used]
        # one chunk (key "0"): a plain aggregate, cheaper than grouping by constants
        group = "" if key == "0" else " GROUP BY s, k"
        parts.append(f"SELECT {f'{s} AS s, 0 AS k' if not group else 's, k'}, "
                     f"{', '.join(aggs)} FROM (SELECT {', '.join(vals)} FROM {side.rows_sql}){group}")
    sql = _with([s for _, s, _ in sides]) + " UNION ALL ".join(parts)
    out = _q(con, sql, _params(*(s for _, s, _ in sides), **params))
    exprs = []
    for i in moments:
        n, d1, d2 = pl.col(f"n{i}").cast(pl.Float64), pl.col(f"d1_{i}"), pl.col(f"d2_{i}")
        var = (d2 / n - (d1 / n) ** 2).clip(lower_bound=0.0)
        exprs += [(params[f"m{i}"] + d1 / n).alias(f"mean{i}"),
                  # a constant column has a std of exactly 0 (it decides the Wasserstein scale)
                  pl.when(pl.col(f"lo{i}") == pl.col(f"hi{i}")).then(0.0).otherwise(var.sqrt()).alias(f"std{i}")]
    return out.with_columns(exprs) if exprs else out


def _histogram(value: Any) -> dict[str, int]:
    """A DuckDB MAP as returned through Arrow/Polars -> {category: count}."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): int(v) for k, v in value.items()}
    return {str(item["key"]): int(item["value"]) for item in value}


def _categories(ref_hist: dict[str, int], integer: bool) -> tuple[str, ...]:
    if integer:
        return tuple(sorted(ref_hist, key=lambda c: (int(c) if c.lstrip("-").isdigit() else 0, c)))
    return tuple(sorted(ref_hist, key=lambda c: (-ref_hist[c], c)))


def _summary(kind: str, row: dict[str, Any], i: int, edges: tuple[float, ...],
             categories: tuple[str, ...], merge: Merge | None) -> Summary:
    n = int(row.get(f"n{i}") or 0)
    nulls = int(row["rows"]) - n
    if kind == "numeric":
        ge = [int(row[f"ge{i}_{j}"] or 0) for j in range(len(edges))]
        bins = [n - (ge[0] if ge else 0)]
        bins += [ge[j] - (ge[j + 1] if j + 1 < len(ge) else 0) for j in range(len(ge))]
        return Summary("numeric", n, nulls, tuple(bins), mean=row.get(f"mean{i}"),
                       std=row.get(f"std{i}"), min=row.get(f"lo{i}"), max=row.get(f"hi{i}"),
                       merge=merge)
    hist = _histogram(row.get(f"h{i}"))
    known = [hist.get(c, 0) for c in categories]
    return Summary("categorical", n, nulls, tuple(known) + (n - sum(known),))


def _scores(kind: str, ref: Summary, cur: Summary) -> dict[str, Score]:
    out = {}
    for name, test in stattests.REGISTRY.items():
        if kind in test.kinds and (not test.needs_merge or ref.merge is not None):
            out[name] = test(ref, cur)
    return out


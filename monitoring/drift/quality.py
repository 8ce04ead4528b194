"""Data quality of one feature, current against reference, shown beside its drift.

Figures: the share of nulls on each side, the share of current values outside the
reference range (numeric), categories the reference never saw and reference categories
gone from the current window (categorical), and type changes between files. `problems`
turns them into sentences for the page and the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .stattests import Summary

TOP_CATEGORIES = 10
# Beyond the reference range by chance: about 2/n of values for continuous data, so
# only a share above this is worth a sentence (the figure itself is always shown).
OUT_OF_RANGE_PROBLEM = 0.01
# Rare values come and go by chance (a count of 16 seen once): new or vanished categories
# make a sentence only when they hold at least this share of values (they are always listed).
CATEGORY_PROBLEM = 0.001


@dataclass(frozen=True)
class Quality:
    null_share_reference: float | None
    null_share_current: float | None
    out_of_range_share: float | None = None  # current values outside [reference min, max]
    new_categories: tuple[tuple[str, int], ...] = ()  # (category, current count), most common first
    new_count: int = 0  # how many categories the reference never saw
    new_share: float | None = None  # share of current values in categories unseen in the reference
    vanished_categories: tuple[str, ...] = ()
    vanished_share: float | None = None  # share of reference values in categories now absent
    types: tuple[str, ...] = ()  # distinct Arrow types of the column across files, when several

    @property
    def problems(self) -> tuple[str, ...]:
        out = []
        if self.null_share_current == 1.0:
            out.append("every current value is null")
        elif self.null_share_reference == 1.0:
            out.append("every reference value is null")
        if (self.null_share_current is not None and self.null_share_reference is not None
                and self.null_share_current - self.null_share_reference >= 0.05):
            out.append(f"nulls rose from {self.null_share_reference:.1%} to {self.null_share_current:.1%}")
        if self.out_of_range_share is not None and self.out_of_range_share >= OUT_OF_RANGE_PROBLEM:
            out.append(f"{self.out_of_range_share:.2%} of current values outside the reference range")
        if self.new_categories and (self.new_share or 0) >= CATEGORY_PROBLEM:
            names = ", ".join(repr(c) for c, _ in self.new_categories[:3])
            more = "" if self.new_count <= 3 else f" and {self.new_count - 3} more"
            out.append(f"{self.new_count} new categor{'y' if self.new_count == 1 else 'ies'} "
                       f"({names}{more}), {self.new_share or 0:.2%} of current values")
        if self.vanished_categories and (self.vanished_share or 0) >= CATEGORY_PROBLEM:
            out.append(f"{len(self.vanished_categories)} reference categor"
                       f"{'y' if len(self.vanished_categories) == 1 else 'ies'} absent from the current window")
        if len(self.types) > 1:
            out.append("type differs between files: " + "; ".join(self.types))
        return tuple(out)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def assess(kind: str, ref: Summary | None, cur: Summary | None, rows: tuple[int, int],
           n: tuple[int, int], *, categories: Iterable[str] = (),
           current_hist: Mapping[str, int] | None = None, out_of_range: int | None = None,
           types: tuple[str, ...] = ()) -> Quality:
    """Quality figures from the summaries: `rows` and `n` are (reference, current) row and
    non-null counts; `categories` the reference's; `current_hist` the current counts by
    category; `out_of_range` the current values outside the reference range."""
    nulls = (_share(rows[0] - n[0], rows[0]), _share(rows[1] - n[1], rows[1]))
    if kind == "numeric" or ref is None or cur is None:
        oor = _share(out_of_range, n[1]) if out_of_range is not None and n[0] else None
        return Quality(nulls[0], nulls[1], out_of_range_share=oor, types=types)
    known = set(categories)
    hist = dict(current_hist or {})
    new = sorted(((c, k) for c, k in hist.items() if c not in known), key=lambda t: (-t[1], t[0]))
    cats = tuple(categories)
    vanished = tuple(c for c in cats if hist.get(c, 0) == 0)
    gone = sum(k for c, k in zip(cats, ref.counts, strict=False) if hist.get(c, 0) == 0)
    return Quality(nulls[0], nulls[1], new_categories=tuple(new[:TOP_CATEGORIES]), new_count=len(new),
                   new_share=_share(sum(k for _, k in new), n[1]) if new else None,
                   vanished_categories=vanished[:TOP_CATEGORIES] if n[1] else (),
                   vanished_share=_share(gone, n[0]) if n[1] and vanished else None, types=types)


def type_changes(file_types: Mapping[str, Mapping[str, str]], column: str) -> tuple[str, ...]:
    """"type in N file(s)" for each distinct type of `column` across files, when several."""
    counts: dict[str, int] = {}
    for types in file_types.values():
        if column in types:
            counts[types[column]] = counts.get(types[column], 0) + 1
    if len(counts) < 2:
        return ()
    return tuple(f"{t} in {k} file{'s' if k > 1 else ''}" for t, k in sorted(counts.items(), key=lambda x: -x[1]))

"""How a comparison's numbers read in sentences, tables and the CLI: one place.

    size("latency", -1400.0)            -> "1.40 s"      (a magnitude: the sentence gives the sign)
    value_text("rate", 0.0123)          -> "1.23%"
    interval_text("latency", 1400, (1200, 1600)) -> "1.20–1.60 s"
    signed("rate", 0.004)               -> "+0.40 points"
"""

from __future__ import annotations

import math

from ..fmt import ms


def size(kind: str, v: float) -> str:
    if not math.isfinite(v):
        return "∞"
    if kind == "latency":
        return ms(abs(v))
    if kind in ("rate", "share"):
        return f"{abs(v) * 100:.2f} points"
    return f"{abs(v):.3g}"


def value_text(kind: str, v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    if kind == "latency":
        return ms(v)
    if kind in ("rate", "share"):
        return f"{v:.2%}"
    return f"{v:.3g}"


def interval_text(kind: str, d: float, ci: tuple[float, float]) -> str:
    lo, hi = ci
    if d != 0 and lo * hi > 0 and math.copysign(1, lo) == math.copysign(1, d):
        a, b = sorted((abs(lo), abs(hi)))
        if kind == "latency" and math.isfinite(b) and (a >= 1000) == (b >= 1000):
            unit = " s" if b >= 1000 else " ms"
            return (f"{a / 1000:.2f}–{b / 1000:.2f}" if b >= 1000 else f"{a:.0f}–{b:.0f}") + unit
        return f"{size(kind, a)} to {size(kind, b)}"
    sign = lambda v: ("−" if v < 0 else "+") + size(kind, v)  # noqa: E731
    return f"{sign(lo)} to {sign(hi)}"


def signed(kind: str, d: float) -> str:
    """A difference with its sign."""
    if kind == "latency":
        return ("+" if d >= 0 else "−") + ms(abs(d))
    if kind in ("rate", "share"):
        return f"{d * 100:+.2f} points"
    return f"{d:+.3g}"

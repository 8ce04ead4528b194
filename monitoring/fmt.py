"""How numbers read on every page, report and CLI table: one place, so they agree.

    ms(2360.0)  -> "2.36 s"      ms(113.2) -> "113 ms"      ms(None) -> "–"
    pct(0.0123) -> "1.23%"       pct(0.5, 0) -> "50%"        pct(nan) -> "–"
    md("<b>v1</b>")  -> text that Markdown shows as typed (log values in st.markdown)
"""

from __future__ import annotations

import math
import string
from typing import Any

MISSING = "–"
_PUNCT = set(string.punctuation)


def ms(v: float | None) -> str:
    """A latency in milliseconds, as seconds from one second up."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return MISSING
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms"


def pct(v: float | None, digits: int = 2) -> str:
    """A fraction as a percentage."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return MISSING
    return f"{v * 100:.{digits}f}%"


def md(value: Any, limit: int = 300) -> str:
    """Text safe for Markdown: every ASCII punctuation mark escaped, one line, bounded."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "".join("\\" + ch if ch in _PUNCT else ch for ch in text)

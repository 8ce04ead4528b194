"""How numbers and text read on every page, report, chart and export: one place, so they agree.

    ms(2360.0)  -> "2.36 s"      ms(113.2) -> "113 ms"      ms(None) -> "–"
    pct(0.0123) -> "1.23%"       pct(0.5, 0) -> "50%"        pct(nan) -> "–"

Text that came from the logs, the configuration or a reviewer (versions, endpoints, column
names, error types, messages, file names) is text everywhere, through the one function for
where it goes:

    md("**v1** [x](http://e)")  -> Markdown that shows it as typed (st.markdown, st.error, .md export)
    html("<script>")            -> "&lt;script&gt;" for HTML (the offline weekly export)
    label("<i>v2</i>")          -> "&lt;i&gt;v2&lt;/i&gt;" for Plotly text: titles, legend names,
                                   axis categories, hover text and customdata (Plotly reads a
                                   subset of HTML in all of them)
    cell("=HYPERLINK(...)")     -> "'=HYPERLINK(...)" for a spreadsheet cell (CSV exports):
                                   the OWASP rule against formula injection
    safe_frame(df)              -> the frame with `cell` applied to every text column
"""

from __future__ import annotations

import html as _html
import math
import string
from typing import Any

import polars as pl

MISSING = "–"
# Every ASCII punctuation mark: CommonMark lets any of them be escaped, and between them they
# start every construct (emphasis, links, images, HTML, code, GFM autolinks such as
# www.x.com, Streamlit's :colour[...] and :icon: directives, LaTeX $).
_PUNCT = set(string.punctuation)
# OWASP "CSV injection": a cell starting with one of these is read as a formula by
# spreadsheets; a leading apostrophe makes it text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


def md(value: Any, limit: int | None = 300) -> str:
    """Text safe for Markdown: every ASCII punctuation mark escaped (so no emphasis, link,
    image, HTML, code, Streamlit colour or icon directive, LaTeX), one line, at most `limit`
    characters (None: no limit)."""
    text = " ".join(str(value).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return "".join("\\" + ch if ch in _PUNCT else ch for ch in text)


def html(value: Any) -> str:
    """Text safe inside HTML elements and attribute values."""
    return _html.escape(str(value), quote=True)


def label(value: Any) -> str:
    """Text safe for Plotly: tags show as typed (`<`, `>` and `&` as entities, which Plotly
    turns back into the characters when it draws)."""
    return _html.escape(str(value), quote=False)


def labels(values: Any) -> list[str]:
    """`label` of each value (axis categories, legend names, customdata), None kept as None."""
    return [None if v is None else label(v) for v in values]


def cell(value: Any) -> Any:
    """A value safe for a spreadsheet cell: text starting like a formula gets a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_frame(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with every text column neutralised by `cell` (numbers and times unchanged)."""
    text = [c for c, t in df.schema.items() if t in (pl.String, pl.Categorical) or isinstance(t, pl.Enum)]
    starts = "^[" + "".join(FORMULA_START).replace("-", "\\-") + "]"
    return df.with_columns(
        pl.when(pl.col(c).cast(pl.String).str.contains(starts))
        .then(pl.lit("'") + pl.col(c).cast(pl.String)).otherwise(pl.col(c).cast(pl.String)).alias(c)
        for c in text)

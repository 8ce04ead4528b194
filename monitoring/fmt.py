"""How numbers and text read on every page, report, chart and export: one place, so they agree.

    ms(2360.0)  -> "2.36 s"      ms(113.2) -> "113 ms"      ms(None) -> "–"
    pct(0.0123) -> "1.23%"       pct(0.5, 0) -> "50%"        pct(nan) -> "–"
    value(48680.0) -> "48,680"   value(0.123456) -> "0.1235"  value("2026-11-03T10:00:00+01:00")
                                                                -> "2026-11-03 09:00:00 UTC"

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
import re
import string
from datetime import UTC, date, datetime
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


# A number as text (a numeric prediction cast to text): shown like a number. Anything else stays
# exactly as logged.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_ISO_TS = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")


def value(v: Any, numeric_text: bool = False) -> str:
    """A logged value for people: integers and whole floats with thousands separators,
    other floats to four significant digits (thousands separated from 1,000 up, two
    decimals), timestamps (and ISO-8601 text, as datetime inputs are stored) in UTC with the
    zone (naive ones are UTC, the log contract). Other text exactly as logged, so codes and
    ids keep their digits ("00123"); with `numeric_text` (a numeric prediction cast to text)
    text that reads as a plain number is shown as that number. Not Markdown-safe: pass the
    result through `md` for Markdown. None, NaN -> "–"."""
    if v is None:
        return MISSING
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return MISSING
        if math.isinf(v):
            return "∞" if v > 0 else "-∞"
        if abs(v) >= 1e15:
            return f"{v:.4g}"
        if v.is_integer():
            return f"{int(v):,}"
        if abs(v) >= 1000:
            return f"{v:,.2f}".rstrip("0").rstrip(".")
        return f"{v:.4g}"
    if isinstance(v, datetime):
        t = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
        return f"{t:%Y-%m-%d %H:%M:%S} UTC"
    if isinstance(v, date):
        return f"{v:%Y-%m-%d}"
    if isinstance(v, str):
        text = v.strip()
        if numeric_text and _NUMBER.fullmatch(text):
            digits = text.lstrip("+-")
            return value(int(digits) * (-1 if text.startswith("-") else 1)) if digits.isdigit() \
                else value(float(text))
        if _ISO_TS.fullmatch(text):
            try:
                return value(datetime.fromisoformat(text.replace("Z", "+00:00")))
            except ValueError:
                return v
    return str(v)


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

"""Rows to Arrow tables in the log contract, with column types that stay put across files.

Each value column (prediction, label, every feature) takes the kind of its first non-null
value: int64, float64, bool or string (or the kind given up front). A later value of another
kind is coerced, never raised: an int in a float column becomes a float, a non-integral float
widens an int column to float64 for this and later files, anything becomes text in a string
column, and what cannot be coerced (e.g. "abc" in a numeric column) is written as null and
counted. Counts go into each file's metadata (`modelwatch.coerced`) and into one warning per
column and reason.
"""

from __future__ import annotations

import json
import logging
import math
import operator
from collections import Counter
from typing import Any

import pyarrow as pa

from ..config import CANONICAL_COLUMNS
from .record import as_features

log = logging.getLogger("monitoring.logger")

KINDS: dict[str, pa.DataType] = {
    "int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(), "string": pa.string(),
}
_ALIASES = {"int": "int64", "integer": "int64", "float": "float64", "double": "float64",
            "str": "string", "text": "string", "boolean": "bool", "category": "string"}
TIMESTAMP = pa.timestamp("us", tz="UTC")
# Names a feature cannot take: the contract's columns, the Hive partition key, the struct
# the source expands into features.
RESERVED = frozenset(CANONICAL_COLUMNS) | {"date", "features"}


def kind_name(kind: str) -> str:
    k = _ALIASES.get(kind, kind)
    if k not in KINDS:
        raise ValueError(f"unknown column type {kind!r}: use one of int64, float64, bool, string")
    return k


def _kind_of_type(t: pa.DataType) -> str | None:
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int64"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float64"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    return None


def _kind_of_value(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if hasattr(v, "item") and not isinstance(v, str | bytes):   # numpy scalars
        try:
            return _kind_of_value(v.item())
        except (TypeError, ValueError):
            return "string"
    return "string"


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, dict | list | tuple):
        return json.dumps(v, default=str, ensure_ascii=False)
    return str(v)


def _coerce(v: Any, kind: str) -> tuple[Any, str | None]:
    """(value in `kind`, problem or None); problem values are written as null."""
    if v is None:
        return None, None
    if hasattr(v, "item") and not isinstance(v, str | bytes | dict | list | tuple):
        try:
            v = v.item()
        except (TypeError, ValueError):
            pass
    if kind == "string":
        return _text(v), None
    if kind == "bool":
        if isinstance(v, bool):
            return v, None
        if isinstance(v, str) and v.strip().lower() in ("true", "false"):
            return v.strip().lower() == "true", None
        if isinstance(v, int | float) and v in (0, 1):
            return bool(v), None
        return None, "not_a_bool"
    try:
        f = float(v)   # numbers and numeric strings
    except (TypeError, ValueError, OverflowError):
        return None, "not_a_number"
    if kind == "float64":
        return f, None
    if isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63:
        return v, None
    if math.isfinite(f) and f.is_integer() and abs(f) < 2**63:
        return int(f), None
    return None, "not_an_integer"


class TableBuilder:
    """Turns batches of logged rows into Arrow tables; keeps the column kinds between files."""

    def __init__(self, model_name: str, model_version: str, types: dict[str, str] | None = None):
        self.model_name = model_name
        self.model_version = model_version
        self.kinds: dict[str, str] = {}
        for name, kind in (types or {}).items():
            self.kinds[name] = kind_name(kind)
        self.features: list[str] = [n for n in self.kinds if n not in ("prediction", "label")]
        self._renamed: dict[str, str] = {}
        self._warned: set[tuple[str, str]] = set()

    # -- names -------------------------------------------------------------------------------
    def column_name(self, feature: str) -> str:
        name = self._renamed.get(feature)
        if name is None:
            name = str(feature)
            if name in RESERVED or name.startswith("score_"):
                new = f"feature_{name}"
                self._warn(name, "renamed", f"feature {name!r} takes a name the log contract "
                           f"reserves: written as {new!r}")
                name = new
            self._renamed[feature] = name
        return name

    def _warn(self, column: str, reason: str, message: str) -> None:
        if (column, reason) not in self._warned:
            self._warned.add((column, reason))
            log.warning("prediction logger: %s", message)

    # -- columns -----------------------------------------------------------------------------
    def _column(self, name: str, values: list[Any], report: Counter) -> pa.Array | None:
        """The column `name` in its kind, from Python `values` (converted by Arrow when their
        kind is the column's, else value by value)."""
        kind = self.kinds.get(name)
        try:
            arr = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            arr = None
        got = _kind_of_type(arr.type) if arr is not None else None
        if arr is not None and pa.types.is_null(arr.type):
            return pa.nulls(len(arr), KINDS[kind]) if kind else None
        if kind is None:
            if got is None:
                kind = _kind_of_value(next(v for v in values if v is not None))
                if arr is not None:
                    self._warn(name, "text", f"column {name!r} holds {arr.type} values: written as text")
            else:
                kind = got
            self.kinds[name] = kind
        if arr is not None and got == kind:
            return arr.cast(KINDS[kind]) if arr.type != KINDS[kind] else arr
        if arr is not None and got == "int64" and kind == "float64":
            return arr.cast(pa.float64())
        if kind == "int64" and (got == "float64" or any(isinstance(v, float) and not v.is_integer()
                                                        for v in values if v is not None)):
            self.kinds[name] = kind = "float64"
            report[f"{name}:widened_to_float64"] += 1
            self._warn(name, "widened", f"column {name!r} received non-integral numbers: "
                       "written as float64 from now on")
        out = []
        for v in values:
            c, problem = _coerce(v, kind)
            if problem:
                report[f"{name}:{problem}"] += 1
                self._warn(name, problem, f"column {name!r} ({kind}) received {type(v).__name__} "
                           f"values it cannot hold ({problem}): written as null and counted in "
                           "the files' modelwatch.coerced metadata")
            out.append(c)
        return pa.array(out, type=KINDS[kind])

    def _coerced_floats(self, name: str, values: list[Any], report: Counter) -> pa.Array:
        out = []
        for v in values:
            c, problem = _coerce(v, "float64")
            if problem:
                report[f"{name}:{problem}"] += 1
                self._warn(name, problem, f"{name} received {type(v).__name__} values: written as null")
            out.append(c)
        return pa.array(out, pa.float64())

    def _feature_columns(self, features: list[dict | None]):
        """(feature, values) for every feature known so far or present in `features`."""
        n = len(features)
        seen: dict[str, Any] = dict.fromkeys(self.features)
        first = features[0] if n else None
        if first and all(features) and sum(map(len, features)) == len(first) * n:
            # Likely every row has the keys of the first (one code path logs them all): one
            # C-level pass per feature. Same sizes and every key found means the same keys.
            try:
                columns = {key: list(map(operator.itemgetter(key), features)) for key in first}
            except KeyError:
                columns = None
            if columns is not None:
                seen.update(dict.fromkeys(first))
                for key in seen:
                    yield key, columns.get(key) or [None] * n
                return
        for f in features:
            if f:
                seen.update(f)   # C-level; only the keys, in order of first appearance, count
        for key in seen:
            yield key, [f.get(key) if f else None for f in features]

    def build(self, rows: list[tuple], presorted: bool = False) -> tuple[pa.Table, Counter]:
        """rows: (request_id, ts_us, endpoint, latency_ms, status, error_type, prediction,
        score, label, features) tuples -> (table sorted by time, coercion counts).
        presorted: the rows come in time order already (the writer sorts them)."""
        report: Counter = Counter()
        n = len(rows)
        (rid, ts, endpoint, latency, status, error_type, prediction, score, label,
         features) = (list(map(operator.itemgetter(i), rows)) for i in range(10))
        # r.features may have been set to something other than a dict by the serving code.
        features = [f if f is None or type(f) is dict else as_features(f) for f in features]
        cols: dict[str, pa.Array] = {"request_id": None, "timestamp": pa.array(ts, TIMESTAMP),
                                     "model_name": pa.repeat(pa.scalar(self.model_name, pa.string()), n),
                                     "model_version": pa.repeat(pa.scalar(self.model_version, pa.string()), n)}
        for name, values in (("request_id", rid), ("endpoint", endpoint), ("status", status),
                             ("error_type", error_type)):
            try:
                cols[name] = pa.array(values, pa.string())
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
                cols[name] = pa.array([None if v is None else _text(v) for v in values], pa.string())
        try:
            cols["latency_ms"] = pa.array(latency, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            cols["latency_ms"] = self._coerced_floats("latency_ms", latency, report)
        self.kinds.setdefault("score", "float64")
        for name, values in (("prediction", prediction), ("score", score), ("label", label)):
            arr = self._column(name, values, report)
            if arr is not None:
                cols[name] = arr
        if "score" not in cols:
            cols["score"] = pa.nulls(n, pa.float64())
        # Features: every name seen so far, in order of first appearance, so files share a
        # layout. One Python list per feature, converted by Arrow (and coerced when its values
        # disagree): cheaper than converting the dicts as one struct array.
        for key, values in self._feature_columns(features):
            name = self.column_name(key)
            arr = self._column(name, values, report)
            if key not in self.features and name in self.kinds:
                self.features.append(key)
            if arr is not None:
                cols[name] = arr
        table = pa.table(cols)
        if not presorted:
            table = table.sort_by([("timestamp", "ascending")])
        return table, report

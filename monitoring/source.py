"""The log source: find Parquet prediction logs, check them, and expose one canonical view.

`open_source(path, config, con)` returns a `LogSource`: the readable files, the files that
could not be read (with the reason), warnings about columns, the canonical column types and
the input features. Queries run as

    source.query(con, "SELECT count(*) AS n FROM logs WHERE ts >= $start", {"start": dt})

where `logs` is a CTE over the readable files with the canonical columns of
shared/LOG_SCHEMA.md, valid rows only (invalid ones are counted by `monitoring.health`).
Every user value is a bound parameter; identifiers come only from the files' own schemas.

Columns of `logs`: request_id, ts (the raw timestamp, so filters prune row groups), ts_us
(microseconds since the epoch, UTC), model_name, model_version, endpoint, latency_ms,
is_error, status, error_type, prediction, score, label, and one column per feature.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .config import CANONICAL_COLUMNS, Config

# Columns without which no metric can be computed for a row: the log cannot be used at all
# when none of its files has them.
CORE_COLUMNS = ("request_id", "timestamp", "model_version", "latency_ms", "status")
NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")
INTEGER_TYPES = NUMERIC_TYPES[:9]
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class LogSourceError(Exception):
    """The logs cannot be used at all; the message is one line a person can act on."""


@dataclass(frozen=True)
class BadFile:
    path: str
    reason: str


@dataclass(frozen=True)
class Feature:
    name: str          # column name in `logs`
    kind: str          # "numeric" | "categorical"
    dtype: str         # DuckDB type
    expr: str          # SQL expression over the raw scan (quoted identifiers only)


@dataclass
class LogSource:
    path: str
    files: list[str]
    bad_files: list[BadFile]
    warnings: list[str]
    columns: dict[str, str | None]          # canonical -> column in the files (None: absent)
    types: dict[str, str]                   # canonical -> DuckDB type of the union
    features: list[Feature]
    hive: bool
    fingerprint: str
    file_rows: dict[str, int] = field(default_factory=dict)
    file_types: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> column -> arrow type
    dedupe_table: str | None = None         # set by health.find_duplicates when copies exist

    # -- SQL -------------------------------------------------------------------------------
    def has(self, canonical: str) -> bool:
        return self.columns.get(canonical) is not None

    @property
    def scan_sql(self) -> str:
        opts = "union_by_name=true, hive_partitioning=" + ("true" if self.hive else "false")
        if self.dedupe_table:
            opts += ", filename='__mw_file', file_row_number=true"
        return f"read_parquet($files, {opts})"

    def expr(self, canonical: str) -> str:
        """SQL for a canonical column over the raw scan; NULL when absent."""
        col = self.columns.get(canonical)
        typ = self.types.get(canonical, "")
        if col is None:
            return "NULL"
        q = quote_ident(col)
        if canonical == "timestamp":
            if typ.startswith("TIMESTAMP"):
                return q
            return f"TRY_CAST({q} AS TIMESTAMPTZ)"
        if canonical in ("latency_ms", "score"):
            return f"CAST({q} AS DOUBLE)" if typ in NUMERIC_TYPES else f"TRY_CAST({q} AS DOUBLE)"
        if canonical == "prediction" or canonical == "label":
            return q
        return f"CAST({q} AS VARCHAR)"

    def is_error_expr(self) -> str:
        q = quote_ident(self.columns["status"] or "status")
        if self.types.get("status") in INTEGER_TYPES:
            return f"({q} >= 400)"
        # "ok" in any case is success; so is a numeric code below 400 stored as text. CASE
        # evaluates its branches on the remaining rows only, so the common exact 'ok' costs
        # one comparison and the string functions run on the rest.
        return (f"(CASE WHEN {q} = 'ok' THEN false "
                f"WHEN lower(trim(CAST({q} AS VARCHAR))) = 'ok' THEN false "
                f"ELSE NOT coalesce(TRY_CAST({q} AS INTEGER) < 400, false) END)")

    def valid_predicate(self) -> str:
        ts, lat = self.expr("timestamp"), self.expr("latency_ms")
        return (f"{ts} IS NOT NULL AND {self.expr('request_id')} IS NOT NULL "
                f"AND {lat} >= 0 AND isfinite({lat}) "
                f"AND {quote_ident(self.columns['status'])} IS NOT NULL "
                f"AND {self.expr('model_version')} IS NOT NULL")

    def base_sql(self) -> str:
        """The body of the `logs` CTE: canonical columns of valid, de-duplicated rows."""
        cols = [
            f"{self.expr('request_id')} AS request_id",
            f"{self.expr('timestamp')} AS ts",
            f"epoch_us({self.expr('timestamp')}) AS ts_us",
            f"coalesce({self.expr('model_name')}, 'default') AS model_name",
            f"{self.expr('model_version')} AS model_version",
            f"{self.expr('endpoint')} AS endpoint",
            f"{self.expr('latency_ms')} AS latency_ms",
            f"{self.is_error_expr()} AS is_error",
            f"CAST({quote_ident(self.columns['status'])} AS VARCHAR) AS status",
            f"{self.expr('error_type')} AS error_type",
            f"{self.expr('prediction')} AS prediction",
            f"{self.expr('score')} AS score",
            f"{self.expr('label')} AS label",
        ]
        cols += [f"{f.expr} AS {quote_ident(f.name)}" for f in self.features]
        sql = f"SELECT {', '.join(cols)} FROM {self.scan_sql} AS r"
        if self.dedupe_table:
            sql += (f" ANTI JOIN {self.dedupe_table} AS d"
                    " ON r.__mw_file = d.file AND r.file_row_number = d.row_number")
        return sql + f" WHERE {self.valid_predicate()}"

    def sql(self, body: str, *, raw: bool = False) -> str:
        """Prefix `body` with the `logs` CTE (or `raw_logs`, every row, when raw=True)."""
        if raw:
            return f"WITH raw_logs AS (SELECT * FROM {self.scan_sql} AS r) {body}"
        return f"WITH logs AS ({self.base_sql()}) {body}"

    def query(self, con: duckdb.DuckDBPyConnection, body: str, params: dict[str, Any] | None = None,
              *, raw: bool = False, tables: dict[str, pl.DataFrame] | None = None) -> pl.DataFrame:
        """Run `body` over the logs on a fresh cursor; returns a (small) Polars frame.
        `tables` are small frames the SQL may read by name (e.g. a list of wanted keys)."""
        sql = self.sql(body, raw=raw)
        return run(con, sql, {"files": self.files, **(params or {})}, tables=tables)


def run(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None,
        *, tables: dict[str, pl.DataFrame] | None = None) -> pl.DataFrame:
    """Execute on a cursor of its own (connections are not safe to share across threads)."""
    params = params or {}
    used = set(_PARAM.findall(sql))
    bound = {k: _bindable(v) for k, v in params.items() if k in used}
    missing = used - bound.keys()
    if missing:
        raise KeyError(f"unbound SQL parameters: {sorted(missing)}")
    cur = con.cursor()
    try:
        for name, frame in (tables or {}).items():
            cur.register(name, frame.to_arrow())
        table = cur.sql(sql, params=bound).to_arrow_table()
    finally:
        cur.close()
    return pl.from_arrow(table) if table.num_columns else pl.DataFrame()


def _bindable(value: Any) -> Any:
    # Timestamps are bound as naive UTC: binding tz-aware values needs pytz in DuckDB.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(config: Config | None = None) -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process: UTC, no progress bar, bounded memory (spills)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    limit = (config.duckdb_memory_limit if config else "1GB") or "1GB"
    # SET takes no bound parameters; the value is checked against a strict pattern first.
    con.execute(f"SET memory_limit = '{_safe_setting(limit)}'")
    threads = config.duckdb_threads if config else 0
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _safe_setting(value: str) -> str:
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", value.strip(), re.IGNORECASE):
        raise LogSourceError(f"duckdb_memory_limit must look like '1GB', got {value!r}")
    return value.strip()


# -- discovery and checks --------------------------------------------------------------------

def resolve_paths(path: str) -> list[str]:
    """Expand a file, directory (recursive) or glob into sorted Parquet file paths."""
    if not path:
        raise LogSourceError("no log path given (set MONITORING_LOGS or pass --logs)")
    p = Path(path)
    if any(ch in path for ch in "*?["):
        files = [f for f in glob.glob(path, recursive=True) if os.path.isfile(f)]
        if not files:
            raise LogSourceError(f"no files match {path}")
    elif p.is_dir():
        files = [str(f) for f in p.rglob("*") if f.is_file() and _looks_like_parquet_name(f)]
        if not files:
            raise LogSourceError(f"no Parquet files under {path}")
    elif p.is_file():
        files = [str(p)]
    else:
        raise LogSourceError(f"no such file or directory: {path}")
    return sorted(files)


def _looks_like_parquet_name(f: Path) -> bool:
    # Hidden files and side-car files (READMEs, _SUCCESS markers) are not logs.
    name = f.name
    if name.startswith((".", "_")) or name.lower().endswith((".md", ".txt", ".json", ".crc")):
        return False
    return True


def _inspect(path: str) -> tuple[pa.Schema | None, int, str | None]:
    try:
        meta = pq.ParquetFile(path)
        return meta.schema_arrow, meta.metadata.num_rows, None
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "magic bytes" in msg or "Parquet file size is" in msg or "footer" in msg.lower():
            return None, 0, "not a Parquet file, or truncated (no valid footer)"
        return None, 0, f"unreadable Parquet: {msg[:200]}"


def _kind(arrow_type: pa.DataType) -> str:
    if pa.types.is_dictionary(arrow_type):
        return "categorical"
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "numeric"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_boolean(arrow_type):
        return "categorical"
    return "other"


def _fingerprint(files: list[str], config: Config) -> str:
    h = hashlib.sha256()
    for f in files:
        st = os.stat(f)
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    h.update(repr(sorted(config.columns.items())).encode())
    h.update(repr(config.features).encode())
    return h.hexdigest()[:16]


def open_source(path: str, config: Config, con: duckdb.DuckDBPyConnection, *,
                reference: bool = False) -> LogSource:
    """Find and check the logs at `path`; raises LogSourceError when none can be used.

    With reference=True (a drift reference such as a training sample) no serving column is
    required: only `raw_logs` and the features are meant to be queried.
    """
    candidates = resolve_paths(path)
    good: list[str] = []
    bad: list[BadFile] = []
    schemas: dict[str, pa.Schema] = {}
    rows: dict[str, int] = {}
    for f in candidates:
        schema, n, err = _inspect(f)
        if err:
            bad.append(BadFile(f, err))
            continue
        if len(schema) == 0:
            bad.append(BadFile(f, "Parquet file with no columns"))
            continue
        schemas[f], rows[f] = schema, n
        good.append(f)

    mapping = {c: config.columns.get(c, c) for c in CANONICAL_COLUMNS}
    # A file is unusable when a column it has cannot be read as the contract says
    # (e.g. latency_ms as a list); missing columns only make its rows count as invalid.
    for f in list(good):
        reason = _type_problem(schemas[f], mapping)
        if reason:
            bad.append(BadFile(f, reason))
            good.remove(f)
            del schemas[f]
    if not good:
        detail = "; ".join(f"{b.path}: {b.reason}" for b in bad[:3])
        raise LogSourceError(f"no readable log files in {path}" + (f" ({detail})" if detail else ""))

    hive = all(any("=" in part for part in Path(f).parent.parts) for f in good)
    fingerprint = _fingerprint(good, config)
    describe = con.cursor().execute(
        f"DESCRIBE SELECT * FROM read_parquet($files, union_by_name=true, "
        f"hive_partitioning={'true' if hive else 'false'})",
        {"files": good},
    ).fetchall()
    union_types = {name: typ for name, typ, *_ in describe}
    hive_cols = _hive_keys(good) if hive else set()

    columns: dict[str, str | None] = {}
    types: dict[str, str] = {}
    warnings: list[str] = []
    for canonical in CANONICAL_COLUMNS:
        actual = mapping[canonical]
        if actual in union_types:
            columns[canonical] = actual
            types[canonical] = union_types[actual]
            missing_in = [f for f in good if actual not in schemas[f].names]
            if missing_in and actual not in hive_cols:
                n = sum(rows[f] for f in missing_in)
                warnings.append(
                    f"column {actual!r} is missing in {len(missing_in)} file(s), e.g. "
                    f"{missing_in[0]}: {n} row(s) read it as empty")
        else:
            columns[canonical] = None
    absent_core = [c for c in CORE_COLUMNS if columns[c] is None]
    if absent_core and not reference:
        names = ", ".join(mapping[c] for c in absent_core)
        raise LogSourceError(
            f"required column(s) {names} not found in any file under {path} "
            "(map your column names in monitoring.toml [columns])")
    for canonical in ("prediction",):
        if columns[canonical] is None and not reference:
            warnings.append(f"column {mapping[canonical]!r} not found: output drift and labelling need it")
    if columns["latency_ms"] is not None and types.get("latency_ms") not in NUMERIC_TYPES:
        warnings.append(f"latency_ms has type {types['latency_ms']} across files; non-numbers count as invalid")

    features = _features(config, union_types, set(mapping.values()) | hive_cols, warnings)
    file_types = {f: {n: str(schemas[f].field(n).type) for n in schemas[f].names} for f in good}
    return LogSource(path=path, files=good, bad_files=bad, warnings=warnings, columns=columns,
                     types=types, features=features, hive=hive, fingerprint=fingerprint,
                     file_rows=rows, file_types=file_types)


def _type_problem(schema: pa.Schema, mapping: dict[str, str]) -> str | None:
    def typ(canonical: str) -> pa.DataType | None:
        # An all-null column (Arrow's null type) fits any contract type.
        name = mapping[canonical]
        if name not in schema.names or pa.types.is_null(schema.field(name).type):
            return None
        return schema.field(name).type

    t = typ("timestamp")
    if t is not None and not (pa.types.is_timestamp(t) or pa.types.is_string(t)
                              or pa.types.is_large_string(t) or pa.types.is_date(t)):
        return f"column {mapping['timestamp']!r} has type {t}, expected a timestamp"
    t = typ("latency_ms")
    if t is not None and not (pa.types.is_integer(t) or pa.types.is_floating(t)
                              or pa.types.is_decimal(t) or pa.types.is_string(t)):
        return f"column {mapping['latency_ms']!r} has type {t}, expected a number of milliseconds"
    t = typ("status")
    if t is not None and not (pa.types.is_integer(t) or pa.types.is_string(t)
                              or pa.types.is_large_string(t) or pa.types.is_dictionary(t)):
        return f"column {mapping['status']!r} has type {t}, expected a string or an HTTP code"
    for canonical in ("request_id", "model_version", "model_name", "endpoint", "error_type"):
        t = typ(canonical)
        if t is not None and (pa.types.is_nested(t) or pa.types.is_binary(t)):
            return f"column {mapping[canonical]!r} has type {t}, expected a string"
    return None


def _hive_keys(files: list[str]) -> set[str]:
    keys: set[str] = set()
    for f in files:
        for part in Path(f).parent.parts:
            if "=" in part:
                keys.add(part.split("=", 1)[0])
    return keys


def _features(config: Config, union_types: dict[str, str], reserved: set[str],
              warnings: list[str]) -> list[Feature]:
    out: list[Feature] = []
    explicit = list(config.features)
    for name, typ in union_types.items():
        if typ.startswith("STRUCT") and name == "features":
            continue  # expanded below
        if explicit and name not in explicit:
            continue
        if not explicit and name in reserved:
            continue
        kind = _duck_kind(typ)
        if kind is None:
            warnings.append(f"column {name!r} of type {typ} is not a feature type and is ignored")
            continue
        out.append(Feature(name, kind, typ, quote_ident(name)))
    struct_type = union_types.get("features", "")
    if struct_type.startswith("STRUCT("):
        for fname, ftype in _struct_fields(struct_type):
            if fname in union_types or (explicit and fname not in explicit):
                continue
            kind = _duck_kind(ftype)
            if kind:
                out.append(Feature(fname, kind, ftype, f"struct_extract(\"features\", '{_sql_str(fname)}')"))
    if explicit:
        found = {f.name for f in out}
        for name in explicit:
            if name not in found:
                warnings.append(f"feature {name!r} listed in monitoring.toml is not in the logs")
    return out


def _duck_kind(typ: str) -> str | None:
    if typ in NUMERIC_TYPES or typ.startswith("DECIMAL"):
        return "numeric"
    if typ in ("VARCHAR", "BOOLEAN") or typ.startswith("ENUM"):
        return "categorical"
    return None


def _struct_fields(struct_type: str) -> list[tuple[str, str]]:
    inner = struct_type[len("STRUCT("):-1]
    out, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    fields_ = []
    for item in out:
        name, _, typ = item.partition(" ")
        fields_.append((name.strip('"'), typ.strip()))
    return fields_


def _sql_str(s: str) -> str:
    # Struct field names come from the file's own schema, never from a user widget.
    return s.replace("'", "''")

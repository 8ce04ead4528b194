"""The log source: find Parquet prediction logs, check them, and expose one canonical view.

`open_source(path, config, con)` returns a `LogSource`: the readable files, the files that
could not be read (with the reason), warnings, the columns it ignores (with the reason), the
canonical column types and the input features. Queries run as

    source.query(con, "SELECT count(*) AS n FROM logs WHERE ts >= $start", {"start": dt})

where `logs` is a CTE over the readable files with the canonical columns of the log
contract (README), valid rows only (invalid ones are counted by `monitoring.logs.health`). Every
user value is a bound parameter; identifiers come only from the files' own schemas.

Columns of `logs`:
- request_id (derived from file and row when the logs have none), ts (the raw timestamp, so
  filters prune row groups; NULL without a timestamp column), ts_us (microseconds since the
  epoch, UTC), row_seq (file order, then row: orders logs that have no time);
- model_name ('default' when absent), model_version ('default' when absent), endpoint
  ('(none)' for null values), latency_ms (NULL when absent), is_error (false when there is
  no status: every request counts as served), status, error_type, prediction, score, label;
- one column per feature, named `Feature.col` ("f:<name>"): a namespace that no internal
  column can take, whatever the features are called.

Only the serving columns a log has are checked: batch logs (features, a prediction, maybe a
time) are first-class. `source.missing(...)` says in one sentence what a page lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from ..config import CANONICAL_COLUMNS, Config
from . import discover
from .columns import Feature, resolve_columns
from .discover import LogSourceError, resolve_paths
from .sql import connect, cursor, quote_ident, run, sql_str

__all__ = ["INTEGER_TYPES", "NUMERIC_TYPES", "BadFile", "Feature", "LogSource", "LogSourceError",
           "connect", "cursor", "open_source", "quote_ident", "resolve_paths", "run"]

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")
INTEGER_TYPES = NUMERIC_TYPES[:9]
TIMESTAMP_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}
CANONICAL_VIEW_COLUMNS = ("request_id", "ts", "ts_us", "row_seq", "model_name", "model_version",
                          "endpoint", "latency_ms", "is_error", "status", "error_type",
                          "prediction", "score", "label")
# What each serving column turns on, for "what is missing" sentences.
NEEDED_FOR = {
    "latency_ms": "latency percentiles cannot be computed",
    "status": "error rates cannot be computed",
    "timestamp": "nothing can be shown over time",
}


@dataclass(frozen=True)
class BadFile:
    path: str
    reason: str


@dataclass
class LogSource:
    path: str
    files: list[str]
    bad_files: list[BadFile]
    warnings: list[str]
    columns: dict[str, str | None]          # canonical -> column in the files (None: absent)
    types: dict[str, str]                   # canonical -> DuckDB type of the union
    features: list[Feature]
    hive: bool                              # some files sit under key=value directories
    fingerprint: str
    file_rows: dict[str, int] = field(default_factory=dict)
    file_types: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> column -> arrow type
    dedupe_table: str | None = None         # set by health.find_duplicates when copies exist
    ignored: list[tuple[str, str]] = field(default_factory=list)        # (column, reason)
    exprs: dict[str, str] = field(default_factory=dict)   # canonical -> SQL over the raw scan
    timestamp_unit: str | None = None
    file_col: str = "__mw_file"             # the scan's file-name column: no file column takes it
    rollups: Any = None                     # a rollup store covering these files (workspace sets it)

    # -- what the logs hold ------------------------------------------------------------------
    def has(self, canonical: str) -> bool:
        return self.columns.get(canonical) is not None or canonical in self.exprs

    @property
    def has_time(self) -> bool:
        return self.has("timestamp")

    def feature(self, name: str) -> Feature | None:
        return next((f for f in self.features if f.name == name), None)

    def logs_col(self, name: str) -> str:
        """The quoted column of `logs` for a name a user picked: a canonical column the logs
        have, else a feature (so a feature called `ts` or `is_error` is the feature), else
        one of the derived columns."""
        if name in CANONICAL_COLUMNS and self.has(name):
            return quote_ident(name)
        f = self.feature(name)
        if f is not None:
            return f.col
        if name in CANONICAL_VIEW_COLUMNS:
            return quote_ident(name)
        raise KeyError(f"no column {name!r} in the logs")

    def missing(self, *canonical: str) -> str | None:
        """One sentence naming the serving columns these logs lack and how to map them, or
        None when all are there."""
        absent = [c for c in canonical if not self.has(c)]
        if not absent:
            return None
        names = " and ".join(f"`{c}`" for c in absent)
        what = " and ".join(NEEDED_FOR.get(c, f"{c} is not available") for c in absent)
        example = absent[0]
        return (f"These logs have no {names} column, so {what}. If yours "
                f"is under another name, map it in monitoring.toml: `[columns]` "
                f"`{example} = \"your_column\"`.")

    # -- SQL -------------------------------------------------------------------------------
    @property
    def scan_sql(self) -> str:
        # Hive directories are never read as columns by DuckDB: a `status=ok/` directory
        # would override the files' own status. Keys the files lack are derived from the
        # file name instead (see `open_source`).
        return (f"read_parquet($files, union_by_name=true, hive_partitioning=false, "
                f"filename={sql_str(self.file_col)})")

    def expr(self, canonical: str) -> str:
        """SQL for a canonical column over the raw scan; NULL when absent."""
        if canonical in self.exprs:
            return self.exprs[canonical]
        col = self.columns.get(canonical)
        typ = self.types.get(canonical, "")
        if col is None:
            return "NULL"
        q = quote_ident(col)
        if canonical == "timestamp":
            return _timestamp_expr(q, typ, self.timestamp_unit)
        if canonical in ("latency_ms", "score"):
            return f"CAST({q} AS DOUBLE)" if typ in NUMERIC_TYPES else f"TRY_CAST({q} AS DOUBLE)"
        if canonical in ("prediction", "label"):
            return q
        return f"CAST({q} AS VARCHAR)"

    def raw_expr(self, canonical: str) -> str:
        """The column as stored (before parsing), for telling "missing" from "unparsable"."""
        col = self.columns.get(canonical)
        return quote_ident(col) if col else "NULL"

    def is_error_expr(self) -> str:
        if not self.has("status"):
            return "false"
        q = quote_ident(self.columns["status"]) if self.columns.get("status") else self.expr("status")
        if self.types.get("status") in INTEGER_TYPES:
            return f"({q} >= 400)"
        # "ok" in any case is success; so is a numeric code below 400 stored as text. CASE
        # evaluates its branches on the remaining rows only, so the common exact 'ok' costs
        # one comparison and the string functions run on the rest.
        return (f"(CASE WHEN {q} = 'ok' THEN false "
                f"WHEN lower(trim(CAST({q} AS VARCHAR))) = 'ok' THEN false "
                f"ELSE NOT coalesce(TRY_CAST({q} AS INTEGER) < 400, false) END)")

    def contract_rules(self) -> list[tuple[str, str, str | None]]:
        """The log contract for the columns these logs have, in the order rows are judged:
        (reason, SQL true when the row breaks this rule, SQL true when the row keeps this rule
        and every earlier one of the same column, or None when a later rule states it).
        `valid_predicate` (the `logs` view) and the health check's reasons both read this list,
        so a row is dropped from the view exactly when the health check names a reason."""
        rules: list[tuple[str, str, str | None]] = []
        if self.has("timestamp"):
            ts, raw = self.expr("timestamp"), self.raw_expr("timestamp")
            rules.append(("missing_timestamp", f"{raw} IS NULL", None))
            rules.append(("unparsable_timestamp", f"{ts} IS NULL", f"{ts} IS NOT NULL"))
        if self.has("request_id"):
            rid = self.expr("request_id")
            rules.append(("missing_request_id", f"{rid} IS NULL", f"{rid} IS NOT NULL"))
        if self.has("latency_ms"):
            lat = self.expr("latency_ms")
            # isnan() is folded away from Parquet statistics in DuckDB 2.0 (NaN is not in the
            # min/max), so NaN is detected as "not finite and not infinite". The kept form is
            # one range test plus isfinite, which DuckDB pushes into the scan.
            rules.append(("missing_latency",
                          f"{lat} IS NULL OR (NOT isfinite({lat}) AND NOT isinf({lat}))", None))
            rules.append(("infinite_latency", f"isinf({lat})", None))
            rules.append(("negative_latency", f"{lat} < 0", f"{lat} >= 0 AND isfinite({lat})"))
        for name in ("status", "model_version"):
            if self.has(name):
                col = self.expr(name)
                rules.append((f"missing_{name}", f"{col} IS NULL", f"{col} IS NOT NULL"))
        return rules

    def valid_predicate(self) -> str:
        """Rows that keep the contract for the columns these logs have."""
        kept = [k for _, _, k in self.contract_rules() if k is not None]
        return " AND ".join(["TRUE", *kept])

    def reason_case(self) -> str:
        """The first contract rule each row breaks ('valid' when none)."""
        whens = [f"WHEN {broken} THEN '{reason}'" for reason, broken, _ in self.contract_rules()]
        return f"CASE {' '.join(whens)} ELSE 'valid' END" if whens else "'valid'"

    def request_id_sql(self) -> str:
        if self.has("request_id"):
            return self.expr("request_id")
        # No ids in the logs: file and row name each request uniquely and stably.
        return f"({quote_ident(self.file_col)} || '#' || CAST(file_row_number AS VARCHAR))"

    def base_sql(self) -> str:
        """The body of the `logs` CTE: canonical columns of valid, de-duplicated rows."""
        ts = self.expr("timestamp") if self.has_time else "CAST(NULL AS TIMESTAMPTZ)"
        endpoint = (f"coalesce({self.expr('endpoint')}, '(none)')" if self.has("endpoint")
                    else "CAST(NULL AS VARCHAR)")
        cols = [
            f"{self.request_id_sql()} AS request_id",
            f"{ts} AS ts",
            f"epoch_us({ts}) AS ts_us",
            "(CAST(file_index AS BIGINT) << 36) + file_row_number AS row_seq",
            f"coalesce({self.expr('model_name')}, 'default') AS model_name",
            (f"{self.expr('model_version')} AS model_version" if self.has("model_version")
             else "'default' AS model_version"),
            f"{endpoint} AS endpoint",
            f"CAST({self.expr('latency_ms')} AS DOUBLE) AS latency_ms",
            f"{self.is_error_expr()} AS is_error",
            f"CAST({self.expr('status')} AS VARCHAR) AS status",
            f"CAST({self.expr('error_type')} AS VARCHAR) AS error_type",
            f"{self.expr('prediction')} AS prediction",
            f"CAST({self.expr('score')} AS DOUBLE) AS score",
            f"{self.expr('label')} AS label",
        ]
        cols += [f"{f.expr} AS {f.col}" for f in self.features]
        sql = f"SELECT {', '.join(cols)} FROM {self.scan_sql} AS r"
        if self.dedupe_table:
            sql += (f" ANTI JOIN {self.dedupe_table} AS d"
                    f" ON r.{quote_ident(self.file_col)} = d.file AND r.file_row_number = d.row_number")
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


def _timestamp_expr(q: str, typ: str, unit: str | None) -> str:
    if typ.startswith("TIMESTAMP"):
        return q
    if typ == "DATE":
        return f"CAST({q} AS TIMESTAMP)"
    if typ in NUMERIC_TYPES or typ.startswith("DECIMAL"):
        if unit == "ns":
            micros = f"CAST(floor(CAST({q} AS DOUBLE) / 1000) AS BIGINT)"
        else:
            micros = f"CAST(round(CAST({q} AS DOUBLE) * {TIMESTAMP_UNITS[unit or 's']}) AS BIGINT)"
        return f"try(make_timestamp({micros}))"
    # Text: ISO 8601 with or without an offset. Naive text is UTC (the session zone is UTC).
    return f"TRY_CAST({q} AS TIMESTAMPTZ)"


def open_source(path: str, config: Config, con: duckdb.DuckDBPyConnection, *,
                reference: bool = False) -> LogSource:
    """Find and check the logs at `path`; raises LogSourceError when none can be used.

    With reference=True (a drift reference such as a training sample) only the features and
    the model outputs are meant to be queried.
    """
    candidates = resolve_paths(path)
    good: list[str] = []
    bad: list[BadFile] = []
    schemas: dict[str, pa.Schema] = {}
    rows: dict[str, int] = {}
    for f in candidates:
        schema, n, err = discover.inspect(f)
        if err:
            bad.append(BadFile(f, err))
            continue
        if len(schema) == 0:
            bad.append(BadFile(f, "Parquet file with no columns"))
            continue
        schemas[f], rows[f] = schema, n
        good.append(f)
    if not good:
        detail = "; ".join(f"{b.path}: {b.reason}" for b in bad[:3])
        raise LogSourceError(f"no readable log files in {path}" + (f" ({detail})" if detail else ""))

    resolved = resolve_columns(config, schemas, rows, con, path=path, reference=reference)
    for f, reason in resolved.bad_files:
        bad.append(BadFile(f, reason))
        good.remove(f)
    hive = any(discover.hive_keys(f) for f in good)
    salt = repr((sorted(config.columns.items()), config.features, config.timestamp_unit))
    return LogSource(path=path, files=good, bad_files=bad, warnings=resolved.warnings,
                     columns=resolved.columns, types=resolved.types, features=resolved.features,
                     hive=hive, fingerprint=discover.fingerprint(good, salt), file_rows=rows,
                     file_types={f: {n: str(schemas[f].field(n).type) for n in schemas[f].names}
                                 for f in good},
                     ignored=resolved.ignored, exprs=resolved.exprs,
                     timestamp_unit=config.timestamp_unit, file_col=resolved.file_col)

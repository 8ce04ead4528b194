"""Configuration: every setting in one table, with its default and a help line.

Values come, lowest precedence first, from the defaults below, `monitoring.toml` (path in
`MONITORING_CONFIG`, else `./monitoring.toml` when present), environment variables, and
explicit overrides (CLI flags). Everything else in the product reads a `Config`.

    cfg = load_config()                      # defaults + toml + environment
    cfg = load_config(overrides={"logs": "x/"})
    cfg.slo.p95_latency_ms                   # 2000.0
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

CANONICAL_COLUMNS = (
    "request_id",
    "timestamp",
    "model_name",
    "model_version",
    "endpoint",
    "latency_ms",
    "status",
    "error_type",
    "prediction",
    "score",
    "label",
)
REQUIRED_COLUMNS = ("request_id", "timestamp", "model_version", "latency_ms", "status", "prediction")


class ConfigError(ValueError):
    """A setting is malformed; the message names the key and what was expected."""


@dataclass(frozen=True)
class Setting:
    key: str
    default: Any
    help: str
    env: str | None = None


# The one table of top-level settings. Sections ([slo], [columns], [drift], ...) are below.
SETTINGS: tuple[Setting, ...] = (
    Setting("logs", "sample_logs/", "Prediction logs: a Parquet file, directory, glob or Hive tree.", "MONITORING_LOGS"),
    Setting("reference", None, "Reference Parquet for drift (e.g. a training sample); default a window of the logs.", "MONITORING_REFERENCE"),
    Setting("labels", None, "Late ground truth: Parquet with request_id, label, optional labeled_at.", "MONITORING_LABELS"),
    Setting("db_url", None, "SQLAlchemy URL of the product's own database; default a SQLite file in data_dir.", "MONITORING_DB_URL"),
    Setting("data_dir", ".data", "Local folder for the default SQLite database and caches.", "MONITORING_DATA_DIR"),
    Setting("exact_quantile_max_rows", 2_000_000, "Windows up to this many rows get exact percentiles; larger ones use a log-histogram within ±0.5%."),
    Setting("duckdb_memory_limit", "1GB", "DuckDB memory limit; larger work spills to a temporary folder."),
    Setting("duckdb_threads", 0, "DuckDB worker threads (0: one per core)."),
)


@dataclass(frozen=True)
class SLO:
    p95_latency_ms: float = 2000.0
    error_rate: float = 0.01
    # A spike is a bucket whose throughput is at least `spike_factor` times its baseline.
    spike_factor: float = 3.0
    # A gap is a run of empty minutes whose expected traffic totals at least this many
    # requests: silence that long happens by chance with probability e^-15 (3e-7), so a
    # month of minutes raises no false alarm.
    gap_min_expected_requests: float = 15.0
    gap_min_minutes: int = 5
    # Accuracy (reviewed or from late labels) below this is a problem.
    accuracy_floor: float = 0.8


SLO_HELP = {
    "p95_latency_ms": "P95 latency objective in milliseconds (successful requests).",
    "error_rate": "Error-rate objective, a fraction (0.01 = 1%).",
    "spike_factor": "Throughput at least this many times its baseline marks a spike.",
    "gap_min_expected_requests": "Expected requests a silent run must miss to count as downtime.",
    "gap_min_minutes": "Shortest silent run, in minutes, reported as a gap.",
    "accuracy_floor": "Accuracy below this (reviewed or from late labels) is a problem.",
}


@dataclass(frozen=True)
class Config:
    logs: str = "sample_logs/"
    reference: str | None = None
    labels: str | None = None
    db_url: str | None = None
    data_dir: str = ".data"
    exact_quantile_max_rows: int = 2_000_000
    duckdb_memory_limit: str = "1GB"
    duckdb_threads: int = 0
    # canonical column -> column name in the user's logs
    columns: dict[str, str] = field(default_factory=dict)
    # explicit feature list; empty means every non-canonical column
    features: tuple[str, ...] = ()
    # unit of a numeric timestamp column: "s", "ms", "us" or "ns" ([columns] timestamp_unit)
    timestamp_unit: str | None = None
    slo: SLO = field(default_factory=SLO)
    # free-form sections owned by other modules (drift, alerts, ...), validated there
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    source_path: str | None = None

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.sections.get(name, {}))

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        path = Path(self.data_dir) / "modelwatch.sqlite"
        return f"sqlite:///{path}"


def _config_path(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("MONITORING_CONFIG")
    if env:
        return Path(env)
    default = Path("monitoring.toml")
    return default if default.is_file() else None


def _coerce(key: str, value: Any, default: Any) -> Any:
    if value is None or default is None:
        return value
    target = type(default)
    try:
        if target is bool:
            if isinstance(value, str):
                return value.strip().lower() in {"1", "true", "yes", "on"}
            return bool(value)
        return target(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {key!r}: expected {target.__name__}, got {value!r}") from exc


def load_config(path: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Return the effective `Config`; raises `ConfigError` with a one-line reason."""
    values: dict[str, Any] = {s.key: s.default for s in SETTINGS}
    data: dict[str, Any] = {}
    cfg_path = _config_path(path)
    if cfg_path is not None:
        if not cfg_path.is_file():
            raise ConfigError(f"config file not found: {cfg_path}")
        try:
            data = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{cfg_path}: not valid TOML ({exc})") from exc
    known = {s.key for s in SETTINGS}
    for key, value in data.items():
        if key in known:
            values[key] = value
    for s in SETTINGS:
        if s.env and os.environ.get(s.env):
            values[s.key] = os.environ[s.env]
    for key, value in (overrides or {}).items():
        if value is not None:
            if key not in known:
                raise ConfigError(f"unknown setting {key!r}")
            values[key] = value
    for s in SETTINGS:
        values[s.key] = _coerce(s.key, values[s.key], s.default)

    columns = data.get("columns", {}) or {}
    if not isinstance(columns, dict):
        raise ConfigError("[columns] must be a table of canonical name = column name")
    features = columns.get("features", ())
    timestamp_unit = columns.get("timestamp_unit")
    if timestamp_unit is not None and timestamp_unit not in ("s", "ms", "us", "ns"):
        raise ConfigError(f'[columns] timestamp_unit must be "s", "ms", "us" or "ns", got {timestamp_unit!r}')
    mapping = {k: v for k, v in columns.items() if k not in ("features", "timestamp_unit")}
    for k, v in mapping.items():
        if k not in CANONICAL_COLUMNS:
            raise ConfigError(f"[columns] {k!r} is not a canonical column ({', '.join(CANONICAL_COLUMNS)})")
        if not isinstance(v, str) or not v:
            raise ConfigError(f"[columns] {k} must name a column, got {v!r}")
    if not isinstance(features, list | tuple) or not all(isinstance(f, str) for f in features):
        raise ConfigError("[columns] features must be a list of column names")

    slo_data = data.get("slo", {}) or {}
    slo_defaults = SLO()
    slo_values = {}
    for f in fields(SLO):
        if f.name in slo_data:
            slo_values[f.name] = _coerce(f"slo.{f.name}", slo_data[f.name], getattr(slo_defaults, f.name))
    unknown_slo = set(slo_data) - {f.name for f in fields(SLO)}
    if unknown_slo:
        raise ConfigError(f"[slo] unknown keys: {', '.join(sorted(unknown_slo))}")
    slo = replace(slo_defaults, **slo_values)
    if slo.p95_latency_ms <= 0 or not 0 < slo.error_rate < 1:
        raise ConfigError("[slo] p95_latency_ms must be > 0 and error_rate in (0, 1)")

    sections = {k: v for k, v in data.items() if isinstance(v, dict) and k not in {"columns", "slo"}}
    return Config(
        **values,
        columns=mapping,
        features=tuple(features),
        timestamp_unit=timestamp_unit,
        slo=slo,
        sections=sections,
        source_path=str(cfg_path) if cfg_path else None,
    )

"""Configuration: every setting in one table, with its default and a help line.

Values come, lowest precedence first, from the defaults below, `monitoring.toml` (path in
`MONITORING_CONFIG`, else `./monitoring.toml` when present), environment variables, and
explicit overrides (CLI flags). Everything else in the product reads a `Config`.

    cfg = load_config()                      # defaults + toml + environment
    cfg = load_config(overrides={"logs": "x/"})
    cfg.slo.p95_latency_ms                   # 2000.0

Every key is checked when the file is loaded: a misspelt key is refused with "did you mean
...?", a value of the wrong type or out of range with what was expected. A section
(`[drift]`, `[alerts]`, ...) is declared by the module that owns it, in one place:

    register_section("drift", SETTINGS, check=load)   # in monitoring/drift/settings.py
    SECTION_OWNERS["drift"] = "monitoring.drift.settings"   # here: imported when the file has [drift]

A table no module declares is kept but reported in `Config.warnings` (with "did you mean").
"""

from __future__ import annotations

import difflib
import importlib
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable
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


Check = Callable[[Any], "str | None"]   # a value -> what is wrong with it, or None


@dataclass(frozen=True)
class Setting:
    key: str
    default: Any
    help: str
    env: str | None = None
    check: Check | None = None      # range or shape beyond the type of the default
    kind: type | None = None        # the value's type when the default (None) does not say


# -- checks shared by every section ----------------------------------------------------------

def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest known name, or '' when nothing is close."""
    close = difflib.get_close_matches(str(word), sorted(set(choices)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(where: str, data: dict[str, Any], known: Iterable[str], what: str = "key") -> None:
    """Raise ConfigError for the first key of `data` not in `known`, naming the closest."""
    known = sorted(set(known))
    for key in data:
        if key not in known:
            raise ConfigError(f"{where} unknown {what} {key!r}{did_you_mean(key, known)}; "
                              f"known {what}s: {', '.join(known)}")


def at_least(lo: float) -> Check:
    return lambda v: None if v >= lo else f"must be at least {lo:g}"


def between(lo: float, hi: float) -> Check:
    return lambda v: None if lo <= v <= hi else f"must be between {lo:g} and {hi:g}"


def above(lo: float) -> Check:
    return lambda v: None if v > lo else f"must be greater than {lo:g}"


def one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(map(repr, choices))}"


def matches(pattern: str, example: str) -> Check:
    return lambda v: None if re.fullmatch(pattern, v.strip(), re.IGNORECASE) else f"must look like {example!r}"


def coerce(where: str, value: Any, default: Any, kind: type | None = None, *, from_text: bool = False) -> Any:
    """`value` as the type of `default` (or `kind`); ConfigError naming `where` otherwise.

    TOML values must already have the right type (an integer is accepted for a float, a
    whole float such as 2e6 for an integer);
    text from the environment or a flag (`from_text`) is parsed.
    """
    target = kind or (type(default) if default is not None else None)
    if value is None or target is None or target is object:
        return value
    name = {bool: "true or false", int: "a whole number", float: "a number", str: "text",
            list: "a list", dict: "a table"}.get(target, target.__name__)
    if from_text and isinstance(value, str) and target is not str:
        text = value.strip()
        if target is bool:
            if text.lower() in {"1", "true", "yes", "on"}:
                return True
            if text.lower() in {"0", "false", "no", "off"}:
                return False
        else:
            try:
                value = int(text) if target is int else float(text) if target is float else value
            except ValueError:
                raise ConfigError(f"{where} must be {name}, got {value!r}") from None
    if target is str and isinstance(value, os.PathLike):
        value = os.fspath(value)
    if target is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if target is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if target is list and isinstance(value, tuple):
        value = list(value)
    if type(value) is not target and not (target is float and isinstance(value, float)):
        raise ConfigError(f"{where} must be {name}, got {value!r}")
    if target is float and not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    return value


def validate_settings(where: str, data: dict[str, Any], settings: tuple[Setting, ...]) -> dict[str, Any]:
    """Known keys only (did you mean), each of its type and range; returns the values given."""
    check_keys(where, data, [s.key for s in settings])
    out = {}
    for s in settings:
        if s.key in data:
            out[s.key] = _checked(f"{where} {s.key}".strip(), data[s.key], s)
    return out


def _checked(where: str, value: Any, s: Setting, from_text: bool = False) -> Any:
    v = coerce(where, value, s.default, s.kind or (str if s.default is None else None), from_text=from_text)
    if v is not None and s.check is not None:
        problem = s.check(v)
        if problem:
            raise ConfigError(f"{where} {problem}, got {v!r}")
    return v


# -- sections declared by their modules --------------------------------------------------------

@dataclass(frozen=True)
class Section:
    """A table of monitoring.toml: its keys (default and help each) and an optional deeper
    check of the whole table (raises ConfigError; e.g. sub-tables, keys that go together)."""
    name: str
    settings: tuple[Setting, ...]
    check: Callable[[dict[str, Any]], Any] | None = None

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        """The table's values, each of its key's type; raises ConfigError naming the key."""
        values = validate_settings(f"[{self.name}]", data, self.settings)
        if self.check is not None:
            self.check(data)
        return values


SECTIONS: dict[str, Section] = {}
# The module declaring each section, imported when a file holds that table (only then, so
# the command line does not pay for every module's imports).
SECTION_OWNERS: dict[str, str] = {
    "columns": __name__,
    "slo": __name__,
    "drift": "monitoring.drift.settings",
    "alerts": "monitoring.alerts.settings",
    "auth": "monitoring.auth.settings",
    "compare": "monitoring.compare.settings",
    "labels": "monitoring.quality.ground_truth",
    "quality": "monitoring.quality.settings",
    "rollups": "monitoring.rollup.settings",
}


def register_section(name: str, settings: tuple[Setting, ...],
                     check: Callable[[dict[str, Any]], Any] | None = None) -> Section:
    """Declare the table `[name]` of monitoring.toml; called once by the module that owns it."""
    section = Section(name, tuple(settings), check)
    SECTIONS[name] = section
    return section


def section_for(name: str) -> Section | None:
    owner = SECTION_OWNERS.get(name)
    if name not in SECTIONS and owner and owner != __name__:
        importlib.import_module(owner)
    return SECTIONS.get(name)


# -- the top-level settings ------------------------------------------------------------------

_MEMORY = r"\d+(\.\d+)?\s*[KMGT]i?B"

# The one table of top-level settings. Sections ([slo], [columns], [drift], ...) are below.
DUCKDB_MEMORY = "700MB"   # the process stays under 1 GB at 100M rows (docs/scale.md)
SETTINGS: tuple[Setting, ...] = (
    Setting("logs", "sample_logs/", "Prediction logs: a Parquet file, directory, glob or Hive tree.", "MONITORING_LOGS"),
    Setting("reference", None, "Reference Parquet for drift (e.g. a training sample); default a window of the logs.", "MONITORING_REFERENCE"),
    Setting("labels", None, "Late ground truth: Parquet with request_id, label, optional labeled_at.", "MONITORING_LABELS"),
    Setting("db_url", None, "SQLAlchemy URL of the product's own database; default a SQLite file in data_dir.", "MONITORING_DB_URL"),
    Setting("data_dir", ".data", "Local folder for the default SQLite database, the rollup store (rollups/), caches (cache/) and DuckDB's spill files (spill/<pid>; a killed process's folder is removed when the next workspace opens).", "MONITORING_DATA_DIR"),
    Setting("exact_quantile_max_rows", 2_000_000, "Windows up to this many rows get exact percentiles; larger ones use a log-histogram within ±0.5%.",
            check=at_least(1)),
    Setting("duckdb_memory_limit", DUCKDB_MEMORY, "DuckDB memory limit; larger work spills to a temporary folder.",
            check=matches(_MEMORY, "1GB")),
    Setting("duckdb_threads", 0, "DuckDB worker threads (0: one per core).", check=between(0, 1024)),
    Setting("refresh_seconds", 30, "The app looks for new, changed or removed log files at most this often (seconds).",
            "MONITORING_REFRESH_SECONDS", check=between(1, 86_400)),
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
_SLO_CHECKS: dict[str, Check] = {
    "p95_latency_ms": above(0), "error_rate": lambda v: None if 0 < v < 1 else "must be between 0 and 1 (exclusive)",
    "spike_factor": above(1), "gap_min_expected_requests": above(0), "gap_min_minutes": at_least(1),
    "accuracy_floor": between(0, 1),
}
register_section("slo", tuple(Setting(f.name, f.default, SLO_HELP[f.name], check=_SLO_CHECKS[f.name])
                              for f in fields(SLO)))
def _class_names(v: list) -> str | None:
    if not all(isinstance(c, str) and c.strip() for c in v):
        return "must be a list of class names (text)"
    return None if len(set(v)) == len(v) else "must not name a class twice"


register_section("columns", tuple(Setting(c, None, f"Your column holding {c}.") for c in CANONICAL_COLUMNS) + (
    Setting("features", [], "Explicit list of feature columns (default: every other column)."),
    Setting("timestamp_unit", None, 'Unit of a numeric timestamp column: "s", "ms", "us" or "ns".',
            check=one_of("s", "ms", "us", "ns")),
    # Per-class probabilities of a multiclass model (monitoring/logs/columns.py resolves them).
    Setting("class_scores", None, 'Per-class probabilities: a pattern with one * standing for the class '
            '("score_*"), or a struct column (classes: its fields) or list column (classes: `classes`).',
            check=lambda v: None if v.strip() and v.count("*") <= 1 else "must name a column or hold one *"),
    Setting("classes", [], "Class of each position of a list `class_scores` column (or the classes to keep, "
            "in order, of a pattern or struct).", check=_class_names),
))


@dataclass(frozen=True)
class Config:
    logs: str = "sample_logs/"
    reference: str | None = None
    labels: str | None = None
    db_url: str | None = None
    data_dir: str = ".data"
    exact_quantile_max_rows: int = 2_000_000
    duckdb_memory_limit: str = DUCKDB_MEMORY
    duckdb_threads: int = 0
    refresh_seconds: int = 30
    # canonical column -> column name in the user's logs
    columns: dict[str, str] = field(default_factory=dict)
    # explicit feature list; empty means every non-canonical column
    features: tuple[str, ...] = ()
    # unit of a numeric timestamp column: "s", "ms", "us" or "ns" ([columns] timestamp_unit)
    timestamp_unit: str | None = None
    slo: SLO = field(default_factory=SLO)
    # sections owned by other modules (drift, alerts, ...), validated at load by their owner
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    source_path: str | None = None
    # settings that were kept but deserve a look (e.g. a table no module knows)
    warnings: tuple[str, ...] = ()

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


def _read(cfg_path: Path | None) -> dict[str, Any]:
    if cfg_path is None:
        return {}
    if not cfg_path.is_file():
        raise ConfigError(f"config file not found: {cfg_path}")
    try:
        return tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{cfg_path}: not valid TOML ({exc})") from exc
    except OSError as exc:
        raise ConfigError(f"{cfg_path}: cannot be read ({exc.strerror})") from exc


def load_config(path: str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Return the effective `Config`; raises `ConfigError` with a one-line reason."""
    cfg_path = _config_path(path)
    data = _read(cfg_path)
    by_key = {s.key: s for s in SETTINGS}
    values: dict[str, Any] = {s.key: s.default for s in SETTINGS}
    # `labels` names a file and `[labels]` maps its columns: TOML holds one of them, and the
    # table (whose `path` names the file) belongs to its section.
    tables = {k: v for k, v in data.items() if isinstance(v, dict) and (k not in by_key or k in SECTION_OWNERS)}
    scalars = {k: v for k, v in data.items() if k not in tables}
    for k in scalars:
        if k in SECTION_OWNERS or k in SECTIONS:
            raise ConfigError(f"[{k}] must be a table, got {scalars[k]!r}")
    values |= validate_settings(f"{cfg_path.name}:" if cfg_path else "", scalars, SETTINGS)
    for s in SETTINGS:
        if s.env and os.environ.get(s.env):
            values[s.key] = _checked(f"{s.env} (setting {s.key})", os.environ[s.env], s, from_text=True)
    for key, value in (overrides or {}).items():
        if value is not None:
            if key not in by_key:
                raise ConfigError(f"unknown setting {key!r}{did_you_mean(key, by_key)}")
            values[key] = _checked(f"setting {key}", value, by_key[key], from_text=isinstance(value, str))

    warnings, checked = [], {}
    for name, table in tables.items():
        section = section_for(name)
        if section is None:
            known = set(SECTION_OWNERS) | set(SECTIONS)
            warnings.append(f"monitoring.toml: no setting reads the table [{name}]{did_you_mean(name, known)}; "
                            f"it is ignored (known tables: {', '.join(sorted(known))})")
            continue
        checked[name] = section.validate(table)

    columns = checked.get("columns", {})
    features = columns.get("features", ())
    timestamp_unit = columns.get("timestamp_unit")
    if timestamp_unit is not None and timestamp_unit not in ("s", "ms", "us", "ns"):
        raise ConfigError(f'[columns] timestamp_unit must be "s", "ms", "us" or "ns", got {timestamp_unit!r}')
    mapping = {k: v for k, v in columns.items() if k not in ("features", "timestamp_unit")}
    for k, v in mapping.items():
        if not v and k != "classes":
            raise ConfigError(f"[columns] {k} must name a column, got {v!r}")
    if mapping.get("classes") and not mapping.get("class_scores"):
        raise ConfigError("[columns] classes needs class_scores (the column or pattern holding "
                          "the per-class probabilities)")
    if not all(isinstance(f, str) and f for f in features):
        raise ConfigError("[columns] features must be a list of column names")

    slo = replace(SLO(), **checked.get("slo", {}))

    sections = {k: v for k, v in tables.items() if k not in {"columns", "slo"}}
    return Config(
        **values,
        columns=mapping,
        features=tuple(features),
        timestamp_unit=timestamp_unit,
        slo=slo,
        sections=sections,
        source_path=str(cfg_path) if cfg_path else None,
        warnings=tuple(warnings),
    )

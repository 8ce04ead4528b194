"""Drift settings: the [drift] table of monitoring.toml, every key with its default and help.

    [drift]
    reference_start = "2026-10-24"        # a window of the logs as reference (UTC)
    reference_end = "2026-10-31"          # exclusive
    chunk = "auto"                        # drift over time: auto, hour, day, week, month, rows:N

    [drift.features.income]               # per feature (also "prediction" and "score")
    method = "psi"
    threshold = 0.2

`load(section)` validates the table and returns `DriftSettings`; mistakes raise
`ConfigError` naming the key. `save_reference_window()` writes the two window keys back,
keeping the rest of the file (comments included) as it was.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from ..auth.roles import Actor
from ..config import ConfigError, Setting, check_keys, register_section
from . import chunks, stattests

SETTINGS: tuple[Setting, ...] = (
    Setting("reference_start", None, "Start of the reference window of the logs (ISO 8601, UTC), used when no reference file is set.", kind=object),
    Setting("reference_end", None, "End of the reference window (exclusive).", kind=object),
    Setting("default_reference_days", 7, "With neither a reference file nor a window: the first N days of the logs (the first half when they span less than 2N days)."),
    Setting("numeric_method", "wasserstein", "Test deciding drift for numeric features."),
    Setting("categorical_method", "jensenshannon", "Test deciding drift for categorical features."),
    Setting("categorical_max_distinct", 20, "Integer features with at most this many distinct reference values are treated as categorical."),
    Setting("max_categories", 10_000, "Categorical features with more distinct reference values are skipped as identifier-like."),
    Setting("chunk", "auto", "Chunks of the current window for drift over time: auto (the finest unit, or row count, with enough rows in every chunk for a stable decision), hour, day, week, month or rows:N."),
    Setting("chunk_rows", 10_000, "Rows per chunk when chunk = \"rows\" (rows:N says it directly)."),
    Setting("exact_max_rows", 2_000_000, "Numeric features with up to this many values per side get exact Wasserstein and KS (a sorted merge); larger ones are computed from fine bins, within a bound stated with the score."),
)
FEATURE_KEYS = {
    "method": "Test deciding drift for this feature (a name in monitoring.drift.REGISTRY).",
    "threshold": "Drift threshold of that test (score at or above it is drift; for p-value tests, p below it).",
    "kind": "Force \"numeric\" or \"categorical\" instead of the kind found in the data.",
}
KINDS = ("numeric", "categorical")


@dataclass(frozen=True)
class FeatureSetting:
    method: str | None = None
    threshold: float | None = None
    kind: str | None = None


@dataclass(frozen=True)
class DriftSettings:
    reference_start: datetime | None = None
    reference_end: datetime | None = None
    default_reference_days: int = 7
    numeric_method: str = "wasserstein"
    categorical_method: str = "jensenshannon"
    categorical_max_distinct: int = 20
    max_categories: int = 10_000
    chunk: str = "auto"
    chunk_rows: int = 10_000
    exact_max_rows: int = 2_000_000
    features: tuple[tuple[str, FeatureSetting], ...] = ()

    def feature(self, name: str) -> FeatureSetting:
        return dict(self.features).get(name, FeatureSetting())

    def method_for(self, name: str, kind: str) -> tuple[str, float, str | None]:
        """(method, threshold, warning): the configured test when it fits the kind."""
        fs = self.feature(name)
        default = self.numeric_method if kind == "numeric" else self.categorical_method
        method, warning = fs.method or default, None
        if kind not in stattests.REGISTRY[method].kinds:
            warning = (f"[drift.features.{name}] method {method!r} does not apply to a {kind} "
                       f"feature; {default!r} is used")
            method = default
        threshold = fs.threshold if fs.threshold is not None and method == (fs.method or default) \
            else stattests.REGISTRY[method].threshold
        return method, threshold, warning


def load(section: dict[str, Any]) -> DriftSettings:
    """Validate the [drift] table of monitoring.toml; raises ConfigError naming the key."""
    from ..query.filters import parse_time

    data = dict(section or {})
    features_raw = data.pop("features", {}) or {}
    check_keys("[drift]", data, [s.key for s in SETTINGS] + ["features"])
    values: dict[str, Any] = {}
    for s in SETTINGS:
        v = data.get(s.key, s.default)
        if s.key in ("reference_start", "reference_end"):
            if v is not None:
                try:
                    v = parse_time(v.isoformat() if isinstance(v, datetime) else str(v))
                except ValueError as exc:
                    raise ConfigError(f"[drift] {s.key}: {exc}") from None
        elif isinstance(s.default, int):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"[drift] {s.key} must be a positive integer, got {v!r}")
        values[s.key] = v
    for key in ("numeric_method", "categorical_method"):
        _check_method(f"[drift] {key}", values[key], "numeric" if key.startswith("numeric") else "categorical")
    try:
        values["chunk"] = str(chunks.parse(values["chunk"], values["chunk_rows"]))
    except ValueError as exc:
        raise ConfigError(f"[drift] {exc}") from None
    if (values["reference_start"] is None) != (values["reference_end"] is None):
        raise ConfigError("[drift] reference_start and reference_end go together")
    if values["reference_start"] and values["reference_end"] <= values["reference_start"]:
        raise ConfigError("[drift] reference_end must be after reference_start")
    if not isinstance(features_raw, dict):
        raise ConfigError("[drift.features] must be a table of feature tables")
    features = []
    for name, table in sorted(features_raw.items()):
        where = f"[drift.features.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table (method, threshold, kind)")
        check_keys(where, table, FEATURE_KEYS)
        kind = table.get("kind")
        if kind is not None and kind not in KINDS:
            raise ConfigError(f"{where} kind must be 'numeric' or 'categorical', got {kind!r}")
        method = table.get("method")
        if method is not None:
            _check_method(f"{where} method", method, kind)
        threshold = table.get("threshold")
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not threshold > 0:
                raise ConfigError(f"{where} threshold must be a positive number, got {threshold!r}")
            threshold = float(threshold)
        features.append((name, FeatureSetting(method, threshold, kind)))
    return DriftSettings(**values, features=tuple(features))


# Declared once: monitoring.config validates [drift] with these keys and `load` when a file is read.
register_section("drift", SETTINGS + (
    Setting("features", {}, "Per-feature tables [drift.features.NAME]: " + ", ".join(FEATURE_KEYS) + "."),),
    check=load)


def _check_method(where: str, method: Any, kind: str | None) -> None:
    if not isinstance(method, str) or method not in stattests.REGISTRY:
        raise ConfigError(f"{where}: {method!r} is not a drift test "
                          f"(known: {', '.join(sorted(stattests.REGISTRY))})")
    if kind is not None and kind not in stattests.REGISTRY[method].kinds:
        raise ConfigError(f"{where}: {method!r} does not apply to {kind} features")


# -- remembering the reference window ----------------------------------------------------------

_TABLE = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(#.*)?$")


def save_reference_window(path: str | os.PathLike, start: datetime, end: datetime, *,
                          actor: Actor | None = None, audit_db: Engine | None = None) -> Path:
    """Set [drift] reference_start / reference_end in the TOML file at `path`.

    Only those two lines change (or are added); the rest of the file stays byte for byte.
    The result is parsed before it replaces the file, and written to a temporary file first
    then renamed, so a crash never leaves a half-written config. Returns the path.
    Needs the lead role; the change is audited on `audit_db` (default: the configured
    database).
    """
    from ..auth.guard import authorize

    who = authorize(audit_db, actor, "drift.reference", str(path))
    p = _write_reference_window(path, start, end)
    _audit_reference(audit_db, who, p, start, end)
    return p


def _audit_reference(audit_db, who, p: Path, start: datetime, end: datetime) -> None:
    from ..auth.audit import record_alone
    from ..config import load_config
    from ..database import create_engine

    engine = audit_db or create_engine(load_config().database_url)
    try:
        record_alone(engine, who, "drift.reference", str(p),
                     {"reference_start": _iso(start), "reference_end": _iso(end)})
    finally:
        if audit_db is None:
            engine.dispose()


def _write_reference_window(path: str | os.PathLike, start: datetime, end: datetime) -> Path:
    p = Path(path)
    text = p.read_text(encoding="utf-8") if p.exists() else ""
    if text:
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML, not changed ({exc})") from None
    values = {"reference_start": _iso(start), "reference_end": _iso(end)}
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    begin = next((i for i, line in enumerate(lines)
                  if (m := _TABLE.match(line)) and m.group(1) == "drift"), None)
    if begin is None:
        lines += ["\n" if lines else "", "[drift]\n"] + [f'{k} = "{v}"\n' for k, v in values.items()]
    else:
        end_i = next((i for i in range(begin + 1, len(lines)) if _TABLE.match(lines[i])), len(lines))
        todo = dict(values)
        for i in range(begin + 1, end_i):
            key = lines[i].split("=", 1)[0].strip()
            if "=" in lines[i] and key in todo:
                lines[i] = f'{key} = "{todo.pop(key)}"\n'
        lines[begin + 1:begin + 1] = [f'{k} = "{v}"\n' for k, v in todo.items()]
    new = "".join(lines)
    try:
        parsed = tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:  # e.g. a dotted drift.reference_start elsewhere
        raise ConfigError(f"{p}: could not add the reference window safely ({exc}); edit it by hand") from None
    load(parsed.get("drift", {}))
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent if str(p.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new)
        if p.exists():
            os.chmod(tmp, p.stat().st_mode & 0o777)
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")

"""The model registry: `models.toml`, one table per version, kept by the team in git.

    [versions.v2]
    model = "loan-risk"                    # optional
    trained = 2026-10-20                   # TOML dates (or ISO strings)
    training_data = "loans-2026-09 (snapshot 12)"
    code_commit = "9f3c2ab"
    owner = "risk-ml"
    deployed = 2026-10-28
    retired = 2026-11-30                   # optional
    notes = "..."                          # optional
    hyperparameters = { max_depth = 6 }    # optional table
    validation = { accuracy = 0.88, rows = 20000 }   # at least one metric; rows = validation set size

`load_registry(path)` returns the entries by version or raises `RegistryError` with one
sentence naming the file, the version and the field. Where the file lives: [compare]
registry in monitoring.toml (see compare.settings.registry_path).
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

REQUIRED = ("trained", "training_data", "code_commit", "owner", "deployed", "validation")
OPTIONAL = ("model", "retired", "notes", "hyperparameters")
DATES = ("trained", "deployed", "retired")


class RegistryError(ValueError):
    """models.toml cannot be used; the message says where and why in one sentence."""


class NoRegistry(RegistryError):
    """There is no models.toml at all: the registry is optional, nothing is wrong with it."""


@dataclass(frozen=True)
class ModelEntry:
    version: str
    trained: datetime
    training_data: str
    code_commit: str
    owner: str
    deployed: datetime
    validation: dict[str, float]
    model: str | None = None
    retired: datetime | None = None
    notes: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "model": self.model, "trained": self.trained,
                "training_data": self.training_data, "code_commit": self.code_commit, "owner": self.owner,
                "deployed": self.deployed, "retired": self.retired, "validation": dict(self.validation),
                "hyperparameters": dict(self.hyperparameters), "notes": self.notes}


def _date(path: str, version: str, key: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _date(path, version, key, datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            pass
    raise RegistryError(f"{path}: version {version!r}: {key} must be a date such as 2026-10-28, got {value!r}")


def _text(path: str, version: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RegistryError(f"{path}: version {version!r}: {key} must be non-empty text, got {value!r}")
    return value.strip()


def _entry(path: str, version: str, raw: Any) -> ModelEntry:
    if not isinstance(raw, dict):
        raise RegistryError(f"{path}: version {version!r} must be a table ([versions.{version}])")
    for key in raw:
        if key not in REQUIRED and key not in OPTIONAL:
            close = difflib.get_close_matches(key, [*REQUIRED, *OPTIONAL], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (fields: {', '.join([*REQUIRED, *OPTIONAL])})"
            raise RegistryError(f"{path}: version {version!r}: unknown field {key!r}{hint}")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise RegistryError(f"{path}: version {version!r}: missing field{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(missing)}")
    validation = raw["validation"]
    if not isinstance(validation, dict) or not validation:
        raise RegistryError(f"{path}: version {version!r}: validation must be a table of metrics, "
                            "e.g. validation = { accuracy = 0.91 }")
    for k, v in validation.items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise RegistryError(f"{path}: version {version!r}: validation.{k} must be a number, got {v!r}")
    acc = validation.get("accuracy")
    if acc is not None and not 0 <= acc <= 1:
        raise RegistryError(f"{path}: version {version!r}: validation.accuracy must be a fraction in [0, 1], got {acc}")
    rows = validation.get("rows")
    if rows is not None and (int(rows) != rows or rows <= 0):
        raise RegistryError(f"{path}: version {version!r}: validation.rows must be a positive whole number")
    hyper = raw.get("hyperparameters", {})
    if not isinstance(hyper, dict):
        raise RegistryError(f"{path}: version {version!r}: hyperparameters must be a table")
    notes = raw.get("notes", "")
    if not isinstance(notes, str):
        raise RegistryError(f"{path}: version {version!r}: notes must be text")
    model = raw.get("model")
    e = ModelEntry(
        version=version, trained=_date(path, version, "trained", raw["trained"]),
        training_data=_text(path, version, "training_data", raw["training_data"]),
        code_commit=_text(path, version, "code_commit", raw["code_commit"]),
        owner=_text(path, version, "owner", raw["owner"]),
        deployed=_date(path, version, "deployed", raw["deployed"]),
        validation={k: float(v) for k, v in validation.items()},
        model=_text(path, version, "model", model) if model is not None else None,
        retired=_date(path, version, "retired", raw["retired"]) if "retired" in raw else None,
        notes=notes.strip(), hyperparameters=dict(hyper))
    if e.deployed < e.trained:
        raise RegistryError(f"{path}: version {version!r}: deployed ({e.deployed:%Y-%m-%d}) is before "
                            f"trained ({e.trained:%Y-%m-%d})")
    if e.retired is not None and e.retired < e.deployed:
        raise RegistryError(f"{path}: version {version!r}: retired ({e.retired:%Y-%m-%d}) is before "
                            f"deployed ({e.deployed:%Y-%m-%d})")
    return e


def load_registry(path: str) -> dict[str, ModelEntry]:
    """Entries by version; RegistryError when the file is missing or wrong in any way."""
    p = Path(path)
    if not p.is_file():
        raise NoRegistry(f"no model registry at {path} (create models.toml: see docs/compare.md)")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: not valid TOML ({exc})") from exc
    extra = set(data) - {"versions"}
    if extra:
        raise RegistryError(f"{path}: unknown top-level key(s) {', '.join(sorted(extra))}: "
                            "versions go in [versions.NAME] tables")
    versions = data.get("versions", {})
    if not isinstance(versions, dict) or not versions:
        raise RegistryError(f"{path}: no [versions.NAME] table: the registry lists no version")
    return {str(v): _entry(path, str(v), raw) for v, raw in versions.items()}


def get_entry(entries: dict[str, ModelEntry], version: str, path: str = "models.toml") -> ModelEntry:
    if version not in entries:
        close = difflib.get_close_matches(version, list(entries), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (registered: {', '.join(entries)})"
        raise RegistryError(f"{path}: unknown version {version!r}{hint}")
    return entries[version]

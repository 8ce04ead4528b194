"""[quality] of monitoring.toml: every key with its default and a help line, validated.

    [quality]
    min_labels = 30            # fewer labels: the metric says so instead of a number
    positive_class = "1"       # binary and fairness: the positive outcome (default: guessed, stated)
    score = "auto"             # "positive" (P of the positive class) | "predicted" (confidence of the prediction)
    class_score_prefix = "score_"   # per-class probability columns, e.g. y_pred_proba_ for score_<class>
    task = "auto"              # or "classification" / "regression"
    chunk = "auto"             # day | week | month | rows:N | auto
    [quality.floors]           # retrain trigger: alert when a metric is surely below its floor
    accuracy = 0.8
    roc_auc = 0.7
    [quality.ceilings]         # ... or an error metric surely above its ceiling
    mae = 500.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Config, ConfigError, Setting, did_you_mean, register_section

HIGHER_BETTER = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc", "r2")
LOWER_BETTER = ("ece", "mae", "rmse", "mape")

HELP = {
    "min_labels": "a metric on fewer labelled rows is not computed (it says so)",
    "positive_class": "the positive outcome for binary metrics and fairness (default: 1/true, else stated)",
    "score": "what `score` holds: auto, positive (probability of the positive class) or predicted (confidence)",
    "class_score_prefix": "per-class probability columns are <prefix><class>",
    "task": "auto (a float prediction means regression), classification or regression",
    "chunk": "default chunking over time: auto, day, week, month or rows:N",
    "seed": "seed of every bootstrap and simulation (results are reproducible)",
    "floors": "table metric = floor: the retrain alert fires when a metric is surely below it",
    "ceilings": "table metric = ceiling for error metrics (mae, rmse, mape, ece)",
}


@dataclass(frozen=True)
class QualitySettings:
    min_labels: int = 30
    positive_class: str | None = None
    score: str = "auto"
    class_score_prefix: str = "score_"
    task: str = "auto"
    chunk: str = "auto"
    seed: int = 0
    floors: dict[str, float] = field(default_factory=dict)
    ceilings: dict[str, float] = field(default_factory=dict)


def load(cfg: Config) -> QualitySettings:
    return check(cfg.section("quality"))


def check(data: dict[str, Any]) -> QualitySettings:
    """The [quality] table validated; raises ConfigError naming the key."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in HELP:
            raise ConfigError(f"[quality] unknown key {key!r}{did_you_mean(key, HELP)}")
        values[key] = value
    s = QualitySettings()
    if "min_labels" in values and (not isinstance(values["min_labels"], int) or values["min_labels"] < 1):
        raise ConfigError("[quality] min_labels must be a whole number >= 1")
    if "seed" in values and (not isinstance(values["seed"], int) or not 0 <= values["seed"] < 2**32):
        raise ConfigError("[quality] seed must be a whole number from 0 to 2**32 - 1")
    if values.get("score", "auto") not in ("auto", "positive", "predicted"):
        raise ConfigError("[quality] score must be auto, positive or predicted")
    if values.get("task", "auto") not in ("auto", "classification", "regression"):
        raise ConfigError("[quality] task must be auto, classification or regression")
    if "positive_class" in values:
        values["positive_class"] = str(values["positive_class"])
    for key in ("class_score_prefix", "chunk"):
        if key in values and not isinstance(values[key], str):
            raise ConfigError(f"[quality] {key} must be text")
    if "chunk" in values:
        from .chunks import parse_chunk

        parse_chunk(values["chunk"])
    for key, allowed in (("floors", HIGHER_BETTER), ("ceilings", LOWER_BETTER)):
        table = values.get(key, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[quality.{key}] must be a table of metric = number")
        for m, v in table.items():
            if m not in allowed:
                raise ConfigError(f"[quality.{key}] unknown metric {m!r}{did_you_mean(m, allowed)}; "
                                  f"known: {', '.join(allowed)}")
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ConfigError(f"[quality.{key}] {m} must be a number")
        values[key] = {m: float(v) for m, v in table.items()}
    return QualitySettings(**{**s.__dict__, **values})


_DEFAULTS = QualitySettings()
register_section("quality", tuple(
    Setting(k, getattr(_DEFAULTS, k), HELP[k], kind=object) for k in HELP), check=check)

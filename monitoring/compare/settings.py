"""`[compare]` in monitoring.toml: the guarded metrics, their tolerated worsening, and the
level of the sequential test.

    [compare]
    p95_latency_ms = "+10%"     # a rise of more than 10% of the baseline's P95 is a breach
    error_rate = "+0.5pp"       # more than half a percentage point more failures
    accuracy = "-2pp"           # more than two points less accuracy (needs labels)
    p99_latency_ms = "+300ms"   # absolute tolerances take the metric's unit (ms, s, pp, or a number)
    score_mean = "off"          # "off" stops guarding a metric guarded by default
    alpha = 0.05                # family-wise false-alarm rate across the guarded metrics
    mixture_requests = 200      # the always-valid interval is tightest near 10x this many requests
    registry = "models.toml"    # the model registry, relative to monitoring.toml

The sign says which way is worse: "+" a rise, "-" a fall.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config, ConfigError, Setting, register_section

# metric -> (unit kind, help). Unit kinds: latency (ms), rate (a fraction), number.
GUARDABLE = {
    "p50_latency_ms": ("latency", "median latency of successful requests"),
    "p95_latency_ms": ("latency", "95th percentile latency of successful requests"),
    "p99_latency_ms": ("latency", "99th percentile latency of successful requests"),
    "error_rate": ("rate", "failed / all requests"),
    "accuracy": ("rate", "correct / labelled predictions"),
    "score_mean": ("number", "mean score of successful requests"),
}
DEFAULT_GUARDED = {"p95_latency_ms": "+10%", "error_rate": "+0.5pp", "accuracy": "-2pp"}
SETTINGS_HELP = {
    "alpha": (0.05, "family-wise false-alarm rate across the guarded metrics, at every look"),
    "mixture_requests": (200, "scale of the always-valid mixture: tightest near 10x this many requests"),
    "registry": ("", "path of models.toml (default: next to monitoring.toml, else ./models.toml)"),
}
_TOL = re.compile(r"^\s*([+-])\s*(\d+(?:\.\d*)?|\.\d+)\s*(%|pp|ms|s)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Tolerance:
    metric: str
    direction: int          # +1: a rise is worse; -1: a fall is worse
    relative: bool          # amount is a fraction of the baseline's value
    amount: float           # >= 0; a fraction when relative, else the metric's unit
    text: str

    def absolute(self, baseline: float) -> float:
        return self.amount * abs(baseline) if self.relative else self.amount


@dataclass(frozen=True)
class CompareSettings:
    guarded: dict[str, Tolerance] = field(default_factory=dict)
    alpha: float = 0.05
    mixture_requests: float = 200.0
    registry: str | None = None


def parse_tolerance(metric: str, value: Any) -> Tolerance:
    """'+10%', '+0.5pp', '-2pp', '+300ms', '+0.2s' or '+0.02' -> Tolerance; ConfigError else."""
    kind = GUARDABLE[metric][0]
    m = _TOL.match(str(value)) if isinstance(value, str) else None
    if m is None:
        raise ConfigError(f"[compare] {metric} = {value!r}: expected a signed tolerance such as "
                          f"\"+10%\" (relative), \"+0.5pp\", \"+200ms\" or \"off\"")
    sign, number, unit = m.group(1), float(m.group(2)), (m.group(3) or "").lower()
    direction = 1 if sign == "+" else -1
    if unit == "%":
        if direction < 0 and number >= 100:
            raise ConfigError(f"[compare] {metric} = {value!r}: a fall of 100% or more cannot be tolerated")
        return Tolerance(metric, direction, True, number / 100, value.strip())
    if unit == "pp":
        if kind != "rate":
            raise ConfigError(f"[compare] {metric} = {value!r}: percentage points only apply to rates "
                              "(error_rate, accuracy)")
        return Tolerance(metric, direction, False, number / 100, value.strip())
    if unit in ("ms", "s"):
        if kind != "latency":
            raise ConfigError(f"[compare] {metric} = {value!r}: ms and s only apply to latencies")
        return Tolerance(metric, direction, False, number * (1000 if unit == "s" else 1), value.strip())
    if kind == "rate" and number > 1:
        raise ConfigError(f"[compare] {metric} = {value!r}: a rate tolerance without unit is a fraction "
                          "(write \"+0.5pp\" for half a point)")
    return Tolerance(metric, direction, False, number, value.strip())


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, [*GUARDABLE, *SETTINGS_HELP], n=1, cutoff=0.6)
    known = ", ".join([*GUARDABLE, *SETTINGS_HELP])
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {known})"


def load_compare_settings(cfg: Config) -> CompareSettings:
    """The effective [compare] settings; ConfigError with one sentence on any bad key."""
    return _parse(cfg.section("compare"), cfg)


def _parse(section: dict[str, Any], cfg: Config | None) -> CompareSettings:
    guarded_raw: dict[str, Any] = dict(DEFAULT_GUARDED)
    values: dict[str, Any] = {k: v[0] for k, v in SETTINGS_HELP.items()}
    for key, value in section.items():
        if key in GUARDABLE:
            guarded_raw[key] = value
        elif key in SETTINGS_HELP:
            values[key] = value
        else:
            raise ConfigError(f"[compare] unknown key {key!r}{_suggest(key)}")
    guarded = {}
    for metric, value in guarded_raw.items():
        if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
            continue
        guarded[metric] = parse_tolerance(metric, value)
    alpha = values["alpha"]
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
        raise ConfigError(f"[compare] alpha must be a number between 0 and 0.5, got {alpha!r}")
    n_ref = values["mixture_requests"]
    if isinstance(n_ref, bool) or not isinstance(n_ref, int | float) or n_ref <= 0:
        raise ConfigError(f"[compare] mixture_requests must be a positive number, got {n_ref!r}")
    registry = values["registry"]
    if not isinstance(registry, str):
        raise ConfigError(f"[compare] registry must be a path, got {registry!r}")
    return CompareSettings(guarded=guarded, alpha=float(alpha), mixture_requests=float(n_ref),
                           registry=registry_path(cfg, registry) if cfg is not None else registry or None)


def registry_path(cfg: Config, configured: str = "") -> str:
    """Where models.toml is: [compare] registry (relative to monitoring.toml), else
    models.toml next to monitoring.toml, else ./models.toml."""
    base = Path(cfg.source_path).parent if cfg.source_path else Path(".")
    if configured:
        p = Path(configured)
        return str(p if p.is_absolute() else base / p)
    return str(base / "models.toml")


# Declared to monitoring.config, which then checks [compare] when a file is read (once this
# module is imported: monitoring.config's SECTION_OWNERS names the owner of each table).
register_section("compare", tuple(
    [Setting(k, DEFAULT_GUARDED.get(k, "off"), f"tolerated worsening of the {h[1]}", kind=object)
     for k, h in GUARDABLE.items()]
    + [Setting(k, d, h, kind=object) for k, (d, h) in SETTINGS_HELP.items()]),
    check=lambda data: _parse(data, None))

"""Drift: input and output distributions of the logs against a reference, over time.

    from monitoring.drift import analyze, load_settings, resolve_reference
    settings = load_settings(ws.config.section("drift"))
    ref = resolve_reference(ws.config, settings, ws.extent)
    result = analyze(ws, ref, Filters(start=..., end=...), settings)
    for f in result.ranked(): print(f.name, f.method, f.score, f.drifted)

Tests live in `stattests` (one registered function each), the DuckDB work in `engine`,
data-quality figures in `quality`, the reference and current windows in `windows`, the
[drift] settings in `settings`, figures in `charts` and the CLI report in `report`.
See docs/drift.md for the methods and thresholds.
"""

from .engine import (
    Column,
    DriftResult,
    FeatureDrift,
    OverTime,
    Side,
    compare,
    distribution,
    over_time,
)
from .quality import Quality
from .settings import DriftSettings, FeatureSetting, save_reference_window
from .settings import load as load_settings
from .stattests import REGISTRY, Merge, Score, StatTest, Summary, stattest
from .windows import (
    Reference,
    analyze,
    analyze_over_time,
    default_current,
    default_window,
    open_reference,
    plan,
    resolve_reference,
)

__all__ = [
    "Column",
    "DriftResult",
    "DriftSettings",
    "FeatureDrift",
    "FeatureSetting",
    "Merge",
    "OverTime",
    "Quality",
    "REGISTRY",
    "Reference",
    "Score",
    "Side",
    "StatTest",
    "Summary",
    "analyze",
    "analyze_over_time",
    "compare",
    "default_current",
    "default_window",
    "distribution",
    "load_settings",
    "open_reference",
    "over_time",
    "plan",
    "resolve_reference",
    "save_reference_window",
    "stattest",
]

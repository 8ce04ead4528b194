"""Drift: input and output distributions of the logs against a reference, over time.

    from monitoring.drift import analyze, load_settings, resolve_reference
    settings = load_settings(ws.config.section("drift"))
    ref = resolve_reference(ws.config, settings, ws.extent)
    result = analyze(ws, ref, Filters(start=..., end=...), settings)
    for f in result.ranked(): print(f.name, f.method, f.score, f.drifted)

Tests live in `stattests` (one registered function each), chance bands in `bands`, the
DuckDB work in `engine` (with `sql`, `merges`, `fine` and `counts`), chunks in `chunks`
and drift over time in `overtime`, data-quality figures in `quality`, the reference and
current windows in `windows` (per-class probabilities from `classes`, late labels joined
from the labels file by `labels`), the [drift] settings in `settings`, figures in
`charts` and the CLI report in `report`.
See docs/drift.md for the methods and thresholds.
"""

from .bands import Bands, NullModel
from .chunks import ChunkSpec
from .chunks import parse as parse_chunk
from .distribution import distribution
from .engine import Column, DriftResult, FeatureDrift, Side, compare
from .overtime import OverTime, over_time
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
    distribution_of,
    open_reference,
    plan,
    resolve_reference,
)

__all__ = [
    "Bands",
    "ChunkSpec",
    "Column",
    "DriftResult",
    "DriftSettings",
    "FeatureDrift",
    "FeatureSetting",
    "Merge",
    "NullModel",
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
    "distribution_of",
    "load_settings",
    "open_reference",
    "over_time",
    "parse_chunk",
    "plan",
    "resolve_reference",
    "save_reference_window",
    "stattest",
]

"""What a drift comparison returns: one `FeatureDrift` per column and a `DriftResult` holding
them with the model outputs, the joint distribution and the bands that judged them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from . import stattests
from .bands import Bands
from .quality import Quality
from .stattests import Score, Summary


@dataclass(frozen=True)
class FeatureDrift:
    """The drift of one column; `score` is the configured test's, None when not computed."""

    name: str
    role: str
    kind: str
    method: str
    threshold: float
    score: float | None
    p_value: float | None
    drifted: bool | None
    status: str  # "drift" | "warn" | "ok" | "no data" | "skipped"
    n_reference: int
    n_current: int
    rows_reference: int
    rows_current: int
    scores: dict[str, Score] = field(default_factory=dict)
    reference: Summary | None = None
    current: Summary | None = None
    labels: tuple[str, ...] = ()  # one per bin of the summaries
    edges: tuple[float, ...] = ()  # numeric: interior bin edges (reference deciles)
    quality: Quality | None = None
    problem: str | None = None
    error: float | None = None  # bound on |score - exact score| when approximate, else None
    band: float | None = None  # chance band at n_current (None: the test needs none)
    cls: str | None = None  # role class_score: the class whose probability this is

    @property
    def accuracy(self) -> str:
        """"exact", or the bound of an approximate score, for display next to the method."""
        if self.error is None:
            return "exact"
        return f"approximate (fine bins): within ±{self.error:.2g} of exact"

    @property
    def null_share_current(self) -> float | None:
        return self.quality.null_share_current if self.quality else None

    @property
    def null_share_reference(self) -> float | None:
        return self.quality.null_share_reference if self.quality else None

    @property
    def ratio(self) -> float:
        """Score over threshold (p-value tests: threshold over p), for sorting; -1 if none."""
        if self.score is None:
            return -1.0
        if stattests.REGISTRY[self.method].decide_on == "p_value":
            p = self.p_value if self.p_value is not None else 1.0
            return self.threshold / max(p, 1e-300)
        return self.score / self.threshold if self.threshold else math.inf


@dataclass(frozen=True)
class DriftResult:
    reference: str
    current: str
    rows_reference: int
    rows_current: int
    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None = None
    score: FeatureDrift | None = None
    label: FeatureDrift | None = None  # ground truth (logs or labels file): label drift, beside prediction drift
    classes: tuple[FeatureDrift, ...] = ()  # per-class probabilities (`classes`), in class order
    confidence: FeatureDrift | None = None  # their row-wise maximum: the predicted class's probability
    multivariate: FeatureDrift | None = None  # the numeric features' joint distribution (`multivariate`)
    message: str | None = None  # why nothing was compared (an empty side), else None
    warnings: tuple[str, ...] = ()
    bands: Bands | None = field(default=None, compare=False, repr=False)
    mv_model: Any = field(default=None, compare=False, repr=False)  # multivariate.Model, for the chunks
    origin: str = "raw"  # "rollups" when counted from the rollup store's bins (`fromstore`)

    @property
    def all(self) -> tuple[FeatureDrift, ...]:
        """The model outputs first (prediction, label, score, confidence, per-class
        probabilities), then the features (the joint distribution, `multivariate`, is
        apart: it is no column)."""
        return self.outputs + self.features

    @property
    def outputs(self) -> tuple[FeatureDrift, ...]:
        """Prediction, label, score, confidence (max probability) and per-class probabilities."""
        return tuple(f for f in (self.prediction, self.label, self.score, self.confidence)
                     if f is not None) + self.classes

    def get(self, name: str, role: str | None = None) -> FeatureDrift:
        for f in self.all:
            if f.name == name and (role is None or f.role == role):
                return f
        raise KeyError(name)

    def ranked(self) -> list[FeatureDrift]:
        """Features by decreasing score relative to threshold (uncomputed last), then name."""
        return sorted(self.features, key=lambda f: (-f.ratio, f.name))

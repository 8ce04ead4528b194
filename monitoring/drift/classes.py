"""Per-class probabilities of a multiclass model, tested beside the prediction.

`[columns] class_scores` declares them (`monitoring.logs.columns.class_scores` resolves the
declaration against the logs' features: `score_*` columns, the fields of a struct, or the
positions of a list column named by `classes`). Each class's probability is a model output
of role `ROLE`, tested like a numeric column; their row-wise maximum, the probability of
the predicted class (the model's confidence), is one more output of role `MAX_ROLE`.

    per_class = of(source, cfg)         # [ClassScore(cls, column), ...] (two or more, or none)
    max_sql([exprs...])                 # SQL of the maximum, NULL when a class is missing
"""

from __future__ import annotations

from ..config import Config
from ..logs.columns import ClassScore, class_scores
from ..logs.source import LogSource

ROLE = "class_score"
MAX_ROLE = "max_probability"
MAX_NAME = "max_probability"


def of(source: LogSource, cfg: Config) -> list[ClassScore]:
    """The declared per-class probability columns among the source's features."""
    return class_scores(cfg, [f.name for f in source.features])[0]


def max_name(source: LogSource) -> str:
    """The confidence column's name: `max_probability`, unless a feature has it."""
    name = MAX_NAME
    while source.feature(name) is not None:
        name += "_"
    return name


def max_sql(exprs: list[str]) -> str:
    """The largest of the class probabilities, NULL when any of them is NULL (a row with a
    class missing has no known confidence)."""
    values = [f"TRY_CAST({e} AS DOUBLE)" for e in exprs]
    missing = " OR ".join(f"{v} IS NULL" for v in values)
    return f"CASE WHEN {missing} THEN NULL ELSE greatest({', '.join(values)}) END"

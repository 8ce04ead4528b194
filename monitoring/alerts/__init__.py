"""Alert rules evaluated over the log history, their stored episodes, and webhooks."""

from . import rollback  # noqa: F401  (registers the rollback rule)
from .engine import Episode, build_context, evaluate, rule_params
from .rules import RULES, Rule, Signal, rule

__all__ = ["RULES", "Episode", "Rule", "Signal", "build_context", "evaluate", "rule", "rule_params"]

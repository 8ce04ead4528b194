"""Alert rules evaluated over the log history, their stored episodes, and webhooks."""

from .engine import Episode, build_context, evaluate, rule_params
from .rules import RULES, Rule, Signal, rule
from . import rollback  # noqa: E402,F401,I001  (registers the rollback rule)

__all__ = ["RULES", "Episode", "Rule", "Signal", "build_context", "evaluate", "rule", "rule_params"]

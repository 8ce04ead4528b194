"""Alert rules evaluated over the log history (kept on disk: evalstore), their stored episodes,
and webhooks."""

# Rules beyond rules.py register themselves when imported: the rollback signal and the
# quality rules (retrain triggers). The package imports them, so RULES is always complete.
from . import quality_rules, rollback  # noqa: F401
from .engine import Episode, build_context, evaluate, rule_params
from .evalstore import evaluate_kept
from .rules import RULES, Rule, Signal, rule

__all__ = ["RULES", "Episode", "Rule", "Signal", "build_context", "evaluate", "evaluate_kept", "rule", "rule_params"]

"""The [alerts] table of monitoring.toml: every key with its default and help, declared once.

    [alerts]
    webhooks = ["https://hooks.example.com/modelwatch"]
    merge_minutes = 30
    [alerts.rules.latency_p95]      # one table per rule (see monitoring.alerts.rules)
    window_minutes = 30

`monitoring.config` validates the table with these keys when the file is loaded, then runs
`check` (webhook URLs, rule names and their parameters), so a mistake is one sentence at
start-up, never a traceback on the Alerts page.
"""

from __future__ import annotations

from typing import Any

from ..config import Setting, at_least, register_section
from .engine import DEFAULT_MERGE_MINUTES, rule_params
from .webhook import settings as webhook_settings

SETTINGS: tuple[Setting, ...] = (
    Setting("webhooks", [], "URLs (http:// or https://) that receive firing alerts as a JSON POST.", kind=object),
    Setting("webhook_timeout_seconds", 5.0, "Seconds to wait for a webhook to answer.", check=lambda v: None if v > 0 else "must be greater than 0"),
    Setting("webhook_retries", 3, "Retries of a failed webhook delivery (exponential backoff).", check=at_least(0)),
    Setting("merge_minutes", float(DEFAULT_MERGE_MINUTES), "Quiet spells this short inside an episode do not resolve it.", check=at_least(0)),
    Setting("rules", {}, "Per-rule tables [alerts.rules.NAME]: enabled and the rule's parameters."),
)


def check(section: dict[str, Any]) -> None:
    """Everything beyond the keys' types: URLs, rule names and rule parameters."""
    webhook_settings(section)
    rule_params(section)


register_section("alerts", SETTINGS, check=check)

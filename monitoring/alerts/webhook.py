"""Deliver firing alerts as a JSON POST to the URLs in `[alerts] webhooks`.

Each URL gets the whole payload once; a failed attempt (connection error, timeout, 5xx or
429) is retried with exponential backoff, a 4xx other than 429 is not (the receiver said no).

    [alerts]
    webhooks = ["https://hooks.example.com/modelwatch"]
    webhook_timeout_seconds = 5
    webhook_retries = 3
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from ..config import ConfigError


@dataclass(frozen=True)
class Delivery:
    url: str
    ok: bool
    attempts: int
    status: int | None
    error: str | None


def settings(section: dict[str, Any]) -> tuple[list[str], float, int]:
    urls = section.get("webhooks", [])
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ConfigError("[alerts] webhooks must be a list of URLs")
    for u in urls:
        try:
            parts = urllib.parse.urlsplit(u)
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        if parts is None or parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in u):
            raise ConfigError(f"[alerts] webhook URL must be http:// or https:// with a host: {u!r}")
    timeout, retries = section.get("webhook_timeout_seconds", 5), section.get("webhook_retries", 3)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ConfigError(f"[alerts] webhook_timeout_seconds must be a number > 0, got {timeout!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"[alerts] webhook_retries must be a whole number >= 0, got {retries!r}")
    return urls, float(timeout), retries


def post(url: str, payload: dict[str, Any], *, timeout: float = 5.0, retries: int = 3,
         backoff: float = 0.5) -> Delivery:
    try:
        body = json.dumps(payload, default=str).encode()
    except (TypeError, ValueError) as exc:
        return Delivery(url, False, 0, None, f"the alerts could not be written as JSON: {exc}")
    attempts, status, error = 0, None, None
    for attempt in range(retries + 1):
        attempts = attempt + 1
        try:
            req = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": "modelwatch-alerts"})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status = resp.status
                return Delivery(url, True, attempts, status, None)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                break
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            status, error = None, str(getattr(exc, "reason", exc))
        except Exception as exc:  # a bad URL or answer must never hide the alerts
            return Delivery(url, False, attempts, None, f"{type(exc).__name__}: {exc}"[:200])
        if attempt < retries:
            time.sleep(backoff * 2 ** attempt)
    return Delivery(url, False, attempts, status, error)


def deliver(section: dict[str, Any], payload: dict[str, Any], *, backoff: float = 0.5) -> list[Delivery]:
    """One Delivery per URL; never raises: a failure is reported in its Delivery, so the
    caller shows the firing alerts whatever happened to the webhooks."""
    try:
        urls, timeout, retries = settings(section)
    except ConfigError as exc:
        return [Delivery("(configuration)", False, 0, None, str(exc))]
    return [post(u, payload, timeout=timeout, retries=retries, backoff=backoff) for u in urls]

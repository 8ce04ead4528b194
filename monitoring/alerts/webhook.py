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
        if not u.startswith(("http://", "https://")):
            raise ConfigError(f"[alerts] webhook URL must start with http:// or https://: {u!r}")
    timeout = float(section.get("webhook_timeout_seconds", 5))
    retries = int(section.get("webhook_retries", 3))
    if timeout <= 0 or retries < 0:
        raise ConfigError("[alerts] webhook_timeout_seconds must be > 0 and webhook_retries >= 0")
    return urls, timeout, retries


def post(url: str, payload: dict[str, Any], *, timeout: float = 5.0, retries: int = 3,
         backoff: float = 0.5) -> Delivery:
    body = json.dumps(payload, default=str).encode()
    attempts, status, error = 0, None, None
    for attempt in range(retries + 1):
        attempts = attempt + 1
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "modelwatch-alerts"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status = resp.status
                return Delivery(url, True, attempts, status, None)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                break
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            status, error = None, str(getattr(exc, "reason", exc))
        if attempt < retries:
            time.sleep(backoff * 2 ** attempt)
    return Delivery(url, False, attempts, status, error)


def deliver(section: dict[str, Any], payload: dict[str, Any]) -> list[Delivery]:
    urls, timeout, retries = settings(section)
    return [post(u, payload, timeout=timeout, retries=retries) for u in urls]

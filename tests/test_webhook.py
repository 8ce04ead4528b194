"""Webhook failures never hide firing alerts: a table of receivers that fail in every way, each
giving a failed Delivery with its reason (never an exception), and `alerts check` printing what
fires whatever the webhooks did. Receivers are real local HTTP servers (no mocks)."""

from __future__ import annotations

import http.server
import json
import socket
import threading

import pytest

from monitoring.alerts.webhook import deliver, post
from monitoring.cli.main import main


class _Receiver(http.server.BaseHTTPRequestHandler):
    behaviour = "ok"
    seen: list[dict] = []

    def do_POST(self):  # http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).seen.append(json.loads(body))
        if self.behaviour == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        code = {"ok": 200, "server_error": 500, "refused": 403, "slow_down": 429}[self.behaviour]
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    servers = []

    def start(behaviour: str) -> str:
        handler = type("H", (_Receiver,), {"behaviour": behaviour, "seen": []})
        server = http.server.HTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# behaviour -> (delivered, attempts with 2 retries, error contains)
RECEIVERS = [
    ("ok", True, 1, None),
    ("server_error", False, 3, "HTTP 500"),
    ("slow_down", False, 3, "HTTP 429"),
    ("refused", False, 1, "HTTP 403"),         # the receiver said no: not retried
    ("drop", False, 3, ""),                    # connection closed without an answer
]


@pytest.mark.parametrize(("behaviour", "ok", "attempts", "error"), RECEIVERS)
def test_each_receiver_gives_a_delivery_never_an_exception(receiver, behaviour, ok, attempts, error):
    url, handler = receiver(behaviour)
    d = post(url, {"alerts": [{"rule": "gap"}]}, timeout=5, retries=2, backoff=0.01)
    assert (d.ok, d.attempts) == (ok, attempts)
    assert len(handler.seen) == attempts and handler.seen[0] == {"alerts": [{"rule": "gap"}]}
    if error is not None:
        assert error in (d.error or "")


# Only loopback or unparsable addresses: tests send nothing off this machine (no DNS either).
BAD_URLS = {
    "nothing listens": lambda: f"http://127.0.0.1:{_closed_port()}/hook",
    "unparsable": lambda: "http://[::1/hook",          # ValueError inside urllib
    "not http": lambda: "http://127.0.0.1:notaport/hook",
}


@pytest.mark.parametrize("case", list(BAD_URLS))
def test_an_unreachable_or_malformed_url_is_a_failed_delivery(case):
    url = BAD_URLS[case]()
    d = post(url, {"alerts": []}, timeout=2, retries=1, backoff=0.01)
    assert d.ok is False and d.error


def test_a_payload_that_is_not_json_is_a_failed_delivery(receiver):
    url, handler = receiver("ok")
    class Unprintable:
        def __str__(self):
            raise TypeError("no text for this")

    d = post(url, {"bad": Unprintable()}, timeout=2, retries=0)
    assert d.ok is False and "JSON" in d.error and handler.seen == []


@pytest.mark.parametrize("section", [{"webhooks": ["ftp://x"]}, {"webhooks": 3}, {"webhooks": ["http://[::1/x"]},
                                     {"webhooks": ["http://x"], "webhook_retries": "many"}])
def test_bad_webhook_settings_are_a_failed_delivery_when_deliver_is_called(section):
    [d] = deliver(section, {"alerts": []})
    assert d.ok is False and "[alerts]" in d.error


# What these check is the error burst (the error-rate rule) and its deliveries; the drift rule
# re-scores the whole history, most of each run's seconds, and fires nothing by 5 November 15:00.
NO_DRIFT = "[alerts.rules.drift]\nenabled = false\n"


@pytest.mark.parametrize("behaviour", ["server_error", "refused", "drop", "closed_port"])
def test_alerts_check_prints_firing_alerts_whatever_the_webhooks_do(sample_logs, tmp_path, capsys, receiver,
                                                                    behaviour):
    if behaviour == "closed_port":
        url = f"http://127.0.0.1:{_closed_port()}/hook"
    else:
        url, _ = receiver(behaviour)
    cfg = tmp_path / "monitoring.toml"
    cfg.write_text(f'[alerts]\nwebhooks = ["{url}"]\nwebhook_retries = 1\nwebhook_timeout_seconds = 2\n' + NO_DRIFT)
    code = main(["alerts", "check", "--logs", str(sample_logs), "--config", str(cfg), "--db",
                 f"sqlite:///{tmp_path / 'a.sqlite'}", "--at", "2026-11-05T15:00Z"])
    out = capsys.readouterr().out
    assert code == 1
    assert "alert(s) firing" in out and "error_rate" in out          # the burst documented in sample_logs
    assert f"webhook {url}: failed after" in out


def test_alerts_check_json_carries_the_alerts_and_the_failed_deliveries(sample_logs, tmp_path, capsys, receiver):
    url, handler = receiver("server_error")
    cfg = tmp_path / "monitoring.toml"
    cfg.write_text(f'[alerts]\nwebhooks = ["{url}"]\nwebhook_retries = 0\n' + NO_DRIFT)
    code = main(["alerts", "check", "--logs", str(sample_logs), "--config", str(cfg), "--db",
                 f"sqlite:///{tmp_path / 'a.sqlite'}", "--at", "2026-11-05T15:00Z", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["count"] == len(report["firing"]) > 0
    assert report["webhooks"] == [{"url": url, "ok": False, "attempts": 1, "status": 500, "error": "HTTP 500"}]
    posted = [(a["rule"], a["subject"], a["message"]) for a in handler.seen[0]["alerts"]]
    assert posted == [(a["rule"], a["subject"], a["message"]) for a in report["firing"]]

"""Webhooks posted to a real local HTTP server: formats, filtering, retries, secrecy, never blocking."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runbook.model import Webhook
from runbook.notify import Notifier
from runbook.outbox import Outbox
from runbook.redact import Redactor


class Hook:
    """A webhook receiver: answers with the queued statuses (then 200) and records every body."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.release = threading.Event()
        self.release.set()
        self.arrived = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                hook.paths.append(self.path)
                hook.bodies.append(json.loads(body))
                hook.arrived.set()
                hook.release.wait(30)
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/s3cr3tT0ken"

    def __enter__(self) -> Hook:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    with Hook() as h:
        yield h


EVENT: dict[str, Any] = {
    "operation": "auto-rollback",
    "from_stage": "evaluations",
    "to_stage": "off",
    "reason": "error rate 12% > 5% <script>",
    "user": "ops@box",
    "at": dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC),
    "verdicts": [
        {"check": "error-rate", "verdict": "fail", "value": 0.12, "unit": "ratio", "explanation": "12% > 5%"},
        {"check": "backlog", "verdict": "pass", "value": 3, "unit": "jobs", "explanation": "3 <= 100"},
    ],
}


def notifier(*hooks: Webhook, attempts: int = 3) -> Notifier:
    return Notifier(hooks, Redactor(), runbook="pgboss", attempts=attempts, backoff=0.01, timeout=5)


def test_slack_message_has_text_and_blocks(hook: Hook) -> None:
    n = notifier(Webhook(url=hook.url, format="slack"))
    n.notify("auto-rollback", EVENT)
    assert n.flush(30)
    (body,) = hook.bodies
    assert (
        body["text"] == "🚨 pgboss: auto-rollback (evaluations → off): error rate 12% &gt; 5% &lt;script&gt;"
    )
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds == ["header", "section", "section", "context"]
    assert body["blocks"][1]["fields"][0]["text"] == "*Stage*\nevaluations → off"
    verdicts = body["blocks"][2]["text"]["text"]
    assert "❌ *error-rate* 12% — 12% &gt; 5%" in verdicts
    assert "✅ *backlog* 3 jobs — 3 &lt;= 100" in verdicts
    assert "reason: error rate 12% &gt; 5% &lt;script&gt;" in body["blocks"][3]["elements"][0]["text"]
    assert [d.ok for d in n.deliveries] == [True]


def test_json_event_and_filtering(hook: Hook) -> None:
    n = notifier(
        Webhook(url=hook.url + "/all", format="json"),
        Webhook(url=hook.url + "/rollbacks", format="json", events=("rollback", "auto-rollback")),
    )
    n.notify("advance", {**EVENT, "operation": "advance", "reason": None})
    n.notify("auto-rollback", EVENT)
    assert n.flush(30)
    assert sorted(hook.paths) == sorted(
        [p + suffix for p in ["/services/T000/B000/s3cr3tT0ken"] for suffix in ("/all", "/all", "/rollbacks")]
    )
    rollbacks = [b for b, p in zip(hook.bodies, hook.paths, strict=True) if p.endswith("/rollbacks")]
    assert rollbacks == [
        {
            "type": "auto-rollback",
            "runbook": "pgboss",
            "stage": "off",
            "operation": "auto-rollback",
            "from_stage": "evaluations",
            "to_stage": "off",
            "verdicts": EVENT["verdicts"],
            "reason": "error rate 12% > 5% <script>",
            "outcome": None,
            "user": "ops@box",
            "ci_url": None,
            "at": "2026-11-29T10:00:00+00:00",
        }
    ]


def test_secrets_in_payload_are_redacted(hook: Hook) -> None:
    redactor = Redactor(["tok-abcdef"])
    n = Notifier([Webhook(url=hook.url)], redactor, runbook="pgboss")
    n.notify("rollback", {**EVENT, "reason": "db postgres://app:hunter22@db/x said no; token tok-abcdef"})
    assert n.flush(30)
    assert hook.bodies[0]["reason"] == "db postgres://app:***@db/x said no; token ***"
    assert redactor(f"posting to {hook.url}") == "posting to ***"  # the webhook URL is now a known secret


def test_retries_5xx_then_delivers(hook: Hook) -> None:
    hook.statuses = [503, 500]
    n = notifier(Webhook(url=hook.url, format="slack"), attempts=3)
    n.notify("rollback", EVENT)
    assert n.flush(30)
    assert len(hook.bodies) == 3
    assert [(d.ok, d.attempts) for d in n.deliveries] == [(True, 3)]


def test_4xx_is_not_retried_and_error_names_the_webhook_not_the_url(
    hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    hook.statuses = [404]
    n = notifier(Webhook(url="http://127.0.0.1:9/x"), Webhook(url=hook.url, format="slack"))
    with caplog.at_level(logging.WARNING, logger="runbook.notify"):
        n.notify("soak-satisfied", {"stage": "observe"})
        assert n.flush(30)
    (failure,) = [d for d in n.failures if d.webhook == "webhook #2 (slack)"]
    assert failure.attempts == 1
    assert (
        failure.error
        == "webhook #2 (slack): soak-satisfied not delivered after 1 attempt: HTTP 404 (not retried)"
    )
    assert "s3cr3tT0ken" not in caplog.text and "127.0.0.1" not in caplog.text
    assert "webhook #2 (slack)" in caplog.text


def test_unreachable_webhook_gives_up_after_bounded_attempts() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    n = notifier(Webhook(url=f"http://127.0.0.1:{port}/hook"), attempts=2)
    n.notify("rollback", EVENT)
    assert n.flush(60)
    (d,) = n.deliveries
    assert (d.ok, d.attempts, d.webhook) == (False, 2, "webhook #1 (json)")
    assert str(port) not in (d.error or "")


def test_notify_returns_while_the_webhook_still_hangs(hook: Hook) -> None:
    hook.release.clear()  # the receiver holds every request until released
    n = notifier(Webhook(url=hook.url))
    n.notify("auto-rollback", EVENT)  # returns although the POST cannot complete
    assert hook.arrived.wait(30)
    assert n.deliveries == []
    assert n.flush(0.05) is False  # a bounded wait, the delivery still hangs
    hook.release.set()
    assert n.close(30)
    assert [d.ok for d in n.deliveries] == [True]


def test_unknown_event_type_is_recorded_not_raised() -> None:
    n = notifier(Webhook(url="http://127.0.0.1:9/"))
    n.notify("advanced", {})  # a caller's bug must not break the rollback that called it
    (d,) = n.deliveries
    assert (d.webhook, d.ok, d.attempts) == ("notifier", False, 0)
    assert d.error is not None and d.error.startswith(
        "unknown notification event 'advanced'; expected one of"
    )


def test_secret_with_json_special_characters_is_masked(hook: Hook) -> None:
    secret = 'p@ss"w\\ord'
    n = Notifier([Webhook(url=hook.url)], Redactor([secret]), runbook="pgboss")
    n.notify("rollback", {**EVENT, "reason": f"token {secret} leaked"})
    assert n.flush(30)
    assert hook.bodies[0]["reason"] == "token *** leaked"


def test_store_event_form_with_nested_actor(hook: Hook) -> None:
    n = notifier(Webhook(url=hook.url + "/j"), Webhook(url=hook.url + "/s", format="slack"))
    stored = {
        **EVENT,
        "at": None,
        "user": None,
        "actor": {"user": "ci", "host": "h", "ci_url": "https://ci/1"},
    }
    n.notify("rollback", stored)
    assert n.flush(30)
    by_path = dict(zip(hook.paths, hook.bodies, strict=True))
    generic = by_path["/services/T000/B000/s3cr3tT0ken/j"]
    assert (generic["user"], generic["ci_url"]) == ("ci", "https://ci/1")
    assert generic["at"].endswith("+00:00")  # not recorded yet: sent with the time of sending
    context = by_path["/services/T000/B000/s3cr3tT0ken/s"]["blocks"][3]["elements"][0]["text"]
    assert "by ci · <https://ci/1|CI job>" in context


def test_close_keeps_what_is_undelivered_in_the_outbox_and_the_next_notifier_sends_it(
    hook: Hook, tmp_path: Path
) -> None:
    box = Outbox(tmp_path / ".runbook-outbox.jsonl")
    hook.statuses = [503, 503]
    first = Notifier(
        [Webhook(url=hook.url)], Redactor(), runbook="pgboss", attempts=2, backoff=0.01, outbox=box
    )
    first.notify("rollback", EVENT)
    assert first.close(30) is False
    (kept,) = first.kept
    assert (kept.webhook, kept.event_type, kept.error) == ("webhook #1 (json)", "rollback", "HTTP 503")
    (entry,) = box.entries("pgboss")
    assert (entry.event, entry.tries) == ("rollback", 1)
    assert "s3cr3tT0ken" not in box.path.read_text() and "127.0.0.1" not in box.path.read_text()
    assert box.entries("another-runbook") == []

    second = Notifier([Webhook(url=hook.url)], Redactor(), runbook="pgboss", outbox=box)
    assert second.close(30) is True  # delivers the outbox without any new notification
    assert [d.ok for d in second.deliveries] == [True]
    assert hook.bodies[-1] == hook.bodies[0] and len(hook.bodies) == 3  # the same message, its time kept
    assert not box.path.exists()


def test_outbox_forgets_removed_webhooks_and_final_refusals(hook: Hook, tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.jsonl")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    first = Notifier([Webhook(url=gone)], Redactor(), runbook="pgboss", attempts=1, outbox=box)
    first.notify("advance", EVENT)
    assert first.close(30) is False and len(box.entries()) == 1

    hook.statuses = [404]  # the webhook was replaced, and the new one refuses the message for good
    second = Notifier([Webhook(url=hook.url)], Redactor(), runbook="pgboss", outbox=box)
    second.notify("rollback", EVENT)
    assert second.close(30) is True
    assert [(d.event_type, d.ok, d.attempts) for d in second.deliveries] == [("rollback", False, 1)]
    assert not box.path.exists()

"""Tell people what the migration did: Slack-compatible or generic JSON webhooks, delivered in the background.

A failing webhook never delays a rollback: `Notifier.notify()` only queues the message and returns; one
daemon thread posts it (retried with backoff on connect errors, timeouts, 408, 429 and 5xx, bounded), and
`Notifier.close(timeout)` waits, at most `timeout` seconds (`CLOSE_WAIT` for a command), before the process
exits. What is still undelivered then (or gave up on a transient error) goes to the outbox
(`runbook.outbox`) when one is given, and the next notifier on that outbox sends it first.

Webhook URLs are secrets: they are added to the redactor, and every message about a delivery names the
webhook by position and format (`webhook #2 (slack)`), never by URL.

The payload given to `notify()` is an event of the state store (a dict) or any dict with these keys, all
optional: `stage`, `operation`, `from_stage`, `to_stage`, `verdicts` (list of `Measurement.to_json()`
dicts), `reason`, `outcome`, `at` (datetime or ISO string; default now), `user`, `host`, `ci_url` (or
these three under `actor`, as `NewEvent.to_json()` has them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import tenacity

from runbook.model import Webhook
from runbook.outbox import Outbox, OutboxEntry, new_entry, webhook_key
from runbook.redact import Redactor
from runbook.rendering import format_value
from runbook.units import count

CLOSE_WAIT = 5.0
"""Seconds a command waits, when it ends, for its notifications (retries included) before it keeps them in
the outbox."""

EVENT_TYPES = (
    "advance",
    "rollback",
    "auto-rollback",
    "verify-failed",
    "inconclusive",
    "soak-satisfied",
    "breach",  # a breach whose automatic rollback the rules refused (out of an irreversible stage)
)
"""What `notify()` accepts; `Webhook.events` filters on these names (empty = all)."""

_ICONS = {"pass": "✅", "fail": "❌", "error": "⚠️", "inconclusive": "⏸️"}
_HEADLINE_ICONS = {
    "advance": "⏩",
    "rollback": "⏪",
    "auto-rollback": "🚨",
    "verify-failed": "❌",
    "breach": "🛑",
}
_MAX_SECTION = 2900  # Slack rejects a section text over 3000 characters
log = logging.getLogger("runbook.notify")


@dataclass(frozen=True)
class Delivery:
    """The outcome of posting one event to one webhook (`error` is already redacted, without the URL)."""

    webhook: str
    """`webhook #N (format)`, 1-based as in `settings.notifications`."""
    event_type: str
    ok: bool
    attempts: int
    error: str | None = None


@dataclass(frozen=True)
class _Job:
    id: str
    index: int
    event_type: str
    body: bytes
    entry: OutboxEntry | None = None
    """Its outbox entry, when it came from the outbox."""


@dataclass(frozen=True)
class KeptNotice:
    """Notifications a command could not deliver before it exited, kept in the outbox (shown on stderr)."""

    kept: list[Delivery]
    outbox: str
    template: str = "notify_kept"

    def to_json(self) -> dict[str, Any]:
        return {"kept": [dataclasses.asdict(d) for d in self.kept], "outbox": self.outbox}


class _RetryableStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class _FinalStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status} (not retried)")
        self.status = status


_TRANSIENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.PoolTimeout,
    _RetryableStatus,
)


def _stage(payload: Mapping[str, Any]) -> str:
    return str(payload.get("stage") or payload.get("to_stage") or payload.get("from_stage") or "?")


def _at(payload: Mapping[str, Any]) -> str:
    at = payload.get("at")
    if isinstance(at, dt.datetime):
        return at.isoformat()
    return str(at) if at else dt.datetime.now(dt.UTC).isoformat()


def _actor(payload: Mapping[str, Any], key: str) -> Any:
    """Read `user`, `host` or `ci_url` at the top level or under `actor` (the state store's event form)."""
    actor = payload.get("actor")
    return payload.get(key) or (actor.get(key) if isinstance(actor, Mapping) else None)


def _value(v: Mapping[str, Any]) -> str:
    return format_value(v.get("value"), str(v.get("unit") or ""))


def json_message(event_type: str, payload: Mapping[str, Any], runbook: str) -> dict[str, Any]:
    """Build the generic JSON event: type, runbook, stage, operation, verdicts, reason, at (and the rest)."""
    return {
        "type": event_type,
        "runbook": runbook,
        "stage": _stage(payload),
        "operation": payload.get("operation") or event_type,
        "from_stage": payload.get("from_stage"),
        "to_stage": payload.get("to_stage"),
        "verdicts": list(payload.get("verdicts") or []),
        "reason": payload.get("reason"),
        "outcome": payload.get("outcome"),
        "user": _actor(payload, "user"),
        "ci_url": _actor(payload, "ci_url"),
        "at": _at(payload),
    }


def _mrkdwn(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(event_type: str, payload: Mapping[str, Any], runbook: str) -> dict[str, Any]:
    """Build a Slack-compatible message: `text` (notification fallback) and `blocks`."""
    src, dst = payload.get("from_stage"), payload.get("to_stage")
    move = f"{src} → {dst}" if src and dst and src != dst else _stage(payload)
    icon = _HEADLINE_ICONS.get(event_type, "ℹ️")
    text = f"{icon} {_mrkdwn(runbook)}: {event_type} ({_mrkdwn(move)})"
    if payload.get("reason"):
        text += f": {_mrkdwn(payload['reason'])}"
    verdicts = list(payload.get("verdicts") or [])
    lines = [
        f"{_ICONS.get(str(v.get('verdict')), '•')} *{_mrkdwn(v.get('check', '?'))}* {_mrkdwn(_value(v))}"
        f" — {_mrkdwn(v.get('explanation', ''))}"
        for v in verdicts
    ]
    summary = "\n".join(lines) or "_no checks ran_"
    if len(summary) > _MAX_SECTION:
        summary = summary[:_MAX_SECTION].rsplit("\n", 1)[0] + f"\n… ({len(lines)} checks in all)"
    fields = [
        {"type": "mrkdwn", "text": f"*Stage*\n{_mrkdwn(move)}"},
        {"type": "mrkdwn", "text": f"*Operation*\n{_mrkdwn(payload.get('operation') or event_type)}"},
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{icon} {runbook}: {event_type}"[:150]}},
        {"type": "section", "fields": fields},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Verdicts*\n{summary}"}},
    ]
    context = [f"reason: {_mrkdwn(payload['reason'])}"] if payload.get("reason") else []
    if _actor(payload, "user"):
        context.append(f"by {_mrkdwn(_actor(payload, 'user'))}")
    if str(_actor(payload, "ci_url") or "").startswith(("https://", "http://")):
        context.append(f"<{_mrkdwn(_actor(payload, 'ci_url'))}|CI job>")
    context.append(_at(payload))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    return {"text": text, "blocks": blocks}


class Notifier:
    """Post events to the runbook's webhooks in a background thread; never block or fail the caller.

    `timeout` bounds each HTTP phase (connect, read, write), `attempts` and `deadline` (seconds) bound the
    retries of one delivery; `transport` swaps httpx's transport (proxies, tests). The redactor given is
    taught the webhook URLs, so everything else that uses it masks them too.
    """

    def __init__(
        self,
        webhooks: Sequence[Webhook],
        redactor: Redactor,
        *,
        runbook: str = "runbook",
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 0.5,
        deadline: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self._webhooks = tuple(webhooks)
        self._redact = redactor
        self._redact.add(*(w.url for w in self._webhooks))
        self._runbook = runbook
        self._attempts, self._backoff, self._deadline = max(1, attempts), backoff, deadline
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._open: dict[str, _Job] = {}
        """Jobs neither delivered nor given up for good: queued, in flight, or failed on a transient error."""
        self._errors: dict[str, str] = {}
        self._settled: set[str] = set()
        self._outbox = outbox
        self.deliveries: list[Delivery] = []
        """Every finished delivery, in order (for logs, `--output json` and tests)."""
        self.kept: list[Delivery] = []
        """What `close` left in the outbox (or would have, without one)."""
        if outbox is not None:
            self._load(outbox)

    def name(self, index: int) -> str:
        """Name webhook `index` (0-based) for messages: `webhook #1 (slack)`; never the URL."""
        return f"webhook #{index + 1} ({self._webhooks[index].format})"

    def notify(self, event_type: str, payload: Mapping[str, Any]) -> None:
        """Queue `event_type` for every webhook subscribed to it and return at once."""
        if event_type not in EVENT_TYPES:  # a bug in the caller; never worth failing a rollback for
            error = f"unknown notification event {event_type!r}; expected one of {', '.join(EVENT_TYPES)}"
            log.error("%s", error)
            self.deliveries.append(Delivery("notifier", event_type, False, 0, error))
            return
        for i, hook in enumerate(self._webhooks):
            if hook.events and event_type not in hook.events:
                continue
            build: Callable[..., dict[str, Any]] = slack_message if hook.format == "slack" else json_message
            try:
                message = self._redact_tree(build(event_type, payload, self._runbook))
                body = json.dumps(message, default=str, ensure_ascii=False)
            except Exception as exc:  # an odd payload must not break the caller either
                error = (
                    f"{self.name(i)}: {event_type} not sent: cannot build the message ({type(exc).__name__})"
                )
                log.error("%s", error)
                self.deliveries.append(Delivery(self.name(i), event_type, False, 0, error))
                continue
            self._put(_Job(uuid.uuid4().hex, i, event_type, body.encode()))

    def _put(self, job: _Job) -> None:
        with self._idle:
            self._pending += 1
            self._open[job.id] = job
        self._queue.put(job)
        self._start()

    def _load(self, outbox: Outbox) -> None:
        """Queue the outbox's entries of this runbook (before anything new), minus removed webhooks'."""
        by_key = {webhook_key(w.url): i for i, w in enumerate(self._webhooks)}
        for entry in outbox.entries(self._runbook):
            index = by_key.get(entry.webhook)
            if index is None:
                log.warning("notification outbox: a %s for a removed webhook dropped", entry.event)
                self._settled.add(entry.id)
                continue
            self._put(_Job(entry.id, index, entry.event, entry.body.encode(), entry))

    def _redact_tree(self, value: Any) -> Any:
        """Mask secrets in every string of a message (before JSON encoding, so escaping cannot hide one)."""
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, Mapping):
            return {k: self._redact_tree(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._redact_tree(v) for v in value]
        if isinstance(value, dt.datetime):
            return value.isoformat()
        return value

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait up to `timeout` seconds for queued messages; True if all were delivered or gave up."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def close(self, timeout: float = CLOSE_WAIT) -> bool:
        """Wait up to `timeout` seconds (Ctrl-C ends the wait), stop trying, keep what is undelivered in the
        outbox, stop the thread; True if nothing was left undelivered."""
        try:
            done = self.flush(timeout)
        except KeyboardInterrupt:  # stop waiting; what is left goes to the outbox like on a timeout
            done = False
        self._closed.set()
        with self._idle:
            left = list(self._open.values())
        self.kept = [
            Delivery(self.name(j.index), j.event_type, False, 0, self._errors.get(j.id, "no answer in time"))
            for j in left
        ]
        if self._outbox is not None and (left or self._settled):
            keep = [
                OutboxEntry(**{**j.entry.__dict__, "tries": j.entry.tries + 1})
                if j.entry is not None
                else new_entry(j.id, self._runbook, self._webhooks[j.index].url, j.event_type, j.body)
                for j in left
            ]
            try:
                self._outbox.commit(settled=self._settled, keep=keep)
            except OSError as exc:
                log.warning("notification outbox %s not written: %s", self._outbox.path, exc.strerror)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=timeout if done else 0)
        if done:
            self._client.close()
        return not left

    def notice(self) -> KeptNotice | None:
        """What to tell the user about notifications `close` kept, if any."""
        if not self.kept:
            return None
        return KeptNotice(self.kept, str(self._outbox.path) if self._outbox is not None else "")

    @property
    def failures(self) -> list[Delivery]:
        """Deliveries that gave up."""
        return [d for d in self.deliveries if not d.ok]

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="runbook-notify", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                if not self._closed.is_set():  # after close the job is in the outbox: not sent twice here
                    self.deliveries.append(self._deliver(job))
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, job: _Job) -> Delivery:
        index, event_type, body = job.index, job.event_type, job.body
        hook, who = self._webhooks[index], self.name(index)
        headers = {
            "content-type": "application/json",
            "user-agent": "runbook-notify",
            "x-runbook-delivery": job.id,  # the same on every retry, in this command and the next
        }
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._attempts)
            | tenacity.stop_after_delay(self._deadline)
            | tenacity.stop_when_event_set(self._closed),
            wait=tenacity.wait_exponential(multiplier=self._backoff, max=5.0),
            retry=tenacity.retry_if_exception_type(_TRANSIENT),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self._client.post(hook.url, content=body, headers=headers)
                    if response.status_code in (408, 429) or response.status_code >= 500:
                        raise _RetryableStatus(response.status_code)
                    if response.status_code >= 300:
                        raise _FinalStatus(response.status_code)
        except Exception as exc:  # a webhook must never take the notifier thread down
            tries = retrying.statistics.get("attempt_number", 1)
            reason = self._redact(str(exc) or type(exc).__name__)
            error = f"{who}: {event_type} not delivered after {count(tries, 'attempt')}: {reason}"
            with self._idle:
                if isinstance(exc, _TRANSIENT):  # kept for the outbox: the next command tries again
                    self._errors[job.id] = reason
                else:
                    self._open.pop(job.id, None)
                    self._settled.add(job.id)
            kept = isinstance(exc, _TRANSIENT) and self._outbox is not None  # the command says so at its end
            (log.info if kept else log.warning)("%s", error)
            return Delivery(who, event_type, False, tries, error)
        with self._idle:
            self._open.pop(job.id, None)
            self._settled.add(job.id)
        return Delivery(who, event_type, True, retrying.statistics.get("attempt_number", 1))

"""Reading the local journal: line by line in constant memory, each line checked strictly before anything
reaches the state database.

A journal line is written by `append_journal`, but the file is plain text on disk: a crash cuts the last
line, a person edits it, a disk returns garbage. `entry_or_reason` turns one line into a `JournalEntry`, or
into the reason it cannot be synced (no value of the line is quoted: reasons are printed as warnings).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runbook.model import Runbook
    from runbook.state.journal import JournalEntry

MAX_LINE = 1 << 20
"""A journal line longer than this (1 MiB) is not an entry the tool wrote; it is not read into memory."""
CHUNK = 1 << 16

JOURNAL_OPERATIONS = frozenset(
    {"rollback", "auto-rollback", "sample-breach", "verify-failed", "breach", "note"}
)
"""Operations a journal entry may carry: what is recorded while the state database is unreachable."""

_TEXT = ("reason", "outcome", "from_stage", "to_stage")


@dataclass(frozen=True)
class Line:
    """One line of the journal: its number, its bytes (at most MAX_LINE) and its full length."""

    number: int
    raw: bytes
    length: int
    cut: bool = False
    """Longer than MAX_LINE: `raw` is its start only."""


def lines(f: IO[bytes]) -> Iterator[Line]:
    """Yield the non-blank lines of `f` from the start; a line longer than MAX_LINE is yielded cut short
    (the rest is skipped without being kept)."""
    f.seek(0)
    number = 0
    while True:
        raw = f.readline(MAX_LINE + 1)
        if not raw:
            return
        number += 1
        length = len(raw)
        cut = len(raw) > MAX_LINE and not raw.endswith(b"\n")
        if cut:
            raw = raw[:MAX_LINE]
            while True:  # skip the rest of an overlong line, chunk by chunk
                rest = f.readline(CHUNK)
                length += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
        if raw.strip():
            yield Line(number, raw.rstrip(b"\r\n"), length, cut)


def entry_or_reason(line: Line, runbook: Runbook | None = None) -> JournalEntry | str:
    """The entry on `line`, or why it cannot be synced. With `runbook`, the entry must belong to it and a
    state change must name one of its stages."""
    from runbook.state.journal import JournalEntry

    if line.cut:
        return f"line longer than {MAX_LINE} bytes ({line.length} bytes)"
    try:
        text = line.raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    try:
        d = json.loads(text)
    except ValueError:
        return "not JSON (a line cut short by a crash, or edited by hand)"
    reason = _shape(d)
    if reason is None and _has_nul(d):
        reason = "contains a NUL character (the state database cannot store it)"
    if reason is not None:
        return reason
    if runbook is not None:
        if d["runbook"] != runbook.name:
            return f"entry of another runbook (this journal belongs to {runbook.name!r})"
        ev = d["event"]
        if d.get("applies_state") and ev.get("to_stage") not in {s.id for s in runbook.stages}:
            return f"its to_stage is not a stage of {runbook.source}"
    try:
        return JournalEntry.from_json(d)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"not an entry ({type(exc).__name__})"


def _shape(d: Any) -> str | None:
    """Why `d` is not a journal entry as `JournalEntry.to_json` writes it; None when it is."""
    if not isinstance(d, dict):
        return "not a JSON object"
    if not isinstance(d.get("runbook"), str) or not d["runbook"]:
        return "runbook: expected a non-empty string"
    for key in ("applies_state", "blind"):
        if d.get(key) is not None and not isinstance(d[key], bool):
            return f"{key}: expected true or false"
    if not _optional_int(d.get("expected_version")):
        return "expected_version: expected an integer or null"
    ev = d.get("event")
    if not isinstance(ev, dict):
        return "event: expected an object"
    if ev.get("operation") not in JOURNAL_OPERATIONS:
        return f"event.operation: unknown operation (expected one of {', '.join(sorted(JOURNAL_OPERATIONS))})"
    try:
        uuid.UUID(ev.get("uuid"))
    except (TypeError, ValueError, AttributeError):
        return "event.uuid: not a UUID"
    for key in _TEXT:
        if ev.get(key) is not None and not isinstance(ev[key], str):
            return f"event.{key}: expected a string or null"
    for key in ("flags_before", "flags_after"):
        flags = ev.get(key)
        if flags is not None and not (
            isinstance(flags, dict) and all(isinstance(v, str) for v in flags.values())
        ):
            return f"event.{key}: expected an object of strings or null"
    if not isinstance(ev.get("verdicts") or [], list) or not all(
        isinstance(v, dict) for v in ev.get("verdicts") or []
    ):
        return "event.verdicts: expected a list of objects"
    if not isinstance(ev.get("data") or {}, dict):
        return "event.data: expected an object"
    if not _optional_int(ev.get("intent_id")):
        return "event.intent_id: expected an integer or null"
    return _actor_and_time(ev)


def _actor_and_time(ev: Mapping[str, Any]) -> str | None:
    actor = ev.get("actor")
    if actor is not None:
        if not isinstance(actor, dict):
            return "event.actor: expected an object"
        if any(
            actor.get(k) is not None and not isinstance(actor[k], str) for k in ("user", "host", "ci_url")
        ):
            return "event.actor: user, host and ci_url must be strings"
        if not _optional_int(actor.get("pid")):
            return "event.actor.pid: expected an integer"
    at = ev.get("at")
    if at is not None:
        try:
            dt.datetime.fromisoformat(at)
        except (TypeError, ValueError):
            return "event.at: expected an ISO 8601 time"
    return None


def _optional_int(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False

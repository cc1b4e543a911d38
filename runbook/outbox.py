"""The notification outbox: webhook messages a command could not deliver before it exited, kept in a local
JSON-lines file beside the journal so that the next command sends them again.

An entry holds the message exactly as it was built (already redacted), the event type, the runbook and a
hash of the webhook URL (the URL itself is a secret and is never written). Entries are claimed by reading
(the file stays as it is, so a crashed command loses nothing) and settled by `commit`, which under an
exclusive lock removes what this process delivered or gave up on and appends what it kept; the file is
replaced atomically. Two commands may therefore both send an entry: delivery is at least once, and every
POST carries the entry's id (`x-runbook-delivery`) for receivers that deduplicate. Entries older than
`MAX_AGE`, beyond `MAX_ENTRIES`, or for a webhook no longer in the runbook are dropped (and said so).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Collection, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from runbook.units import count

MAX_AGE = dt.timedelta(days=7)
MAX_ENTRIES = 1000
log = logging.getLogger("runbook.notify")


def outbox_path(journal: str | Path) -> Path:
    """The outbox of a runbook whose journal is `journal`: `.runbook-outbox.jsonl` in the same folder."""
    return Path(journal).with_name(".runbook-outbox.jsonl")


def webhook_key(url: str) -> str:
    """Name a webhook in the outbox without writing its URL (a secret)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class OutboxEntry:
    id: str
    runbook: str
    webhook: str
    """`webhook_key` of the webhook's URL."""
    event: str
    body: str
    """The message as posted (JSON text, redacted when it was built)."""
    queued_at: str
    """ISO time the notification was first queued."""
    tries: int = 0
    """Commands that kept it (1 when first written)."""

    def age(self, now: dt.datetime) -> dt.timedelta:
        try:
            return now - dt.datetime.fromisoformat(self.queued_at)
        except (TypeError, ValueError):
            return MAX_AGE  # unreadable time: as old as may be kept, dropped at the next commit

    @classmethod
    def from_line(cls, line: str) -> OutboxEntry | None:
        try:
            d = json.loads(line)
            return cls(
                **{k: d[k] for k in ("id", "runbook", "webhook", "event", "body", "queued_at")},
                tries=int(d.get("tries", 0)),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


class Outbox:
    """The outbox file at `path`; missing means empty."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def entries(self, runbook: str | None = None) -> list[OutboxEntry]:
        """The entries (of `runbook`, or all), oldest first; unreadable lines are skipped."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("notification outbox %s unreadable (%s); not retried now", self.path, exc.strerror)
            return []
        out = [e for e in map(OutboxEntry.from_line, text.splitlines()) if e is not None]
        return [e for e in out if runbook is None or e.runbook == runbook]

    def commit(self, *, settled: Collection[str], keep: Sequence[OutboxEntry]) -> int:
        """Remove the entries whose id is in `settled`, add `keep` (once per id), drop the stale; return how
        many entries the outbox now holds."""
        now = dt.datetime.now(dt.UTC)
        with self._locked() as f:
            f.seek(0)
            current = [e for e in map(OutboxEntry.from_line, f.read().splitlines()) if e is not None]
            kept_ids = {e.id for e in keep}
            entries = [e for e in current if e.id not in settled and e.id not in kept_ids] + list(keep)
            fresh = [e for e in entries if e.age(now) < MAX_AGE]
            if len(fresh) < len(entries):
                log.warning(
                    "notification outbox: %s older than %s dropped",
                    count(len(entries) - len(fresh), "notification"),
                    MAX_AGE,
                )
            if len(fresh) > MAX_ENTRIES:
                log.warning(
                    "notification outbox: %s dropped (at most %d are kept)",
                    count(len(fresh) - MAX_ENTRIES, "oldest notification"),
                    MAX_ENTRIES,
                )
                fresh = fresh[-MAX_ENTRIES:]
            self._replace(fresh)
        return len(fresh)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[IO[str]]:
        """The outbox file, open and exclusively locked (reopened if another process replaced it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - closed below
            try:
                fcntl.flock(f, fcntl.LOCK_EX)
                if os.path.exists(self.path) and os.fstat(f.fileno()).st_ino == os.stat(self.path).st_ino:
                    yield f
                    return
            finally:
                f.close()

    def _replace(self, entries: Sequence[OutboxEntry]) -> None:
        if not entries:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        fd, tmp = tempfile.mkstemp(prefix=".outbox-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                for e in entries:
                    out.write(json.dumps(asdict(e), ensure_ascii=False) + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def new_entry(entry_id: str, runbook: str, url: str, event: str, body: bytes) -> OutboxEntry:
    """An entry for a message first queued now."""
    return OutboxEntry(
        id=entry_id,
        runbook=runbook,
        webhook=webhook_key(url),
        event=event,
        body=body.decode(),
        queued_at=dt.datetime.now(dt.UTC).isoformat(),
        tries=1,
    )

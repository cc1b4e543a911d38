"""The local journal: events recorded while the state database is unreachable, synced on the next connection.

A rollback never waits for the state database. When it cannot record its event there, it appends one JSON
line to the journal (settings.state.journal, beside the runbook file; fsync'd before the command reports
success). The next command that connects syncs it (`runbook.state.journalsync`): each event is inserted
(idempotent: events carry a client uuid), a line that cannot be synced is quarantined with its reason, and
the file is emptied. The file is read line by line (`runbook.state.journalread`), never whole.

A journaled rollback also implies a state change (its stage and flags). It is applied on sync only if
nobody moved the state since, judged in this order:
- the entry knows the state version the rollback was decided on (`expected_version`, from the last state
  the process read): applied when the row still has that version;
- otherwise: applied when the row is still at the rollback's `from_stage` and was last updated before the
  rollback happened; a blind rollback (the stage was not known) is applied only if, from the stage the state
  was at, it moves back without crossing an irreversible stage (else a `conflict` event, flags made safe).
Several rollbacks journaled in a row chain: each one's base is the version the previous one produces.
An entry not applied is still inserted, marked `journal.applied = false` with the reason, so the history
is complete and `migrate status` shows any drift. The event insert and the state change share a
transaction with a lock on the state row, so concurrent or repeated syncs apply each entry at most once.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from runbook.errors import UnreachableError
from runbook.redact import redact_url
from runbook.state.base import scrub
from runbook.state.journalread import Line, entry_or_reason, lines
from runbook.state.records import NewEvent

if TYPE_CHECKING:
    from runbook.model import Runbook
    from runbook.state.store import StateStore

STATE_CHANGING = ("rollback", "auto-rollback")


@dataclass(frozen=True)
class JournalEntry:
    """One journaled event and what it implies for the state."""

    runbook: str
    event: NewEvent
    expected_version: int | None
    """State version the change was decided on; None = not known."""
    applies_state: bool
    """The event flipped the flags: move the state to its to_stage and flags_after when syncing."""
    blind: bool = False
    """Decided without reading the current stage (state database unreachable): check it on sync."""

    def to_json(self) -> dict[str, Any]:
        return {
            "runbook": self.runbook,
            "expected_version": self.expected_version,
            "applies_state": self.applies_state,
            "event": self.event.to_json(),
            **({"blind": True} if self.blind else {}),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> JournalEntry:
        return cls(
            runbook=str(d["runbook"]),
            event=NewEvent.from_json(d["event"]),
            expected_version=d.get("expected_version"),
            applies_state=bool(d.get("applies_state")),
            blind=d.get("blind") is True,
        )


def _entries(f: IO[bytes], runbook: Runbook | None = None) -> Iterator[tuple[Line, JournalEntry | str]]:
    """Yield each line of an open journal with its entry, or the reason it is not one (streaming)."""
    for line in lines(f):
        yield line, entry_or_reason(line, runbook)


def append_journal(
    path: str | Path,
    runbook: str,
    event: NewEvent,
    *,
    expected_version: int | None = None,
    applies_state: bool | None = None,
    redact: Callable[[str], str] = redact_url,
    blind: bool = False,
) -> JournalEntry:
    """Append `event` to the journal at `path` (created if missing, fsync'd); return the entry written.

    `applies_state` defaults to true for rollbacks that name a to_stage and flags_after."""
    path = Path(path)
    if applies_state is None:
        applies_state = (
            event.operation in STATE_CHANGING and event.to_stage is not None and event.flags_after is not None
        )
    at = event.at or dt.datetime.now(dt.UTC)
    ev = replace(
        event,
        at=at if at.tzinfo else at.replace(tzinfo=dt.UTC),
        reason=redact(event.reason) if event.reason else event.reason,
        data=scrub(event.data, redact),
        verdicts=scrub(list(event.verdicts), redact),
    )
    try:
        return _write(path, runbook, ev, expected_version, applies_state, blind)
    except OSError as exc:
        raise UnreachableError(
            f"cannot write the local journal {path} ({exc.strerror or exc}) while the state database is "
            "unreachable: this event is recorded nowhere",
            hint="make settings.state.journal a writable file (a relative path is beside the runbook file); "
            "`migrate status` shows the flags as they are now",
        ) from None


def _write(
    path: Path,
    runbook: str,
    ev: NewEvent,
    expected_version: int | None,
    applies_state: bool,
    blind: bool,
) -> JournalEntry:
    """Append the entry under an exclusive lock, chained on the last state change journaled before it."""
    created = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        if applies_state:
            last: JournalEntry | None = None
            for _line, e in _entries(f):
                if isinstance(e, JournalEntry) and e.runbook == runbook and e.applies_state:
                    last = e
            if last is not None:
                expected_version = last.expected_version + 1 if last.expected_version is not None else None
        entry = JournalEntry(runbook, ev, expected_version, applies_state, blind)
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:  # a crash may have left a cut line: start on a fresh one
            f.seek(f.tell() - 1)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write((json.dumps(entry.to_json(), sort_keys=True) + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    if created:
        _fsync_dir(path.parent)
    return entry


def read_journal(path: str | Path) -> list[JournalEntry]:
    """Return the entries waiting in the journal (empty when there is no journal)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_SH)
        return [e for _line, e in _entries(f) if isinstance(e, JournalEntry)]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_journal(store: StateStore, path: str | Path, runbook: Runbook | None = None) -> int:
    """Sync the journal at `path` into `store` (see `runbook.state.journalsync`); return how many events
    were inserted now. Lines that cannot be synced are quarantined in `<path>.rejected`."""
    from runbook.state.journalsync import sync_report

    return sync_report(store, path, runbook).synced


class Journal:
    """The journal at one path (settings.state.journal): `append`, `entries`, `sync`."""

    def __init__(self, path: str | Path, redact: Callable[[str], str] = redact_url) -> None:
        self.path = Path(path)
        self.redact = redact

    def append(
        self,
        runbook: str,
        event: NewEvent,
        *,
        expected_version: int | None = None,
        applies_state: bool | None = None,
        blind: bool = False,
    ) -> JournalEntry:
        """Append `event` (see `append_journal`)."""
        return append_journal(
            self.path,
            runbook,
            event,
            expected_version=expected_version,
            applies_state=applies_state,
            redact=self.redact,
            blind=blind,
        )

    def entries(self) -> list[JournalEntry]:
        """Return the entries waiting to be synced."""
        return read_journal(self.path)

    def sync(self, store: StateStore) -> int:
        """Sync into `store` (see `sync_journal`)."""
        return sync_journal(store, self.path)

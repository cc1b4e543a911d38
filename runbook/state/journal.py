"""The local journal: events recorded while the state database is unreachable, synced on the next connection.

A rollback never waits for the state database. When it cannot record its event there, it appends one JSON
line to the journal (settings.state.journal, fsync'd before the command reports success). The next command
that connects calls `sync_journal`, which inserts each event (idempotent: events carry a client uuid) and
then empties the file.

A journaled rollback also implies a state change (its stage and flags). It is applied on sync only if
nobody moved the state since, judged in this order:
- the entry knows the state version the rollback was decided on (`expected_version`, from the last state
  the process read): applied when the row still has that version;
- otherwise: applied when the row is still at the rollback's `from_stage` and was last updated before the
  rollback happened.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from runbook.redact import redact_url
from runbook.state.base import STATE_COLUMNS, scrub, state_from_row
from runbook.state.records import NewEvent

if TYPE_CHECKING:
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


def _parse(f: IO[str]) -> tuple[list[JournalEntry], list[str]]:
    """Return the entries of an open journal, and the lines that are not entries (cut short by a crash)."""
    f.seek(0)
    out: list[JournalEntry] = []
    bad: list[str] = []
    for line in f.read().split("\n"):
        if not line.strip():
            continue
        try:
            out.append(JournalEntry.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError):
            bad.append(line)
    return out, bad


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
    created = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        if applies_state:
            earlier = [e for e in _parse(f)[0] if e.runbook == runbook and e.applies_state]
            if earlier:
                last = earlier[-1]
                expected_version = last.expected_version + 1 if last.expected_version is not None else None
        entry = JournalEntry(runbook, ev, expected_version, applies_state, blind)
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:  # a crash may have left a cut line: start on a fresh one
            f.seek(f.tell() - 1)
            if f.read(1) != "\n":
                f.write("\n")
        f.write(json.dumps(entry.to_json(), sort_keys=True) + "\n")
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
    with open(path, encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_SH)
        return _parse(f)[0]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_entry(store: StateStore, e: JournalEntry) -> bool:
    """Insert one entry (and apply its state change when still valid); False when it was already synced."""
    ev = e.event
    at = ev.at or dt.datetime.now(dt.UTC)
    with store.tx() as conn:
        row = conn.execute(
            store.sql("SELECT " + STATE_COLUMNS + " FROM {state} WHERE runbook = %s FOR UPDATE"), (e.runbook,)
        ).fetchone()
        if conn.execute(store.sql("SELECT 1 FROM {events} WHERE uuid = %s"), (ev.uuid,)).fetchone():
            return False
        state = state_from_row(row) if row else None
        applied, note = False, "event only"
        if e.applies_state and ev.to_stage is not None and ev.flags_after is not None:
            if state is None:
                note = "no state row for this runbook"
            elif e.expected_version is not None:
                applied = state.version == e.expected_version
                if not applied:
                    seen = e.expected_version
                    note = f"the state moved on (version {state.version}, rollback decided on {seen})"
            else:
                # from_stage None: the rollback did not know the stage (state database down); the flags were
                # flipped all the same, so the state follows unless something changed after the rollback.
                same = ev.from_stage is None or state.stage == ev.from_stage
                applied = same and state.updated_at <= at
                if not applied:
                    note = f'the state changed later (stage "{state.stage}", version {state.version})'
        version = state.version if state else None
        if applied and state is not None and ev.to_stage is not None and ev.flags_after is not None:
            note = "applied"
            got = conn.execute(
                store.sql(
                    "UPDATE {state} SET stage = %s, flags = %s, version = version + 1, entered_at = %s, "
                    "updated_at = %s, pending_intent = NULL WHERE runbook = %s RETURNING version"
                ),
                (ev.to_stage, Jsonb(dict(ev.flags_after)), at, at, e.runbook),
            ).fetchone()
            version = got[0] if got else None
        synced = {"synced_at": dt.datetime.now(dt.UTC).isoformat(), "applied": applied, "note": note}
        stored = store.insert_event(
            conn,
            e.runbook,
            replace(ev, at=at, data={**ev.data, "journal": synced}),
            version=version,
            intent_id=state.pending_intent if applied and state else None,
            from_stage=state.stage if state else None,
            flags_before=state.flags if state else None,
            if_new=True,
        )
        if stored is None:  # inserted by a concurrent sync (no state row to serialize on): undo nothing
            return False
    return True


def sync_journal(store: StateStore, path: str | Path) -> int:
    """Insert the journal's events into `store`, apply the state changes still valid, empty the journal.

    Returns how many events were inserted now (entries already synced before are skipped). Lines that are
    not entries (cut short by a crash) are moved to `<path>.rejected`."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with open(path, "r+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        entries, bad = _parse(f)
        synced = sum(1 for entry in entries if _sync_entry(store, entry))
        if bad:  # keep what could not be read, next to the journal, rather than lose it
            with open(f"{path}.rejected", "a", encoding="utf-8") as rejected:
                rejected.write("".join(line + "\n" for line in bad))
                rejected.flush()
                os.fsync(rejected.fileno())
        f.seek(0)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())
    return synced


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

"""Syncing the local journal into the state store: one entry per transaction, streaming, never blocked by
a bad entry.

Each line is checked (`journalread.entry_or_reason`) before any SQL; an entry that cannot be synced (not
JSON, wrong types, another runbook, an unknown operation, a uuid that is not a UUID or is already used by
another event, or one the database refuses) is quarantined in `<journal>.rejected` with the reason
(`quarantine.Quarantine`), and the sync goes on. Only a lost connection stops it (UnreachableError); the
journal is then left as it is, and the next sync skips what was already inserted (events carry a uuid).

A blind entry (a rollback decided while the current stage was not known) is checked against the state as
it was: if, from that stage, the rollback would have moved forward or across an irreversible stage, it is
not applied as a transition; a `conflict` event says so, and the report lists it so that the caller puts
the flags at their safe values.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import psycopg
from psycopg.types.json import Jsonb

from runbook.state.base import STATE_COLUMNS, state_from_row
from runbook.state.journal import JournalEntry
from runbook.state.journalread import entry_or_reason, lines
from runbook.state.quarantine import Quarantine
from runbook.state.records import NewEvent, State

if TYPE_CHECKING:
    from runbook.model import Runbook
    from runbook.state.store import StateStore

Outcome = Literal["synced", "skipped", "conflict"]
WARN_AT_MOST = 10
"""Rejected lines listed one by one in a report; the rest are counted."""


@dataclass
class SyncReport:
    """What a sync did: events inserted, lines quarantined (with reasons), blind rollbacks not applied."""

    synced: int = 0
    rejected: int = 0
    reasons: list[tuple[int, str]] = field(default_factory=list)
    """(line number, reason) of the first WARN_AT_MOST rejected lines."""
    conflicts: list[str] = field(default_factory=list)
    rejected_path: Path | None = None


def sync_report(
    store: StateStore, path: str | Path, runbook: Runbook | None = None, *, limit: int | None = None
) -> SyncReport:
    """Insert the journal's events into `store`, apply the state changes still valid, quarantine what cannot
    be synced, then empty the journal. With `runbook`, entries of other runbooks and state changes to a
    stage it does not define are quarantined, and blind rollbacks are checked against its stages."""
    path = Path(path)
    report = SyncReport()
    if not path.exists() or path.stat().st_size == 0:
        return report
    quarantine = Quarantine(path) if limit is None else Quarantine(path, limit)
    with open(path, "r+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            for line in lines(f):
                got = entry_or_reason(line, runbook)
                outcome: Outcome | str
                if isinstance(got, str):
                    outcome = got
                else:
                    try:
                        outcome = _sync_entry(store, got, runbook)
                    except psycopg.Error as exc:  # not a lost connection: tx() raises UnreachableError
                        if isinstance(exc, psycopg.OperationalError):
                            raise
                        outcome = f"the state database refused it ({type(exc).__name__})"
                if outcome == "conflict":
                    report.conflicts.append(got.event.uuid if isinstance(got, JournalEntry) else "")
                if outcome in ("synced", "conflict"):
                    report.synced += 1
                elif outcome != "skipped":
                    quarantine.add(line, outcome)
                    report.rejected += 1
                    if len(report.reasons) < WARN_AT_MOST:
                        report.reasons.append((line.number, outcome))
        finally:
            quarantine.close()
        f.seek(0)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())
    report.rejected_path = quarantine.path if report.rejected else None
    return report


def _sync_entry(store: StateStore, e: JournalEntry, runbook: Runbook | None) -> Outcome | str:
    """Insert one entry (and apply its state change when still valid). Returns `skipped` when it was
    already synced, `conflict` for a blind rollback the state refuses, or why it cannot be synced."""
    ev = e.event
    at = ev.at or dt.datetime.now(dt.UTC)
    at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    with store.tx() as conn:
        row = conn.execute(
            store.sql("SELECT " + STATE_COLUMNS + " FROM {state} WHERE runbook = %s FOR UPDATE"), (e.runbook,)
        ).fetchone()
        seen = conn.execute(
            store.sql("SELECT runbook, operation, at FROM {events} WHERE uuid = %s"), (ev.uuid,)
        ).fetchone()
        if seen:
            if tuple(seen) == (e.runbook, ev.operation, at):
                return "skipped"
            return "event.uuid: already used by another event in the state database"
        state = state_from_row(row) if row else None
        applied, note, conflict = False, "event only", None
        if e.applies_state and ev.to_stage is not None and ev.flags_after is not None:
            if state is None:
                note = "no state row for this runbook"
            elif e.expected_version is not None:
                applied = state.version == e.expected_version
                if not applied:
                    seen_v = e.expected_version
                    note = f"the state moved on (version {state.version}, rollback decided on {seen_v})"
            else:
                # from_stage None: the rollback did not know the stage (state database down); the flags were
                # flipped all the same, so the state follows unless something changed after the rollback.
                same = ev.from_stage is None or state.stage == ev.from_stage
                applied = same and state.updated_at <= at
                if not applied:
                    note = f'the state changed later (stage "{state.stage}", version {state.version})'
            if applied and state is not None and (e.blind or ev.from_stage is None):
                forced = bool(ev.data.get("forced")) and bool(ev.reason)
                conflict = blind_conflict(runbook, state, ev.to_stage, forced=forced)
                if conflict is not None:
                    applied, note = False, f"conflict: {conflict}"
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
            transition=applied,
        )
        if stored is None:  # inserted by a concurrent sync (no state row to serialize on): undo nothing
            return "skipped"
        if conflict is not None and state is not None:
            store.insert_event(conn, e.runbook, _conflict_event(e, state, conflict, runbook), version=version)
            return "conflict"
    return "synced"


def blind_conflict(
    runbook: Runbook | None, state: State, to_stage: str, *, forced: bool = False
) -> str | None:
    """Why a rollback to `to_stage` decided without knowing the stage may not apply to `state` (None: it
    may): from the stage the state really was at, it would move forward, or undo an irreversible stage
    without the operator's `--force --reason` (a forced blind rollback applies as a forced one would)."""
    if runbook is None:
        return None
    from runbook.machine import crossed_irreversible

    ids = [s.id for s in runbook.stages]
    if state.stage not in ids or to_stage not in ids:
        return f"the state's stage {state.stage} is not a stage of {runbook.source}"
    if runbook.index(to_stage) > runbook.index(state.stage):
        return f"the state was at {state.stage}: a rollback to {to_stage} would move forward"
    crossed = crossed_irreversible(runbook, state.stage, to_stage)
    if crossed is not None and not forced:
        return (
            f"the state was at {state.stage}: a rollback to {to_stage} would undo {crossed.id}, irreversible"
        )
    return None


def _conflict_event(e: JournalEntry, state: State, why: str, runbook: Runbook | None) -> NewEvent:
    first = runbook.stages[0].id if runbook is not None else "the first stage"
    return NewEvent(
        "conflict",
        e.event.actor,
        reason=f"a rollback made while the state database was unreachable was not applied: {why}",
        outcome="flags set to their safe values; the state is unchanged",
        from_stage=state.stage,
        to_stage=e.event.to_stage,
        flags_before=state.flags,
        flags_after=runbook.safe_flags() if runbook is not None else None,
        data={
            "journal_uuid": e.event.uuid,
            "hint": f"decide with `migrate status`, then `migrate rollback --to {first} --force --reason` "
            "or `migrate advance`",
        },
    )

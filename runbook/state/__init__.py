"""The state store in PostgreSQL: current stage, transitions with compare-and-set, the append-only event
log, intents, monitor samples, confirmations, the runbook lock, the watcher lease, and the local journal."""

from __future__ import annotations

from runbook.state.journal import Journal, JournalEntry, append_journal, read_journal, sync_journal
from runbook.state.records import (
    TRANSITIONS,
    Confirmation,
    Event,
    Intent,
    Lease,
    LockHolder,
    LockRelease,
    NewEvent,
    State,
    StoredSample,
)
from runbook.state.schema import LATEST as SCHEMA_VERSION
from runbook.state.store import STATE_SETTING, StateStore

__all__ = [
    "SCHEMA_VERSION",
    "STATE_SETTING",
    "TRANSITIONS",
    "Confirmation",
    "Event",
    "Intent",
    "Journal",
    "JournalEntry",
    "Lease",
    "LockHolder",
    "LockRelease",
    "NewEvent",
    "State",
    "StateStore",
    "StoredSample",
    "append_journal",
    "read_journal",
    "sync_journal",
]

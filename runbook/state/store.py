"""The state store: the current stage of each runbook, transitions with compare-and-set, and the event log.

One schema holds any number of runbooks (every row is keyed by runbook name). The connection is in
autocommit mode and every unit of work is one explicit transaction: a transition and its event commit
together or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, LiteralString

import psycopg
from psycopg.types.json import Jsonb

from runbook import db
from runbook.actor import Actor
from runbook.errors import NotReadyError
from runbook.model import Runbook
from runbook.redact import redact_url
from runbook.state import schema as schema_mod
from runbook.state.aborts import AbortsMixin
from runbook.state.base import EVENT_COLUMNS, STATE_COLUMNS, event_from_row, state_from_row
from runbook.state.intents import IntentsMixin
from runbook.state.leases import LeaseMixin
from runbook.state.locking import LockMixin
from runbook.state.records import Event, NewEvent, State
from runbook.state.samples import SamplesMixin

STATE_SETTING = "settings.state.url (or settings.database.url / DATABASE_URL)"


class StateStore(IntentsMixin, SamplesMixin, LockMixin, LeaseMixin, AbortsMixin):
    """State, events, intents, samples, confirmations, locks, leases and abort requests of runbooks."""

    @classmethod
    def open(
        cls,
        url: str | None,
        schema: str = "runbook",
        *,
        migrate: bool = True,
        connect_timeout: float = 5.0,
        setting: str = STATE_SETTING,
        redact: Callable[[str], str] = redact_url,
    ) -> StateStore:
        """Connect to the state database (ConfigError without a URL, UnreachableError when down), migrate."""
        conn = db.connect(
            url, what="the state database", setting=setting, connect_timeout=connect_timeout, autocommit=True
        )
        store = cls(conn, schema=schema, url=url, redact=redact)
        store.connect_timeout = connect_timeout
        if migrate:
            store.migrate()
        return store

    @classmethod
    def from_runbook(cls, runbook: Runbook, *, migrate: bool = True, **kwargs: Any) -> StateStore:
        """Open the store a runbook's settings name (settings.state.url, else settings.database.url)."""
        return cls.open(
            runbook.state_url(),
            runbook.settings.state.schema,
            migrate=migrate,
            connect_timeout=runbook.settings.database.connect_timeout,
            **kwargs,
        )

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def migrate(self) -> list[int]:
        """Bring the schema to the latest version (safe when many processes do it at once)."""
        try:
            return schema_mod.migrate(self.conn, self.schema)
        except psycopg.OperationalError as exc:
            raise self.unreachable(exc) from None

    # --- state ------------------------------------------------------------------------------------------

    def current(self, runbook: str) -> State | None:
        """Return the state of `runbook`, or None before `initialize`."""
        with self.tx() as conn:
            row = conn.execute(
                self.sql("SELECT " + STATE_COLUMNS + " FROM {state} WHERE runbook = %s"), (runbook,)
            ).fetchone()
        return state_from_row(row) if row else None

    def initialize(
        self, runbook: str, stage: str, flags: Mapping[str, str], actor: Actor, *, reason: str | None = None
    ) -> State:
        """Create the state row at `stage` if absent (an `init` event records it); return the state."""
        with self.tx() as conn:
            row = conn.execute(
                self.sql(
                    "INSERT INTO {state} (runbook, stage, version, flags) VALUES (%s, %s, 1, %s) "
                    "ON CONFLICT (runbook) DO NOTHING RETURNING " + STATE_COLUMNS
                ),
                (runbook, stage, Jsonb(dict(flags))),
            ).fetchone()
            if row:
                ev = NewEvent("init", actor, reason=reason, to_stage=stage, flags_after=flags, outcome="ok")
                self.insert_event(conn, runbook, ev, version=1, transition=True)
                return state_from_row(row)
        state = self.current(runbook)
        assert state is not None
        return state

    def transition(
        self,
        runbook: str,
        expected_version: int,
        to_stage: str,
        flags: Mapping[str, str],
        event: NewEvent,
        *,
        entered_at: dt.datetime | None = None,
        unless_aborted_since: int | None = None,
    ) -> tuple[State, Event]:
        """Move to `to_stage` with `flags` if the version is still `expected_version` (else ConflictError).

        Appends `event` (from stage, flags before and the pending intent filled in) in the same
        transaction, bumps the version, sets entered_at (default now()) and clears the pending intent.
        With `unless_aborted_since`, raises PreemptedError instead when a rollback asked to abort after it."""
        with self.tx() as conn:
            cur = self.lock_row(conn, runbook)
            self.refuse_if_aborted(conn, runbook, unless_aborted_since)
            if cur.version != expected_version:
                raise self.conflict(conn, cur, expected_version)
            row = conn.execute(
                self.sql(
                    "UPDATE {state} SET stage = %s, flags = %s, version = version + 1, "
                    "entered_at = coalesce(%s, now()), updated_at = coalesce(%s, now()), "
                    "pending_intent = NULL "
                    "WHERE runbook = %s AND version = %s RETURNING " + STATE_COLUMNS
                ),
                (to_stage, Jsonb(dict(flags)), entered_at, entered_at, runbook, expected_version),
            ).fetchone()
            assert row is not None  # the row is locked and its version checked
            new = state_from_row(row)
            ev = replace(
                event,
                to_stage=event.to_stage if event.to_stage is not None else to_stage,
                flags_after=event.flags_after if event.flags_after is not None else flags,
            )
            stored = self.insert_event(
                conn,
                runbook,
                ev,
                version=new.version,
                intent_id=cur.pending_intent,
                from_stage=cur.stage,
                flags_before=cur.flags,
                transition=True,
            )
        assert stored is not None
        return new, stored

    # --- events -----------------------------------------------------------------------------------------

    def append_event(self, runbook: str, event: NewEvent) -> Event:
        """Append an event that does not move the state (verify, sample-breach, note...)."""
        with self.tx() as conn:
            row = conn.execute(
                self.sql("SELECT version FROM {state} WHERE runbook = %s"), (runbook,)
            ).fetchone()
            stored = self.insert_event(conn, runbook, event, version=row[0] if row else None)
        assert stored is not None
        return stored

    def events(
        self,
        runbook: str,
        limit: int | None = 100,
        since_id: int | None = None,
        operation: str | Sequence[str] | None = None,
    ) -> list[Event]:
        """Events oldest first: the last `limit` ones, or the first `limit` after `since_id`."""
        ops = [operation] if isinstance(operation, str) else list(operation) if operation else None
        order: LiteralString = "DESC" if since_id is None else "ASC"
        with self.tx() as conn:
            rows = conn.execute(
                self.sql(
                    "SELECT " + EVENT_COLUMNS + " FROM {events} WHERE runbook = %s "
                    "AND (%s::bigint IS NULL OR id > %s) AND (%s::text[] IS NULL OR operation = ANY(%s)) "
                    "ORDER BY id " + order + " LIMIT %s"
                ),
                (runbook, since_id, since_id, ops, ops, limit),
            ).fetchall()
        out = [event_from_row(r) for r in rows]
        return out[::-1] if since_id is None else out

    def count_events(self, runbook: str) -> int:
        """How many events `runbook` has (of every operation)."""
        with self.tx() as conn:
            row = conn.execute(
                self.sql("SELECT count(*) FROM {events} WHERE runbook = %s"), (runbook,)
            ).fetchone()
        return int(row[0]) if row else 0

    def last_event(self, runbook: str, operation: str | Sequence[str] | None = None) -> Event | None:
        """Return the newest event (of these operations)."""
        got = self.events(runbook, limit=1, operation=operation)
        return got[0] if got else None

    def require(self, runbook: str) -> State:
        """Return the state, or raise NotReadyError telling how to start."""
        state = self.current(runbook)
        if state is None:
            raise NotReadyError(
                f'runbook "{runbook}" has no state yet', hint="run `migrate advance` to enter the first stage"
            )
        return state

"""The connection, SQL composition, error translation and event rows shared by every part of the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from runbook.actor import Actor
from runbook.db import describe_url
from runbook.errors import ConflictError, NotReadyError, UnreachableError
from runbook.redact import redact_url
from runbook.state.records import TRANSITIONS, Event, NewEvent, State

TABLES = ("state", "events", "samples", "tallies", "lock_holders", "leases", "schema_version")

STATE_COLUMNS: LiteralString = "runbook, stage, version, entered_at, flags, updated_at, pending_intent"
EVENT_COLUMNS: LiteralString = (
    "id, uuid::text, runbook, at, actor, host, pid, ci_url, operation, from_stage, to_stage, flags_before, "
    "flags_after, verdicts, reason, outcome, intent_id, data, version"
)


def scrub(value: Any, redact: Callable[[str], str]) -> Any:
    """Return `value` with every string inside it passed through `redact` (events never hold a password)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): scrub(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, redact) for v in value]
    return value


def _with_account(ev: NewEvent) -> Mapping[str, Any]:
    """The event's data, with the account of the process beside a claimed actor (`RUNBOOK_ACTOR`)."""
    if ev.actor.os_user is None:
        return ev.data
    return {**ev.data, "os_user": ev.actor.os_user}


def state_from_row(row: tuple[Any, ...]) -> State:
    """Build a `State` from a row selected with STATE_COLUMNS."""
    runbook, stage, version, entered_at, flags, updated_at, pending = row
    return State(runbook, stage, version, entered_at, dict(flags or {}), updated_at, pending)


def event_from_row(row: tuple[Any, ...]) -> Event:
    """Build an `Event` from a row selected with EVENT_COLUMNS."""
    (id_, uuid_, runbook, at, user, host, pid, ci, op, frm, to, fb, fa, verdicts, reason, outcome, intent,
     data, version) = row  # fmt: skip
    return Event(
        id=id_,
        uuid=uuid_,
        runbook=runbook,
        at=at,
        actor=Actor(user=user, host=host, pid=pid, ci_url=ci, os_user=(data or {}).get("os_user")),
        operation=op,
        from_stage=frm,
        to_stage=to,
        flags_before=fb,
        flags_after=fa,
        verdicts=list(verdicts or []),
        reason=reason,
        outcome=outcome,
        intent_id=intent,
        data=dict(data or {}),
        version=version,
    )


class StoreBase:
    """Holds the store's connection (autocommit; every unit of work is an explicit transaction)."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        schema: str = "runbook",
        url: str | None = None,
        redact: Callable[[str], str] = redact_url,
    ) -> None:
        if not conn.autocommit:
            conn.rollback()
            conn.autocommit = True
        self.conn = conn
        self.schema = schema
        self.url = url
        self.redact = redact
        self._names = {t: sql.Identifier(schema, t) for t in TABLES}

    connect_timeout: float = 5.0

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def sql(self, template: LiteralString) -> sql.Composed:
        """Compose `template`, replacing `{state}`, `{events}`... by the schema-qualified tables."""
        return sql.SQL(template).format(**self._names)

    def where(self) -> str:
        """Return `host:port/db` of the state database, for messages."""
        return describe_url(self.url) if self.url else "the state database"

    def unreachable(self, exc: psycopg.Error) -> UnreachableError:
        """Build the error for a lost or refused connection to the state database."""
        reason = self.redact(str(exc)).strip().splitlines()
        return UnreachableError(
            f"lost the connection to the state database at {self.where()}: "
            f"{reason[-1] if reason else 'unknown error'}",
            hint="check that the server is up; a rollback still flips the flags and journals the event",
        )

    @contextmanager
    def tx(self) -> Iterator[psycopg.Connection[Any]]:
        """Run one transaction; a lost connection becomes UnreachableError (exit code 5)."""
        try:
            with self.conn.transaction():
                yield self.conn
        except psycopg.OperationalError as exc:
            if isinstance(exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
                raise
            raise self.unreachable(exc) from None

    def insert_event(
        self,
        conn: psycopg.Connection[Any],
        runbook: str,
        ev: NewEvent,
        *,
        version: int | None,
        intent_id: int | None = None,
        from_stage: str | None = None,
        flags_before: Mapping[str, str] | None = None,
        if_new: bool = False,
        transition: bool = False,
    ) -> Event | None:
        """Append `ev` (secrets scrubbed). With `if_new`, return None when its uuid is already stored.

        `transition`: this event moved the state to `version` (a unique index refuses a second one)."""
        r = self.redact
        before = ev.flags_before if ev.flags_before is not None else flags_before
        values = (
            ev.uuid,
            runbook,
            ev.at,
            ev.actor.user,
            ev.actor.host,
            ev.actor.pid,
            r(ev.actor.ci_url) if ev.actor.ci_url else None,
            ev.operation,
            ev.from_stage if ev.from_stage is not None else from_stage,
            ev.to_stage,
            Jsonb(dict(before)) if before is not None else None,
            Jsonb(dict(ev.flags_after)) if ev.flags_after is not None else None,
            Jsonb(scrub(list(ev.verdicts), r)),
            r(ev.reason) if ev.reason else ev.reason,
            ev.outcome,
            ev.intent_id if ev.intent_id is not None else intent_id,
            Jsonb(scrub(_with_account(ev), r)),
            version,
            transition,
        )
        conflict = sql.SQL("ON CONFLICT (uuid) DO NOTHING" if if_new else "")
        row = conn.execute(
            self.sql(
                "INSERT INTO {events} (uuid, runbook, at, actor, host, pid, ci_url, operation, from_stage, "
                "to_stage, flags_before, flags_after, verdicts, reason, outcome, intent_id, data, version, "
                "transition) VALUES (%s, %s, coalesce(%s, now()), "
                "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            )
            + conflict
            + sql.SQL(" RETURNING ")
            + sql.SQL(EVENT_COLUMNS),
            values,
        ).fetchone()
        return event_from_row(row) if row else None

    def lock_row(self, conn: psycopg.Connection[Any], runbook: str) -> State:
        """Lock and return the state row inside the caller's transaction (NotReadyError if absent)."""
        row = conn.execute(
            self.sql("SELECT " + STATE_COLUMNS + " FROM {state} WHERE runbook = %s FOR UPDATE"), (runbook,)
        ).fetchone()
        if not row:
            raise NotReadyError(
                f'runbook "{runbook}" has no state in schema "{self.schema}" yet',
                hint="run `migrate advance` to enter the first stage (it initializes the state)",
            )
        return state_from_row(row)

    def conflict(self, conn: psycopg.Connection[Any], state: State, expected: int) -> ConflictError:
        """Build the error for a lost compare-and-set, naming who made the change that won."""
        row = conn.execute(
            self.sql(
                "SELECT " + EVENT_COLUMNS + " FROM {events} WHERE runbook = %s AND operation = ANY(%s) "
                "ORDER BY id DESC LIMIT 1"
            ),
            (state.runbook, [*TRANSITIONS, "intent"]),
        ).fetchone()
        who = ""
        if row:
            ev = event_from_row(row)
            at = ev.at.astimezone(dt.UTC).strftime("%H:%M:%S")
            who = f"; last change: {ev.operation} by {ev.actor} at {at} UTC"
        return ConflictError(
            f'the state of "{state.runbook}" changed under this command: it is at stage "{state.stage}" '
            f"(version {state.version}, expected {expected}){who}",
            hint="run the command again to act on the current state (`migrate status` shows it)",
        )

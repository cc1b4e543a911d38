"""Abort requests: how a rollback preempts the operation holding the runbook's lock.

A rollback never waits for the transition lock. It writes an abort request (a row of `aborts`, with the
target stage and its flags, plus a NOTIFY on `runbook_abort`) in one short transaction that locks the state
row, and flips the flags itself at once. The operation in flight (an advance, a gate, a watch round) took
a baseline (the newest request id) when it started; it checks for a newer request between its steps and in
the transactions that would begin its flip or commit it, so it stops with a `preempted` record and never
commits. Locking the state row orders a request and a commit: whichever is first, the other sees it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from runbook.actor import Actor
from runbook.errors import PreemptedError
from runbook.state.base import StoreBase

CHANNEL = "runbook_abort"
"""The NOTIFY channel of abort requests; the payload is the runbook name."""
_COLUMNS = "id, runbook, requested_at, actor, host, pid, ci_url, reason, to_stage, flags, state_version"


@dataclass(frozen=True)
class Abort:
    """A rollback's request that the operation in flight stop."""

    id: int
    runbook: str
    at: dt.datetime
    actor: Actor
    reason: str | None
    to_stage: str
    flags: dict[str, str]
    state_version: int
    """The state version the rollback was decided on."""

    def describe(self) -> str:
        """`rollback to legacy requested by ops@host pid 4121 at 10:02:03 UTC (reason)`."""
        at = self.at.astimezone(dt.UTC).strftime("%H:%M:%S")
        why = f" ({self.reason})" if self.reason else ""
        return f"rollback to {self.to_stage} requested by {self.actor} at {at} UTC{why}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.astimezone(dt.UTC).isoformat(),
            "actor": self.actor.to_json(),
            "reason": self.reason,
            "to_stage": self.to_stage,
        }


def _abort(row: tuple[Any, ...]) -> Abort:
    id_, runbook, at, user, host, pid, ci, reason, to_stage, flags, version = row
    return Abort(id_, runbook, at, Actor(user, host, pid, ci), reason, to_stage, dict(flags or {}), version)


class AbortsMixin(StoreBase):
    """Abort requests (preemption by a rollback)."""

    def _aborts(self, template: LiteralString) -> sql.Composed:
        """Compose `template`, replacing `{aborts}` by the schema-qualified table."""
        return sql.SQL(template).format(aborts=sql.Identifier(self.schema, "aborts"))

    def request_abort(
        self,
        runbook: str,
        *,
        expected_version: int,
        to_stage: str,
        flags: Mapping[str, str],
        actor: Actor,
        reason: str | None = None,
    ) -> Abort:
        """Ask the operation in flight to stop; ConflictError if the state version is no longer the one the
        rollback was decided on (decide again). Does not wait for the transition lock."""
        with self.tx() as conn:
            cur = self.lock_row(conn, runbook)
            if cur.version != expected_version:
                raise self.conflict(conn, cur, expected_version)
            row = conn.execute(
                self._aborts(
                    "INSERT INTO {aborts} (runbook, actor, host, pid, ci_url, reason, to_stage, flags, "
                    "state_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING " + _COLUMNS
                ),
                (
                    runbook,
                    actor.user,
                    actor.host,
                    actor.pid,
                    self.redact(actor.ci_url) if actor.ci_url else None,
                    self.redact(reason) if reason else None,
                    to_stage,
                    Jsonb(dict(flags)),
                    cur.version,
                ),
            ).fetchone()
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, runbook))
        assert row is not None
        return _abort(row)

    def abort_baseline(self, runbook: str) -> int:
        """The newest abort request id of `runbook` (0 when none): requests after it preempt the caller."""
        with self.tx() as conn:
            row = conn.execute(
                self._aborts("SELECT coalesce(max(id), 0) FROM {aborts} WHERE runbook = %s"), (runbook,)
            ).fetchone()
        return int(row[0]) if row else 0

    def abort_since(self, runbook: str, baseline: int) -> Abort | None:
        """The newest abort request after `baseline`, if any."""
        with self.tx() as conn:
            return self._abort_in(conn, runbook, baseline)

    def _abort_in(self, conn: psycopg.Connection[Any], runbook: str, baseline: int) -> Abort | None:
        row = conn.execute(
            self._aborts(
                "SELECT " + _COLUMNS + " FROM {aborts} WHERE runbook = %s AND id > %s "
                "ORDER BY id DESC LIMIT 1"
            ),
            (runbook, baseline),
        ).fetchone()
        return _abort(row) if row else None

    def refuse_if_aborted(self, conn: psycopg.Connection[Any], runbook: str, baseline: int | None) -> None:
        """Inside a transaction that holds the state row: raise PreemptedError if a request came after
        `baseline` (None: no check)."""
        if baseline is None:
            return
        abort = self._abort_in(conn, runbook, baseline)
        if abort is not None:
            raise PreemptedError(abort, "commit")

    def listen_aborts(self) -> None:
        """LISTEN for abort requests on the store's connection (`wait_abort` then wakes at once)."""
        self.conn.execute("LISTEN " + CHANNEL)

    def wait_abort(self, runbook: str, seconds: float) -> None:
        """Sleep up to `seconds`, waking early when an abort request of `runbook` is notified."""
        try:
            for n in self.conn.notifies(timeout=max(0.0, seconds)):
                if n.payload == runbook:
                    return
        except psycopg.OperationalError as exc:
            raise self.unreachable(exc) from None

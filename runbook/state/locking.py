"""The runbook lock: a session-level advisory lock on a dedicated connection, and who holds it.

The key is derived from the schema and the runbook name, so runbooks sharing a schema do not block each
other. The holder (user, host, pid, operation, CI URL, backend pid) is written to `lock_holders` when the
lock is taken, so a second operator reads "locked by ops@host pid 4121 since 10:02:03 UTC (advance)".
The lock dies with its connection: a crashed process never leaves it behind; a hung one can be removed
with `unlock`, which terminates the backend holding it (runbook.commands.unlock first refuses a holder still
running on this host, unless forced). Session-level locks need a real session: point
the state URL at PostgreSQL or a session-pooling proxy, not at a transaction-pooling PgBouncer.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from runbook import db
from runbook.actor import Actor
from runbook.errors import ConfigError, LockedError
from runbook.state.base import StoreBase
from runbook.state.records import Lease, LockHolder, LockRelease, NewEvent
from runbook.state.schema import advisory_key

HOLDER_COLUMNS = "runbook, operation, actor, host, pid, ci_url, backend_pid, acquired_at"
_LOCK_PID = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND classid = %s::bigint::oid AND objid = %s::bigint::oid LIMIT 1"
)


class LockBusy(LockedError):
    """The lock is held by an operation the caller preempts instead of waiting for (see `lock`)."""

    def __init__(self, message: str, holder: LockHolder) -> None:
        super().__init__(message, hint="a rollback preempts it")
        self.holder = holder


def _holder(row: tuple[Any, ...]) -> LockHolder:
    runbook, operation, user, host, pid, ci, backend_pid, since = row
    return LockHolder(runbook, operation, Actor(user, host, pid, ci), since, backend_pid)


class LockMixin(StoreBase):
    """The per-runbook operation lock."""

    def lock_key(self, runbook: str) -> int:
        """Return the advisory lock key of `runbook` in this schema."""
        return advisory_key("runbook-lock", self.schema, runbook)

    def _lock_pid(self, conn: psycopg.Connection[Any], runbook: str) -> int | None:
        key = self.lock_key(runbook) & 0xFFFFFFFFFFFFFFFF
        row = conn.execute(_LOCK_PID, (key >> 32, key & 0xFFFFFFFF)).fetchone()
        return int(row[0]) if row else None

    def _holder_row(self, conn: psycopg.Connection[Any], runbook: str) -> LockHolder | None:
        row = conn.execute(
            self.sql("SELECT " + HOLDER_COLUMNS + " FROM {lock_holders} WHERE runbook = %s"), (runbook,)
        ).fetchone()
        return _holder(row) if row else None

    def lock_holder(self, runbook: str, *, settle: float = 0.0) -> tuple[LockHolder | None, int | None]:
        """Return who holds the lock now: (holder record, backend pid); (None, None) when free.

        The record may lag the lock by a moment after it is taken: `settle` seconds are waited for them
        to agree. A record whose backend no longer holds the lock is stale and not returned."""
        deadline = time.monotonic() + settle
        while True:
            with self.tx() as conn:
                pid = self._lock_pid(conn, runbook)
                holder = self._holder_row(conn, runbook)
            if pid is None:
                return None, None
            if holder is not None and holder.backend_pid == pid:
                return holder, pid
            if time.monotonic() >= deadline:
                return None, pid
            time.sleep(0.05)

    def _dedicated(self, operation: str) -> psycopg.Connection[Any]:
        url = self.url
        if not url:
            url = psycopg.conninfo.make_conninfo(self.conn.info.dsn, password=self.conn.info.password)
        return db.connect(
            url,
            what="the state database",
            setting="settings.state.url (or settings.database.url)",
            connect_timeout=self.connect_timeout,
            autocommit=True,
            application_name=f"runbook lock ({operation})"[:63],
        )

    def _locked(self, runbook: str, holder: LockHolder | None, pid: int | None) -> LockedError:
        who = holder.describe() if holder else f"another session (backend pid {pid})"
        return LockedError(
            f'runbook "{runbook}" is locked by {who}',
            hint="wait, or run `migrate unlock` if that process is gone",
        )

    def _queued(self, conn: psycopg.Connection[Any], key: int, wait: float) -> bool:
        """Wait in PostgreSQL's lock queue up to `wait` seconds (a queued waiter goes before any later
        try-lock); True when taken."""
        try:
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{max(1, round(wait * 1000))}ms",))
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            return True
        except psycopg.errors.LockNotAvailable:
            return False
        finally:
            conn.execute("SELECT set_config('lock_timeout', '0', false)")

    @contextmanager
    def lock(
        self,
        runbook: str,
        operation: str,
        actor: Actor,
        *,
        wait: float = 0.0,
        queue: bool = False,
        preempt: Callable[[LockHolder], bool] | None = None,
        acquired: Callable[[], None] | None = None,
    ) -> Iterator[LockHolder]:
        """Hold the runbook's lock for the block; retry for `wait` seconds, then raise LockedError.

        `queue`: wait in PostgreSQL's lock queue instead of retrying. `preempt`: while waiting, raise
        LockBusy (a LockedError, before the block runs) as soon as it returns True for the holder.
        `acquired` runs once the lock is taken and before the holder is published (a preemption guard
        takes its baseline there: any rollback that saw this holder asked after it)."""
        conn = self._dedicated(operation)
        try:
            key, deadline, retries = self.lock_key(runbook), time.monotonic() + wait, 0
            taken = queue and wait > 0 and self._queued(conn, key, wait)
            deadline = time.monotonic() if queue else deadline  # the queue waited already
            while not taken and not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:  # type: ignore[index]
                if preempt is not None:
                    busy, _pid = self.lock_holder(runbook, settle=1.0)
                    if busy is not None and preempt(busy):
                        raise LockBusy(self._locked(runbook, busy, _pid).message, busy)
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    time.sleep(min(0.2, remaining))
                    continue
                holder, pid = self.lock_holder(runbook, settle=2.0)
                if pid is None and retries < 5:  # released while we looked: try again
                    retries += 1
                    continue
                raise self._locked(runbook, holder, pid)
            if acquired is not None:
                acquired()
            row = conn.execute(
                self.sql(
                    "INSERT INTO {lock_holders} AS h (" + HOLDER_COLUMNS + ") "
                    "VALUES (%s, %s, %s, %s, %s, %s, pg_backend_pid(), now()) "
                    "ON CONFLICT (runbook) DO UPDATE "
                    "SET operation = excluded.operation, actor = excluded.actor, host = excluded.host, "
                    "pid = excluded.pid, ci_url = excluded.ci_url, backend_pid = excluded.backend_pid, "
                    "acquired_at = excluded.acquired_at RETURNING " + HOLDER_COLUMNS
                ),
                (runbook, operation, actor.user, actor.host, actor.pid, actor.ci_url),
            ).fetchone()
            assert row is not None
            try:
                yield _holder(row)
            finally:
                try:
                    conn.execute(
                        self.sql(
                            "DELETE FROM {lock_holders} WHERE runbook = %s AND backend_pid = pg_backend_pid()"
                        ),
                        (runbook,),
                    )
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                except psycopg.Error:  # the connection is gone (terminated by `unlock`): so is the lock
                    pass
        finally:
            conn.close()

    def unlock(
        self,
        runbook: str,
        actor: Actor,
        *,
        reason: str | None = None,
        vet: Callable[[LockHolder], tuple[str, dict[str, Any]]] | None = None,
        lease: Lease | None = None,
        lease_note: tuple[str, dict[str, Any]] = ("", {}),
    ) -> LockRelease:
        """Remove the lock of `runbook` by terminating the backend holding it; record an `unlock` event.

        `vet` is asked about a known holder before its backend is terminated: it raises to refuse (nothing is
        done), or returns a note for the event's outcome and data to record with it. `lease` (the watcher
        lease as read, already vetted: `lease_note` is its note and data) is released too, in the event's
        transaction, unless another watcher took it since."""
        holder, pid = self.lock_holder(runbook, settle=1.0)
        with self.tx() as conn:
            stale = holder or self._holder_row(conn, runbook)
        terminated: int | None = None
        vetted: dict[str, Any]
        note, vetted = "", {}
        if holder is not None and vet is not None:
            note, vetted = vet(holder)
        if pid is not None:
            try:
                with self.tx() as conn:
                    if self._lock_pid(conn, runbook) == pid:  # not a new holder that `vet` never saw
                        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    else:
                        pid = None
            except psycopg.errors.InsufficientPrivilege:
                raise ConfigError(
                    f'not allowed to terminate backend {pid}, which holds the lock of "{runbook}"',
                    hint="run `migrate unlock` as the database role that holds the lock, or a superuser",
                ) from None
        if pid is not None:
            terminated = pid
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:
                with self.tx() as conn:
                    if self._lock_pid(conn, runbook) != pid:
                        break
                time.sleep(0.05)
        if terminated is not None:
            who = holder.describe() if holder else "an unknown holder"
            message = f'terminated backend {terminated}, which held the lock of "{runbook}" for {who}{note}'
        elif stale is not None:
            message = f'the lock of "{runbook}" was not held; cleared the stale record of {stale.describe()}'
        else:
            message = f'the lock of "{runbook}" was not held; nothing to do'
        data: dict[str, Any] = {
            "terminated_backend": terminated,
            **(vetted if terminated is not None else {}),
        }
        if stale is not None:
            data["holder"] = {
                "operation": stale.operation,
                "actor": stale.actor.to_json(),
                "since": stale.since.astimezone(dt.UTC).isoformat(),
                "backend_pid": stale.backend_pid,
            }
        if lease is not None:
            data["lease"] = {
                "owner": lease.owner,
                "acquired_at": lease.acquired_at.astimezone(dt.UTC).isoformat(),
                "expires_at": lease.expires_at.astimezone(dt.UTC).isoformat(),
                **lease_note[1],
            }
        with self.tx() as conn:
            gone = [p for p in (terminated, stale.backend_pid if stale else None) if p is not None]
            conn.execute(
                self.sql("DELETE FROM {lock_holders} WHERE runbook = %s AND backend_pid = ANY(%s)"),
                (runbook, gone),
            )
            if lease is not None:
                cur = conn.execute(  # not when released since, or taken by a new holder (left to it)
                    self.sql("DELETE FROM {leases} WHERE runbook = %s AND owner = %s AND acquired_at = %s"),
                    (runbook, lease.owner, lease.acquired_at),
                )
                freed = cur.rowcount == 1
                data["lease"]["released"] = freed
                what = f'the watcher lease of "{runbook}" held by {lease.describe()}'
                said = f"released {what}{lease_note[0]}" if freed else f"{what} was released or taken since"
                if terminated is None and stale is None:
                    message = f'{said}; the lock of "{runbook}" was not held'
                else:
                    message = f"{message}; {said}"
                if not freed:
                    lease = None
            row = conn.execute(
                self.sql("SELECT version FROM {state} WHERE runbook = %s"), (runbook,)
            ).fetchone()
            ev = NewEvent("unlock", actor, reason=reason, outcome=message, data=data)
            stored = self.insert_event(conn, runbook, ev, version=row[0] if row else None)
        assert stored is not None
        return LockRelease(terminated, stale, stored.id, message, lease)

"""`migrate unlock`: release the runbook's lock, and its watcher lease, when the process holding it is gone
(or hung).

A holder on this host is looked up by its pid first (runbook.holders): one still running (not stopped) is a
live operation, an advance mid-verify say, and is not ended without `--force --reason`; a stopped one
(SIGSTOP, Ctrl-Z) is hung, one that is not running is gone, and both are released. A lock holder on another
host cannot be looked at from here: its lock is released as asked (the operator says it is gone or hung).

The watcher lease (`migrate watch`) is released the same way when its holder is gone or hung on this host (a
SIGKILLed watcher otherwise blocks the next one until the lease expires); one held on another host, or by an
owner naming no host and pid, is refused without `--force --reason`: that watcher may well be acting, and
it renews its lease every round. A watcher whose lease was taken from it stops at its next round."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runbook.errors import LockedError, UsageError
from runbook.exitcodes import ExitCode
from runbook.holders import expires_in, lease_holder_state, lease_owner, process_state
from runbook.result import FieldsJson
from runbook.session import Session
from runbook.state.records import Lease, LockHolder


@dataclass
class UnlockResult(FieldsJson):
    runbook: str
    released: bool
    detail: str
    lock_released: bool = False
    lease_released: bool = False
    template: str = "unlock"
    exit_code: ExitCode = ExitCode.OK


def holder_process(holder: LockHolder, here: str) -> str:
    """What became of the holder's process, seen from host `here`: `other-host` (not looked at), `gone`,
    `stopped` (hung: SIGSTOP or Ctrl-Z) or `running`."""
    return process_state(holder.actor.host, holder.actor.pid, here)


_NOTES = {
    "other-host": "; its process was not looked at (another host, {host})",
    "gone": "; its process (pid {pid} on this host) was gone",
    "stopped": "; its process (pid {pid} on this host) was stopped (hung)",
    "running": "; forced: its process (pid {pid} on this host) was still running",
}

_LEASE_NOTES = {
    **_NOTES,
    "other-host": "; forced: its watcher runs on another host ({host}), not looked at",
    "unknown": "; forced: its owner names no host and pid, not looked at",
}


def _vet_lease(session: Session, lease: Lease, force: bool) -> tuple[str, dict[str, Any]]:
    """Whether the watcher lease may be released: its holder gone or hung on this host, or `force`; raises
    LockedError otherwise. Returns the note and data recorded with the release."""
    rb, here = session.runbook, session.actor.host
    seen = lease_holder_state(lease, here)
    who = lease_owner(lease.owner)
    if not force and seen == "running":
        raise LockedError(
            f'not unlocking "{rb.name}": its watcher lease is held by {lease.describe()}, a watcher still '
            "running on this host",
            hint="stop that watcher (Ctrl-C or SIGTERM releases its lease), or take the lease anyway (it "
            'stops at its next round): `migrate unlock --force --reason "why"`',
        )
    if not force and seen in ("other-host", "unknown"):
        where = f"on another host, {who.host}" if who and seen == "other-host" else "by an unknown owner"
        raise LockedError(
            f'not unlocking "{rb.name}": its watcher lease is held {where} ({lease.describe()}), which '
            f"cannot be looked at from here; the lease expires in {expires_in(lease)} unless that watcher "
            "renews it",
            hint="stop that watcher there, or wait for the lease to expire; to take it anyway (that watcher "
            'stops at its next round): `migrate unlock --force --reason "why"`',
        )
    data: dict[str, Any] = {"holder_process": seen}
    if seen in ("running", "other-host", "unknown"):
        data["forced"] = True
    pid, host = (who.pid, who.host) if who else (0, "")
    return _LEASE_NOTES[seen].format(pid=pid, host=host), data


def unlock(session: Session, *, reason: str | None = None, force: bool = False) -> UnlockResult:
    """Terminate the backend holding the lock and clear the holder record, and release the watcher lease;
    audited. A holder still running on this host is refused (LockedError) unless `force` (which needs a
    `reason`); so is a watcher lease held on another host."""
    rb = session.runbook
    if force and not reason:  # as advance and rollback: a forced operation is audited with its why
        raise UsageError("--force needs --reason", hint='add --reason "why the lock may be taken"')

    def vet(holder: LockHolder) -> tuple[str, dict[str, Any]]:
        seen = holder_process(holder, session.actor.host)
        if seen == "running" and not force:
            raise LockedError(
                f'not unlocking "{rb.name}": it is held by {holder.describe()}, a process still running on '
                "this host",
                hint="wait for it to finish, or take the lock anyway (its database session is ended): "
                '`migrate unlock --force --reason "why"`',
            )
        data: dict[str, Any] = {"holder_process": seen}
        if seen == "running":
            data["forced"] = True
        return _NOTES[seen].format(pid=holder.actor.pid, host=holder.actor.host), data

    store = session.store()
    lease = store.lease(rb.name)
    lease_note: tuple[str, dict[str, Any]] = ("", {})
    kept = ""
    if lease is not None:
        try:
            lease_note = _vet_lease(session, lease, force)
        except LockedError:  # a watcher that may be acting: its lease stays, a held lock is still freed
            if store.lock_holder(rb.name)[1] is None:
                raise
            kept = f"; the watcher lease held by {lease.describe()} was left alone (it needs --force)"
            lease = None
    done = store.unlock(rb.name, session.actor, reason=reason, vet=vet, lease=lease, lease_note=lease_note)
    lock = done.terminated_backend is not None or done.holder is not None
    released = lock or done.lease is not None
    return UnlockResult(rb.name, released, done.message + kept, lock, done.lease is not None)

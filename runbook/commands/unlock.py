"""`migrate unlock`: release the runbook's lock when the process holding it is gone (or hung).

A holder on this host is looked up by its pid first: one still running (not stopped) is a live operation,
an advance mid-verify say, and is not ended without `--force --reason`; a stopped one (SIGSTOP, Ctrl-Z) is
hung, one that is not running is gone, and both are released. A holder on another host cannot be looked at
from here: its lock is released as asked (the operator says it is gone or hung)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psutil

from runbook.errors import LockedError, UsageError
from runbook.exitcodes import ExitCode
from runbook.result import FieldsJson
from runbook.session import Session
from runbook.state.records import LockHolder


@dataclass
class UnlockResult(FieldsJson):
    runbook: str
    released: bool
    detail: str
    template: str = "unlock"
    exit_code: ExitCode = ExitCode.OK


def holder_process(holder: LockHolder, here: str) -> str:
    """What became of the holder's process, seen from host `here`: `other-host` (not looked at), `gone`,
    `stopped` (hung: SIGSTOP or Ctrl-Z) or `running`."""
    if holder.actor.host != here:
        return "other-host"
    try:
        status = psutil.Process(holder.actor.pid).status()
    except psutil.NoSuchProcess:
        return "gone"
    except psutil.AccessDenied:
        return "running"  # it exists; whether it is hung cannot be told
    if status in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
        return "gone"
    if status in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
        return "stopped"
    return "running"


_NOTES = {
    "other-host": "; its process was not looked at (another host, {host})",
    "gone": "; its process (pid {pid} on this host) was gone",
    "stopped": "; its process (pid {pid} on this host) was stopped (hung)",
    "running": "; forced: its process (pid {pid} on this host) was still running",
}


def unlock(session: Session, *, reason: str | None = None, force: bool = False) -> UnlockResult:
    """Terminate the backend holding the lock and clear the holder record; audited. A holder still running on
    this host is refused (LockedError) unless `force` (which needs a `reason`)."""
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

    done = session.store().unlock(rb.name, session.actor, reason=reason, vet=vet)
    return UnlockResult(rb.name, done.terminated_backend is not None or done.holder is not None, done.message)

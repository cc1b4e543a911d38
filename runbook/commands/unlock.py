"""`migrate unlock`: release the runbook's lock when the process holding it is gone (or hung)."""

from __future__ import annotations

from dataclasses import dataclass

from runbook.exitcodes import ExitCode
from runbook.result import FieldsJson
from runbook.session import Session


@dataclass
class UnlockResult(FieldsJson):
    runbook: str
    released: bool
    detail: str
    template: str = "unlock"
    exit_code: ExitCode = ExitCode.OK


def unlock(session: Session, *, reason: str | None = None) -> UnlockResult:
    """Terminate the backend holding the lock and clear the holder record; audited."""
    rb = session.runbook
    done = session.store().unlock(rb.name, session.actor, reason=reason)
    return UnlockResult(rb.name, done.terminated_backend is not None or done.holder is not None, done.message)

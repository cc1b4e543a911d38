"""A rollback while an advance holds the transition lock: preempt it instead of waiting.

The rollback decides its target on the recorded state, asks the advance to abort (runbook.state.aborts),
and flips the flags at once through the usual intent -> flip -> record of `engine.rollback_now`; only its
record waits, in PostgreSQL's lock queue, for the advance to stop (it does at its next step and never
commits). If the advance does not let go in time, the record is made without the lock: the version check,
and the abort request that the advance's commit refuses, keep it to one transition.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from runbook import engine, machine
from runbook.errors import ConflictError, LockedError, NotReadyError, UsageError
from runbook.preempt import ensure_flags
from runbook.session import Session
from runbook.state.records import LockHolder

if TYPE_CHECKING:
    from runbook.commands.rollback import RollbackResult

COMMIT_WAIT = 10.0
"""Seconds the record waits for the preempted operation to let go of the lock (flags are set already)."""


def preempting_rollback(
    session: Session, holder: LockHolder, *, to: str | None, reason: str | None, force: bool
) -> RollbackResult:
    """Roll back now while `holder` (an advance) holds the lock; it stops at its next step."""
    from runbook.commands.rollback import flip_back, request_abort

    rb = session.runbook
    for _attempt in range(5):
        cur = engine.current(session)
        if not cur.recorded:  # a dry run holds the lock: nothing was ever recorded or flipped
            raise LockedError(
                f'runbook "{rb.name}" is locked by {holder.describe()}',
                hint="run the rollback again in a moment; nothing was recorded yet",
            )
        target = rb.stage(to) if to else rb.rollback_target(cur.stage.id)
        blocker = machine.rollback_blocker(rb, cur.stage.id, target.id, forced=force and bool(reason))
        if blocker is not None and blocker.code == "forward":
            raise UsageError(
                blocker.message, hint="rollback goes to an earlier stage; use `migrate advance` to go forward"
            )
        if blocker is not None:
            raise NotReadyError(blocker.message, hint='if you really must, add --force --reason "why"')
        try:
            abort = request_abort(session, cur.version, target.id, reason)
            break
        except ConflictError:  # the advance committed just before the request: decide again
            continue
    else:
        raise LockedError(
            f'the state of "{rb.name}" kept changing under the rollback ({holder.describe()})',
            hint="run the rollback again",
        )
    session.progress(f"preempting {holder.describe()}: flags to {target.id} now, without waiting for it")
    crossed = machine.crossed_irreversible(rb, cur.stage.id, target.id)
    data = {"preempted": {"operation": holder.operation, "holder": holder.describe(), "abort": abort.id}}
    return flip_back(
        session,
        cur.stage.id,
        cur.version,
        target.id,
        reason,
        forced=crossed is not None,
        data=data,
        commit_lock=lambda: after_holder(session, rb.desired_flags(target.id)),
        preempted=f"{holder.operation} by {holder.describe()}",
    )


@contextlib.contextmanager
def after_holder(session: Session, target: dict[str, str]) -> Iterator[None]:
    """Wait in the lock queue for the preempted operation to stop, re-check the flags, then record."""
    rb = session.runbook
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(
                session.store().lock(rb.name, "rollback", session.actor, wait=COMMIT_WAIT, queue=True)
            )
        except LockedError as exc:
            session.progress(
                f"warning: {exc.message}; recording the rollback without the lock (the preempted "
                "operation cannot commit: it refuses the abort request)"
            )
        note = ensure_flags(session, target)  # a flip it had started before the request is undone
        if note:
            session.progress(note)
        yield

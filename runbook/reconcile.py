"""Crash safety: an intent recorded before a flip that never completed is reconciled by the next command.
It reads the actual flags, completes or reverts the flip, and records what it did."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from runbook import engine, machine
from runbook.errors import LockedError, NotReadyError, RunbookError
from runbook.session import Session


@dataclass(frozen=True)
class Reconciled:
    intent_id: int
    action: str  # reverted | completed | already-consistent
    detail: str
    operation: str = ""
    """The operation whose intent was unfinished (advance, rollback, auto-rollback)."""

    def describe(self) -> str:
        """`unfinished advance #2: reverted`."""
        return f"unfinished {self.operation} #{self.intent_id}: {self.action}" + (
            f" ({self.detail})" if self.detail else ""
        )


def pending_blockers(session: Session) -> list[machine.Blocker]:
    """For read-only judges (plan, advance --dry-run), which may not repair: an unfinished intent is a
    blocker (exit 1) that names it and the commands that reconcile it."""
    intent = session.store().pending_intent(session.runbook.name)
    if intent is None:
        return []
    return [
        machine.Blocker(
            "intent",
            f"unfinished {intent.operation} (intent #{intent.id}) by {intent.actor}: a flip may be half "
            "done; `migrate advance`, `rollback`, `gate` or `watch` reconciles it first",
        )
    ]


class InFlightError(NotReadyError):
    """An unfinished intent whose operation still holds the lock: in flight, not crashed (exit 1)."""


def reconcile_first(session: Session, operation: str) -> Reconciled | None:
    """Before a command judges the state (gate, watch): reconcile an unfinished intent under the lock, as
    advance does. If another operation holds the lock, the intent is in flight, not crashed: raise
    InFlightError (exit 1) naming it, never judge over it."""
    store = session.store()
    intent = store.pending_intent(session.runbook.name)
    if intent is None:
        return None
    what = f"unfinished {intent.operation} (intent #{intent.id}) by {intent.actor}"
    try:
        lock = store.lock(session.runbook.name, "reconcile", session.actor)
        held = contextlib.ExitStack()
        held.enter_context(lock)
    except LockedError as exc:
        raise InFlightError(
            f"{what}: a flip is in progress ({exc.message}); {operation} does not judge a half-done flip",
            hint="run it again when that operation is done; `migrate status` shows the intent",
        ) from None
    with held:
        return reconcile_pending(session)


def reconcile_pending(session: Session) -> Reconciled | None:
    """Resolve an unfinished intent, if any. An interrupted advance is reverted to the recorded stage's flags
    (verify never completed, so the new stage was never proven); an interrupted rollback is completed."""
    rb = session.runbook
    store = session.store()
    intent = store.pending_intent(rb.name)
    if intent is None:
        return None
    cur = engine.current(session)
    op = intent.operation
    to_stage = intent.to_stage
    try:
        actual = session.backend().read(list(rb.flag_names))
    except RunbookError as exc:
        actual = {}
        detail = f"could not read flags: {exc.message}"
    else:
        detail = ""
    target_stage = to_stage if op in ("rollback", "auto-rollback") and to_stage else cur.stage.id
    target = rb.desired_flags(target_stage)
    drift = (
        machine.drift(target, actual)
        if actual
        else [machine.FlagChange(n, v, None) for n, v in target.items()]
    )
    if drift:
        f = engine.flip(session, target)
        if f.error is not None:
            raise f.error
        action = "completed" if target_stage != cur.stage.id else "reverted"
    else:
        action = "already-consistent"
    ev = engine.event(
        session,
        "reconcile",
        from_stage=cur.stage.id,
        to_stage=target_stage,
        flags_before=actual,
        flags_after=target,
        reason=f"unfinished {op} (intent #{intent.id}) by {intent.actor}: {action}"
        + (f"; {detail}" if detail else ""),
        outcome=action,
    )
    if target_stage != cur.stage.id:
        store.transition(rb.name, cur.version, target_stage, target, ev)
    else:
        store.resolve_intent(rb.name, intent.id, ev)
    session.progress(f"reconciled unfinished {op} #{intent.id}: {action}")
    return Reconciled(intent.id, action, detail, op)

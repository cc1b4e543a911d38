"""Automatic rollbacks (`gate --rollback-on-failure`, `watch`, a failed verify in `advance`), decided in one
place, `roll_back`: the rule is a manual rollback's (`machine.rollback_blocker`, never forced), the lock is
the transition lock (taken here unless the caller holds it), and the webhooks are told here. When the rule
refuses (out of an irreversible stage), nothing is flipped; the breach is recorded as an event, the webhooks
are told, and the caller exits 1. The first stage has nowhere to go back to: nothing is done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from runbook import engine, machine
from runbook.errors import UnreachableError
from runbook.measurement import Measurement
from runbook.preempt import preemptible
from runbook.session import Session
from runbook.state.locking import LockBusy
from runbook.state.records import LockHolder, NewEvent

HELD = "not rolled back"
"""The outcome of a breach event whose automatic rollback the rules refused."""
LOCK_WAIT = 10.0
"""Seconds an automatic rollback waits for the transition lock (a manual rollback waits as long)."""


@dataclass(frozen=True)
class Entered:
    """A failed verify: the stage was flipped into from `previous` (flags `before` -> `flags`) under the
    advance's own `reason`; kept, as entered, when the rule refuses to roll back out of it."""

    previous: str
    before: dict[str, str | None]
    flags: dict[str, str]
    reason: str | None


@dataclass
class AutoRollback:
    """What `roll_back` did: flipped back to `to_stage` (`done`), held by the rule (`refused`), or nothing
    (`to_stage` is `from_stage`: the first stage)."""

    from_stage: str
    to_stage: str
    done: engine.RollbackOutcome | None = None
    refused: machine.Blocker | None = None


def roll_back(
    session: Session,
    *,
    from_stage: str,
    expected_version: int,
    reason: str,
    verdicts: Sequence[Measurement],
    entered: Entered | None = None,
    locked: bool = False,
) -> AutoRollback:
    """Roll back automatically from `from_stage` to its rollback target, or hold the breach.

    A breach of the current stage's monitors (gate, watch) is an `auto-rollback` or, refused, a
    `sample-breach` event (webhook `breach`); a failed verify (`entered`) is an `auto-rollback` plus a
    `verify-failed` webhook or, refused, the stage recorded as entered and a `verify-failed` event.
    `locked`: the caller holds the transition lock (advance)."""
    rb = session.runbook
    target = rb.rollback_target(from_stage).id
    out = AutoRollback(from_stage, target)
    if target == from_stage:
        return out
    cause = "breach" if entered is None else "verify-failed"
    out.refused = machine.rollback_blocker(rb, from_stage, target, forced=False)
    if out.refused is not None:
        if entered is not None:
            _keep_entered(session, from_stage, expected_version, entered, verdicts, out.refused)
        operation = "sample-breach" if entered is None else "verify-failed"
        _hold(session, out.refused, operation, from_stage, target, reason, verdicts, cause)
        return out
    held = contextlib.ExitStack()
    preempted: LockHolder | None = None
    if not locked:
        try:  # an advance in flight is preempted, as a manual rollback does, not waited for
            held.enter_context(
                session.store().lock(
                    rb.name, "auto-rollback", session.actor, wait=LOCK_WAIT, preempt=preemptible
                )
            )
        except LockBusy as busy:
            preempted = busy.holder
    data, commit_lock = (
        _preempting(session, preempted, target, expected_version, reason) if preempted else ({}, None)
    )
    with held:
        out.done = engine.rollback_now(
            session,
            from_stage=from_stage,
            to_stage=target,
            expected_version=expected_version,
            operation="auto-rollback",
            reason=reason,
            verdicts=verdicts,
            data=data,
            commit_lock=commit_lock,
        )
    if entered is not None:
        session.notify("verify-failed", {**out.done.event.to_json(), "stage": from_stage})
    return out


def _preempting(
    session: Session, holder: LockHolder, target: str, expected_version: int, reason: str
) -> tuple[dict[str, Any], Callable[[], contextlib.AbstractContextManager[Any]]]:
    """`holder` (an advance) holds the lock: ask it to abort; the flags are then flipped at once and the
    record waits for it to let go (runbook.commands.preempt). A state that moved on refuses the request."""
    from runbook.commands.preempt import after_holder
    from runbook.commands.rollback import request_abort

    abort = request_abort(session, expected_version, target, reason)
    session.progress(f"preempting {holder.describe()}: flags to {target} now, without waiting for it")
    data = {"preempted": {"operation": holder.operation, "holder": holder.describe(), "abort": abort.id}}
    return data, lambda: after_holder(session, session.runbook.desired_flags(target))


def _hold(
    session: Session,
    blocker: machine.Blocker,
    operation: str,
    from_stage: str,
    to_stage: str,
    reason: str,
    verdicts: Sequence[Measurement],
    notification: str,
) -> NewEvent:
    """Record the breach whose rollback `blocker` refused, notify, and return the event (flags untouched)."""
    rb = session.runbook
    hint = f'a human may still roll back with `migrate rollback --to {to_stage} --force --reason "why"`'
    ev = engine.event(
        session,
        operation,
        from_stage=from_stage,
        to_stage=to_stage,
        verdicts=verdicts,
        reason=f"{reason}; {HELD}: {blocker.message}",
        outcome=HELD,
        data={"rollback_refused": blocker.to_json(), "hint": hint},
    )
    try:
        session.store().append_event(rb.name, ev)
    except UnreachableError:
        from runbook.state.journal import Journal

        session.reset_store()
        Journal(session.journal_path(), session.redactor()).append(rb.name, ev, applies_state=False)
    session.notify(notification, {**ev.to_json(), "stage": from_stage})
    return ev


def _keep_entered(
    session: Session,
    stage: str,
    version: int,
    entered: Entered,
    verdicts: Sequence[Measurement],
    blocker: machine.Blocker,
) -> None:
    """Verify of `stage` failed, but the rule refuses to roll back out of it: its flags stay, so the state
    records the stage as entered (with the failure; a reconcile must not revert it later)."""
    ev = engine.event(
        session,
        "advance",
        from_stage=entered.previous,
        to_stage=stage,
        flags_before=entered.before,
        flags_after=entered.flags,
        verdicts=verdicts,
        reason=entered.reason,
        outcome=f"verify failed; {HELD}",
        data={"verify_failed": True, "rollback_refused": blocker.to_json()},
    )
    session.store().transition(session.runbook.name, version, stage, entered.flags, ev)

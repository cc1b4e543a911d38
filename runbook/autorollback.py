"""Automatic rollbacks (`gate --rollback-on-failure`, `watch`, a failed verify) under the same rule as a
manual one (`machine.rollback_blocker`, never forced): when the rule refuses (out of an irreversible
stage), nothing is flipped; the breach is recorded as an event, the webhooks are told, and the caller exits 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from runbook import engine, machine
from runbook.errors import UnreachableError
from runbook.measurement import Measurement
from runbook.session import Session
from runbook.state.records import NewEvent

HELD = "not rolled back"
"""The outcome of a breach event whose automatic rollback the rules refused."""


def refusal(session: Session, from_stage: str, to_stage: str) -> machine.Blocker | None:
    """Why an automatic rollback from `from_stage` to `to_stage` may not happen (None: it may)."""
    return machine.rollback_blocker(session.runbook, from_stage, to_stage, forced=False)


def hold(
    session: Session,
    blocker: machine.Blocker,
    *,
    operation: str,
    from_stage: str,
    to_stage: str,
    reason: str,
    verdicts: Sequence[Measurement] = (),
    notification: str = "breach",
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


def held_breach(
    session: Session, from_stage: str, to_stage: str, reason: str, verdicts: Sequence[Measurement]
) -> machine.Blocker | None:
    """For `gate` and `watch` after a breach: when the rule refuses the rollback, record and notify the breach
    (flags untouched) and return why; None when the caller may roll back."""
    refused = refusal(session, from_stage, to_stage)
    if refused is not None:
        hold(
            session,
            refused,
            operation="sample-breach",
            from_stage=from_stage,
            to_stage=to_stage,
            reason=reason,
            verdicts=verdicts,
        )
    return refused


def keep_entered(
    session: Session,
    blocker: machine.Blocker,
    *,
    from_stage: str,
    stage: str,
    version: int,
    flags_before: dict[str, str | None],
    flags: dict[str, str],
    verdicts: Sequence[Measurement],
    failing: str,
    reason: str | None,
) -> None:
    """Verify of `stage` failed, but the rule refuses to roll back out of it: its flags stay, so the state
    records the stage as entered (with the failure; a reconcile must not revert it later), then the breach
    is recorded and notified."""
    back = session.runbook.rollback_target(stage)
    ev = engine.event(
        session,
        "advance",
        from_stage=from_stage,
        to_stage=stage,
        flags_before=flags_before,
        flags_after=flags,
        verdicts=verdicts,
        reason=reason,
        outcome=f"verify failed; {HELD}",
        data={"verify_failed": True, "rollback_refused": blocker.to_json()},
    )
    session.store().transition(session.runbook.name, version, stage, flags, ev)
    hold(
        session,
        blocker,
        operation="verify-failed",
        from_stage=stage,
        to_stage=back.id,
        reason=f"verify failed: {failing}",
        verdicts=verdicts,
        notification="verify-failed",
    )

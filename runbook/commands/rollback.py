"""`migrate rollback`: flip flags back now, record it, and say what work was left behind in pg-boss."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from runbook import engine, faultpoints, machine
from runbook.errors import NotReadyError, RunbookError, UnreachableError, UsageError
from runbook.exitcodes import ExitCode
from runbook.session import Session
from runbook.state.aborts import Abort


@dataclass
class RollbackResult:
    from_stage: str
    to_stage: str
    changes: list[machine.FlagChange]
    reason: str | None
    journaled: bool = False
    leftover: list[dict[str, Any]] | None = field(default_factory=list)
    """Jobs still queued in pg-boss per queue; None when they could not be counted."""
    forced: bool = False
    template: str = "rollback"
    exit_code: ExitCode = ExitCode.ROLLED_BACK
    reconciled: str | None = None
    """An unfinished intent this rollback reconciled first (`unfinished advance #2: reverted`)."""
    preempted: str | None = None
    """The operation in flight this rollback preempted (it stops without committing)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.from_stage,
            "to": self.to_stage,
            "flags": [c.to_json() for c in self.changes],
            "reason": self.reason,
            "journaled": self.journaled,
            "leftover": self.leftover,
            "forced": self.forced,
            "reconciled": self.reconciled,
            "preempted": self.preempted,
            "exit_code": int(self.exit_code),
        }


def rollback(
    session: Session, *, to: str | None = None, reason: str | None = None, force: bool = False
) -> RollbackResult:
    """Roll back from the current stage to `to` (default: its rollback_to). Never blocked by a check."""
    rb = session.runbook
    if to is not None and to not in {s.id for s in rb.stages}:
        raise UsageError(f"unknown stage {to!r}", hint="stages: " + ", ".join(s.id for s in rb.stages))
    if force and not reason:  # as advance: a forced operation is audited with its why
        raise UsageError("--force needs --reason", hint='add --reason "why this is safe"')
    try:
        store = session.store()
    except UnreachableError as exc:
        return _blind_rollback(session, to, reason, force, exc)
    from runbook.preempt import preemptible
    from runbook.state.locking import LockBusy

    lock = contextlib.ExitStack()
    try:  # wait for another rollback; an advance in flight is preempted instead
        lock.enter_context(store.lock(rb.name, "rollback", session.actor, wait=10.0, preempt=preemptible))
    except LockBusy as busy:
        from runbook.commands.preempt import preempting_rollback

        return preempting_rollback(session, busy.holder, to=to, reason=reason, force=force)
    with lock:
        faultpoints.pause("rollback:locked")
        stored = store.current(rb.name)
        if stored is not None and stored.stage not in {s.id for s in rb.stages}:
            return _unknown_stage_rollback(session, stored.stage, stored.version, to, reason, force)
        from runbook.reconcile import reconcile_pending

        reconciled = reconcile_pending(session)
        cur = engine.ensure_recorded(session)
        target = rb.stage(to) if to else rb.rollback_target(cur.stage.id)
        blocker = machine.rollback_blocker(rb, cur.stage.id, target.id, forced=force and bool(reason))
        if (blocker is not None and blocker.code == "forward") or (
            to is not None and target.id == cur.stage.id
        ):
            raise UsageError(
                blocker.message if blocker is not None else f"{target.id} is the current stage",
                hint="rollback goes to an earlier stage; use `migrate advance` to go forward",
            )
        if target.id == cur.stage.id and not _drifted(session, rb.desired_flags(target.id)):
            if reconciled is not None:  # the reconcile was the rollback: say so, exit 0
                done, ok = reconciled.describe(), ExitCode.OK
                return RollbackResult(cur.stage.id, target.id, [], reason, exit_code=ok, reconciled=done)
            raise NotReadyError(
                f"already at {target.id} with its flags; nothing to roll back",
                hint="`migrate status` shows the stage and flags; `migrate advance` moves forward",
            )
        crossed = machine.crossed_irreversible(rb, cur.stage.id, target.id)
        if blocker is not None:
            raise NotReadyError(blocker.message, hint='if you really must, add --force --reason "why"')
        request_abort(session, cur.version, target.id, reason)  # a gate or watch round judging it stops
        return flip_back(session, cur.stage.id, cur.version, target.id, reason, forced=crossed is not None)


def request_abort(session: Session, version: int, to_stage: str, reason: str | None) -> Abort:
    """Ask the operation judging or changing the stage (at `version`) to stop for this rollback;
    ConflictError when the version has moved on (decide again)."""
    rb = session.runbook
    flags = rb.desired_flags(to_stage)
    store = session.store()
    return store.request_abort(
        rb.name, expected_version=version, to_stage=to_stage, flags=flags, actor=session.actor, reason=reason
    )


def flip_back(
    session: Session,
    from_stage: str | None,
    version: int | None,
    to_stage: str,
    reason: str | None,
    *,
    forced: bool,
    data: dict[str, Any] | None = None,
    blind: bool = False,
    commit_lock: Callable[[], AbstractContextManager[Any]] | None = None,
    preempted: str | None = None,
) -> RollbackResult:
    """Flip the flags to `to_stage` and record the rollback (engine.rollback_now); the command's result.
    `forced`: across an irreversible stage (the record says so too)."""
    data = {**(data or {}), **({"forced": True} if forced else {})}
    out = engine.rollback_now(
        session,
        from_stage=from_stage,
        to_stage=to_stage,
        expected_version=version,
        operation="rollback",
        reason=reason,
        blind=blind,
        data=data or None,
        commit_lock=commit_lock,
    )
    shown = from_stage if from_stage is not None else "(unknown: state database unreachable)"
    changes, journaled, leftover = out.flip.changes, out.journaled, out.leftover
    return RollbackResult(shown, to_stage, changes, reason, journaled, leftover, forced, preempted=preempted)


def _drifted(session: Session, target: dict[str, str]) -> bool:
    """Whether the actual flags differ from `target` (an unreadable backend counts as drifted)."""
    try:
        actual = session.backend().read(list(target))
    except RunbookError:
        return True
    return bool(machine.drift(target, actual))


def _blind_rollback(
    session: Session, to: str | None, reason: str | None, force: bool, cause: RunbookError
) -> RollbackResult:
    """The state database is down: the current stage is not known, so only a target with every flag safe is
    allowed (never forward, never across an irreversible stage without --force --reason). Flip the flags
    to it and journal the event locally, marked blind, for the sync to check against the real state."""
    rb = session.runbook
    target = rb.stage(to) if to else rb.stages[0]
    forced = force and bool(reason)
    blocker = machine.rollback_blocker(rb, None, target.id, forced=forced)
    if blocker is not None:
        hint = f"the state database is unreachable; only a rollback to {rb.stages[0].id} is possible now"
        if blocker.code == "irreversible":
            hint += ', and it needs --force --reason "why"'
        raise UnreachableError(f"{cause.message}; refusing the rollback: {blocker.message}", hint=hint)
    session.progress(f"warning: {cause.message}; flipping flags anyway and journaling the event locally")
    crossed = machine.irreversible_after(rb, target.id) is not None
    blind = {"blind": True}
    result = flip_back(session, None, None, target.id, reason, forced=crossed, data=blind, blind=True)
    result.journaled = True
    return result


def _unknown_stage_rollback(
    session: Session, stage: str, version: int, to: str | None, reason: str | None, force: bool
) -> RollbackResult:
    """The state names a stage the runbook does not define: a rollback to a target with every flag safe
    (the first stage by default) is still possible, with --force --reason."""
    rb = session.runbook
    first = rb.stages[0].id
    target = rb.stage(to) if to else rb.stages[0]
    what = f"the state says stage {stage!r}, which {rb.source} does not define"
    how = f'`migrate rollback --to {first} --force --reason "why"`'
    blocker = machine.rollback_blocker(rb, None, target.id, forced=True)
    if blocker is not None:
        raise UsageError(f"{what}; {blocker.message}", hint=f"only a rollback to {first} is possible: {how}")
    if not (force and reason):
        raise NotReadyError(what, hint=f"restore that stage in the runbook, or roll back with {how}")
    return flip_back(session, stage, version, target.id, reason, forced=True, data={"unknown_stage": stage})

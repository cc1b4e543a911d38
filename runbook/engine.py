"""The engine's actions, shared by advance, rollback, gate and watch: measure, flip flags with an intent
recorded first, verify, commit with compare-and-set, roll back (even when the state database is down)."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from runbook import faultpoints, machine
from runbook.errors import RunbookError, UnreachableError
from runbook.measurement import Measurement, Verdict
from runbook.model import CheckSpec, Stage
from runbook.session import Session
from runbook.state.records import NewEvent


@dataclass(frozen=True)
class Current:
    """Where the migration is: the state row, or the first stage before anything was recorded."""

    stage: Stage
    version: int
    entered_at: dt.datetime | None
    flags: dict[str, str]
    recorded: bool


def current(session: Session) -> Current:
    """The current stage from the state store (the first stage, all flags safe, when nothing is recorded)."""
    rb = session.runbook
    st = session.store().current(rb.name)
    if st is None:
        first = rb.stages[0]
        return Current(first, 0, None, rb.desired_flags(first.id), recorded=False)
    try:
        stage = rb.stage(st.stage)
    except KeyError:
        raise RunbookError(
            f"the state says stage {st.stage!r}, which {rb.source} does not define",
            hint=f"restore that stage in the runbook, or roll back with "
            f'`migrate rollback --to {rb.stages[0].id} --force --reason "why"`',
        ) from None
    return Current(
        stage, st.version, st.entered_at, dict(st.flags or rb.desired_flags(stage.id)), recorded=True
    )


def ensure_recorded(session: Session) -> Current:
    """Record the first stage in the state store if nothing is there yet."""
    cur = current(session)
    if not cur.recorded:
        session.store().initialize(session.name, cur.stage.id, cur.flags, session.actor)
        cur = current(session)
    return cur


def measure(
    session: Session, specs: Sequence[CheckSpec], stage_id: str | None, entered_at: dt.datetime | None
) -> list[Measurement]:
    """Run checks (never raises for a check's own problems)."""
    if not specs:
        return []
    from runbook.checkrun import run_checks

    ctx = session.check_context(stage_id, entered_at)
    try:
        return run_checks(specs, ctx)
    finally:
        session.release_context(ctx)  # one connection per round, not one more per round until exit


def verify(
    session: Session, stage: Stage, *, sleep: Callable[[float], None] = time.sleep
) -> list[Measurement]:
    """Poll the stage's verify checks until all pass or the deadline passes; return the last round.

    `sleep` waits between rounds (a preemption guard's wakes and raises when a rollback asks to abort)."""
    if not stage.verify:
        return []
    deadline = time.monotonic() + (stage.verify_deadline or session.runbook.settings.defaults.verify_deadline)
    pause = session.runbook.settings.defaults.verify_interval
    while True:
        results = measure(session, stage.verify, stage.id, session.clock())
        if machine.verify_settled(results) or time.monotonic() + pause > deadline:
            return results
        waiting = ", ".join(f"{m.check} {m.verdict.value}" for m in results if m.verdict is not Verdict.PASS)
        session.progress(f"  verify: waiting for {waiting}")
        sleep(pause)


def event(
    session: Session,
    operation: str,
    *,
    from_stage: str | None,
    to_stage: str | None,
    flags_before: Mapping[str, str | None] | None = None,
    flags_after: Mapping[str, str] | None = None,
    verdicts: Sequence[Measurement] = (),
    reason: str | None = None,
    outcome: str = "done",
    data: Mapping[str, Any] | None = None,
) -> NewEvent:
    """An event for the log, by this session's actor; the time scale is recorded whenever it is not 1."""
    payload = dict(data or {})
    if session.runbook.time_scale != 1.0:
        payload["time_scale"] = session.runbook.time_scale
    before = None if flags_before is None else {k: v for k, v in flags_before.items() if v is not None}
    return NewEvent(
        operation,
        session.actor,
        reason=reason,
        outcome=outcome,
        from_stage=from_stage,
        to_stage=to_stage,
        flags_before=before,
        flags_after=None if flags_after is None else dict(flags_after),
        verdicts=[m.to_json() for m in verdicts],
        data=payload,
    )


@dataclass
class Flip:
    """The outcome of flipping flags: what was written and what the backend read back."""

    before: dict[str, str | None]
    after: dict[str, str]
    error: RunbookError | None = None
    changes: list[machine.FlagChange] = field(default_factory=list)


def flip(session: Session, target: Mapping[str, str]) -> Flip:
    """Write the target flags (read-back is the backend's job). Errors are returned, not raised."""
    backend = session.backend()
    names = list(target)
    try:
        before = backend.read(names)
    except RunbookError:
        before = {n: None for n in names}
    try:
        backend.write(dict(target), actor=str(session.actor))
    except RunbookError as exc:
        return Flip(before, dict(target), exc, machine.flag_diff(before, target))
    return Flip(before, dict(target), None, machine.flag_diff(before, target))


@dataclass
class RollbackOutcome:
    from_stage: str | None
    to_stage: str
    flip: Flip
    journaled: bool
    event: NewEvent
    leftover: list[dict[str, Any]] | None
    """Jobs still queued in pg-boss per queue; None when they could not be counted (database down)."""


def rollback_now(
    session: Session,
    *,
    from_stage: str | None,
    to_stage: str,
    expected_version: int | None,
    operation: str,
    reason: str | None,
    verdicts: Sequence[Measurement] = (),
    blind: bool = False,
    data: Mapping[str, Any] | None = None,
    commit_lock: Callable[[], AbstractContextManager[Any]] | None = None,
) -> RollbackOutcome:
    """Flip flags to `to_stage` first, then record; if the state database is unreachable, journal locally.

    `blind`: decided without reading the current stage (the journal entry says so, and the sync checks it
    against the state as it was). The caller has applied `machine.rollback_blocker` already.
    `commit_lock`: held around the commit only (a preempting rollback flips without the transition lock)."""
    rb = session.runbook
    target = rb.desired_flags(to_stage)
    if session.has_store() and expected_version is not None:
        # the intent comes first, but only on an open connection: a rollback never waits for a connect
        try:
            session.store().begin_intent(
                rb.name,
                expected_version=expected_version,
                operation=operation,
                to_stage=to_stage,
                flags_target=target,
                actor=session.actor,
                reason=reason,
                supersede=True,
            )
        except UnreachableError:
            session.reset_store()
    faultpoints.pause("rollback:intent")
    f = flip(session, target)
    faultpoints.pause("rollback:flipped")
    leftover = pgboss_leftover(session)
    ev = event(
        session,
        operation,
        from_stage=from_stage,
        to_stage=to_stage,
        flags_before=f.before,
        flags_after=target,
        verdicts=verdicts,
        reason=reason,
        outcome="done" if f.error is None else f"flags not confirmed: {f.error.message}",
        data={**(data or {}), **({"leftover": leftover} if leftover else {})} or None,
    )
    journaled = False
    try:
        store = session.store()
        version = expected_version if expected_version is not None else store.require(rb.name).version
        with commit_lock() if commit_lock is not None else contextlib.nullcontext():
            store.transition(rb.name, version, to_stage, target, ev)
        faultpoints.pause("rollback:committed")
    except UnreachableError:
        from runbook.state.journal import Journal

        journal = Journal(session.journal_path(), session.redactor())
        journal.append(rb.name, ev, expected_version=expected_version, blind=blind)
        journaled = True
    session.notify("auto-rollback" if operation == "auto-rollback" else "rollback", _payload(ev))
    if f.error is not None:
        raise f.error
    return RollbackOutcome(from_stage, to_stage, f, journaled, ev, leftover)


def _payload(ev: NewEvent) -> dict[str, Any]:
    data = ev.to_json()
    data["stage"] = ev.to_stage
    return data


def pgboss_leftover(session: Session) -> list[dict[str, Any]] | None:
    """Jobs still queued in pg-boss per queue (work left behind by a rollback): [] when none (or pg-boss is
    not installed), None when they could not be counted (its database unreachable)."""
    try:
        from runbook.checks.pgboss import queued_per_queue
    except ImportError:
        return None
    rb = session.runbook
    try:
        ctx = session.check_context(None, None)
        with ctx.connect(rb.settings.pgboss.url) as conn:
            return queued_per_queue(conn, rb.settings.pgboss.schema)
    except Exception:  # reporting leftovers must never block a rollback; never claim "nothing left" either
        return None

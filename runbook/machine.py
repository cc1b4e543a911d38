"""The state machine's decisions, pure: no I/O, no clock of its own. The engine measures and acts; this
module says what is allowed, what blocks, and where a rollback goes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from runbook.measurement import Measurement, Verdict
from runbook.model import Runbook, Stage


@dataclass(frozen=True)
class FlagChange:
    """One flag in a plan: its value before and after."""

    name: str
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "before": self.before, "after": self.after, "changed": self.changed}


@dataclass(frozen=True)
class Blocker:
    """Why a transition cannot happen now. `code` is stable (soak, work, monitor, manual, preflight, final,
    verify, approval); `message` is for people."""

    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def flag_diff(before: Mapping[str, str | None], after: Mapping[str, str | None]) -> list[FlagChange]:
    """Every flag of either side, in the order of `after` then the rest."""
    names = list(after) + [n for n in before if n not in after]
    return [FlagChange(n, before.get(n), after.get(n)) for n in names]


def drift(desired: Mapping[str, str], actual: Mapping[str, str | None]) -> list[FlagChange]:
    """Flags whose actual value differs from the desired one (before = desired, after = actual)."""
    return [FlagChange(n, v, actual.get(n)) for n, v in desired.items() if actual.get(n) != v]


def overall(measurements: Sequence[Measurement]) -> Verdict:
    """One verdict for a group: fail beats error beats inconclusive beats pass; an empty group passes."""
    verdicts = {m.verdict for m in measurements}
    for v in (Verdict.FAIL, Verdict.ERROR, Verdict.INCONCLUSIVE):
        if v in verdicts:
            return v
    return Verdict.PASS


def soak_remaining(stage: Stage, entered_at: dt.datetime | None, now: dt.datetime) -> float:
    """Seconds of soak still to go in `stage` (0 when satisfied)."""
    if entered_at is None or stage.soak.duration <= 0:
        return 0.0
    return max(0.0, stage.soak.duration - (now - entered_at).total_seconds())


def _not_passing(measurements: Iterable[Measurement]) -> list[Measurement]:
    return [m for m in measurements if m.verdict is not Verdict.PASS]


def _describe(ms: Sequence[Measurement]) -> str:
    return "; ".join(f"{m.check} {m.verdict.value}: {m.explanation}" for m in ms)


def leave_blockers(
    stage: Stage,
    entered_at: dt.datetime | None,
    now: dt.datetime,
    monitors: Sequence[Measurement],
    work: Sequence[Measurement],
    runbook: Runbook,
) -> list[Blocker]:
    """What keeps us in `stage`: soak time, work not yet seen, monitors not holding, being the last stage."""
    from runbook.units import format_duration

    out: list[Blocker] = []
    if runbook.next_stage(stage.id) is None:
        out.append(Blocker("final", f"{stage.id} is the last stage; there is nothing to advance to"))
        return out
    left = soak_remaining(stage, entered_at, now)
    if left > 0:
        out.append(
            Blocker("soak", f"soak: {format_duration(left)} of {format_duration(stage.soak.duration)} left")
        )
    return out + hold_blockers(monitors, work)


def hold_blockers(monitors: Sequence[Measurement], work: Sequence[Measurement] = ()) -> list[Blocker]:
    """What is wrong in the current stage whatever comes next: work not yet seen, monitors not holding."""
    out: list[Blocker] = []
    bad_work = _not_passing(work)
    if bad_work:
        out.append(Blocker("work", f"not enough work on the new path yet: {_describe(bad_work)}"))
    bad = _not_passing(monitors)
    if bad:
        out.append(Blocker("monitor", f"monitors do not hold: {_describe(bad)}"))
    return out


def entry_blockers(
    target: Stage, preflight: Sequence[Measurement], confirmed: Iterable[str]
) -> list[Blocker]:
    """What keeps us out of `target`: preflight checks not passing, manual items not confirmed."""
    out: list[Blocker] = []
    bad = _not_passing(preflight)
    if bad:
        out.append(Blocker("preflight", f"preflight of {target.id} does not pass: {_describe(bad)}"))
    missing = [m for m in target.manual if m.id not in set(confirmed)]
    if missing:
        items = ", ".join(f"{m.id} ({m.text})" for m in missing)
        out.append(Blocker("manual", f"confirm before entering {target.id}: {items}"))
    return out


def crossed_irreversible(runbook: Runbook, current: str, target: str) -> Stage | None:
    """The irreversible stage a rollback from `current` to `target` would undo, if any."""
    lo, hi = runbook.index(target), runbook.index(current)
    for s in runbook.stages[lo + 1 : hi + 1]:
        if s.irreversible:
            return s
    return None


def safe_target(runbook: Runbook, target: str) -> bool:
    """Whether every flag of `target` is at its safe value (the first stage always is, by definition)."""
    return target == runbook.stages[0].id or runbook.desired_flags(target) == runbook.safe_flags()


def irreversible_after(runbook: Runbook, target: str) -> Stage | None:
    """The first irreversible stage after `target`: one a rollback to `target` may undo when the current
    stage is not known."""
    return next((s for s in runbook.stages[runbook.index(target) + 1 :] if s.irreversible), None)


def rollback_blocker(runbook: Runbook, current: str | None, target: str, *, forced: bool) -> Blocker | None:
    """Why a rollback from `current` to `target` may not happen; None when it may. The one rule for manual
    and automatic rollbacks alike (automatic ones are never `forced`).

    `current` None means the current stage is not known (state database unreachable, or a stage the runbook
    does not define): then only a target with every flag safe is allowed, and only with `forced` when an
    irreversible stage after it may be undone. Codes: forward, unsafe, irreversible."""
    if current is None:
        if not safe_target(runbook, target):
            return Blocker(
                "unsafe",
                f"the current stage is not known, and {target} does not set every flag to its safe value",
            )
        maybe = irreversible_after(runbook, target)
        if maybe is not None and not forced:
            return Blocker(
                "irreversible",
                f"the current stage is not known: it may be {maybe.id} or later, which is irreversible, "
                f"and rolling back to {target} would undo it",
            )
        return None
    if runbook.index(target) > runbook.index(current):
        return Blocker("forward", f"{target} is after the current stage {current}")
    crossed = crossed_irreversible(runbook, current, target)
    if crossed is not None and not forced:
        return Blocker(
            "irreversible", f"{crossed.id} is irreversible; rolling back to {target} would undo it"
        )
    return None


def verify_settled(measurements: Sequence[Measurement]) -> bool:
    """Verify can stop polling: every check passed, or the deadline will decide."""
    return all(m.verdict is Verdict.PASS for m in measurements)


def verify_outcome(measurements: Sequence[Measurement]) -> Verdict:
    """Verify's verdict at the deadline: any fail or error rolls back; inconclusive leaves it to a human."""
    v = overall(measurements)
    return Verdict.FAIL if v is Verdict.ERROR else v

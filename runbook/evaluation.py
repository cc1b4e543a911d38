"""One `evaluate` for `advance` and `plan --check`: measure what leaving the current stage for the next one
depends on (the current monitors and work, the next stage's preflight), and say what blocks it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from runbook import engine, machine
from runbook.measurement import Measurement
from runbook.model import Runbook, Stage
from runbook.session import Session


@dataclass
class Evaluation:
    """The measurements of one evaluation of `cur` -> `nxt` (None at the last stage) at `now`."""

    runbook: Runbook
    cur: engine.Current
    nxt: Stage | None
    now: dt.datetime
    monitors: list[Measurement]
    work: list[Measurement]
    preflight: list[Measurement]

    @property
    def measurements(self) -> list[Measurement]:
        return [*self.monitors, *self.work, *self.preflight]

    def blockers(self, confirmed: Iterable[str]) -> list[machine.Blocker]:
        """What keeps the migration where it is, given the next stage's `confirmed` checklist items. At the
        last stage: what is wrong whatever comes next (its monitors not holding)."""
        cur = self.cur
        if self.nxt is None:
            return machine.hold_blockers(self.monitors)
        return [
            *machine.leave_blockers(
                cur.stage, cur.entered_at, self.now, self.monitors, self.work, self.runbook
            ),
            *machine.entry_blockers(self.nxt, self.preflight, confirmed),
        ]


def evaluate(session: Session, cur: engine.Current, nxt: Stage | None) -> Evaluation:
    """Measure the current monitors, its work (once the stage is recorded: its window opens then) and the
    next stage's preflight. Before the first stage is recorded its monitors are measured from now, as the
    advance that records it does. The preflight's stage-relative windows (`since_stage`) start when the stage
    being left was entered: that is the stage whose health they judge before entering the next."""
    now = session.clock()
    since = cur.entered_at if cur.recorded else now
    monitors = engine.measure(session, cur.stage.monitor, cur.stage.id, since)
    work = (
        engine.measure(session, cur.stage.soak.work, cur.stage.id, cur.entered_at)
        if cur.recorded and nxt is not None
        else []
    )
    preflight = engine.measure(session, nxt.preflight, nxt.id, since) if nxt is not None else []
    return Evaluation(session.runbook, cur, nxt, now, monitors, work, preflight)

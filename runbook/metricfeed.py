"""What feeds `migrate watch`'s metrics: each round's `WatchView` turned into one runbook's `Snapshot` (read
at scrape time by runbook/metrics.py's `WatchMetrics`) and increments of its counters and histograms."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from runbook import engine
from runbook.errors import RunbookError
from runbook.metricnames import CAUSES, OPERATIONS, OUTCOMES

if TYPE_CHECKING:
    from runbook.commands.watch import WatchView
    from runbook.metrics import WatchMetrics
    from runbook.session import Session


class CheckFigures(NamedTuple):
    """One check's last measurement, as exported."""

    name: str
    value: float | None
    threshold: float | None
    verdict: str
    state: str
    at: float
    """When it was measured (Unix time)."""
    seconds: float
    """How long the measurement took."""


@dataclass
class Snapshot:
    """What one runbook's last round saw (replaced whole, read at scrape time)."""

    stages: tuple[str, ...]
    stage: str | None = None
    version: int | None = None
    entered_at: float | None = None
    soak_required: float = 0.0
    checks: list[CheckFigures] = field(default_factory=list)
    drift: bool | None = None
    lease_held: bool = False
    state_db: bool = False
    every: float = 0.0
    last_round: float | None = None


class RunbookFeed:
    """One runbook's figures, fed by the watch loop (`feed(view)` is an `on_round`)."""

    def __init__(self, owner: WatchMetrics, session: Session) -> None:
        rb = session.runbook
        self.session, self.name, self.metrics = session, rb.name, owner
        self.snapshot = Snapshot(stages=tuple(s.id for s in rb.stages))
        self.beat = time.monotonic()
        self.window = 3 * rb.settings.defaults.interval + rb.settings.defaults.timeout
        for op in OPERATIONS:
            owner.transitions.labels(self.name, op)
        for cause in CAUSES:
            owner.rollbacks.labels(self.name, cause)
        for outcome in OUTCOMES:
            owner.breaches.labels(self.name, outcome)
        owner.rounds.labels(self.name)
        owner.db_errors.labels(self.name)

    def __call__(self, view: WatchView) -> None:
        from runbook.commands.status import read_flags

        m, name = self.metrics, self.name
        snap = dataclasses.replace(self.snapshot, stage=view.stage, state_db=view.state_db)
        snap.lease_held, snap.every = view.lease_held, view.every
        cur = view.cur
        if view.transitions:  # this round moved the state: read where it is now
            with contextlib.suppress(RunbookError):
                cur = engine.current(self.session)
                snap.stage = cur.stage.id
        if cur is not None:
            snap.version = cur.version
            snap.entered_at = cur.entered_at.timestamp() if cur.entered_at else None
            snap.soak_required = cur.stage.soak.duration
            flags = read_flags(self.session, cur.flags)
            snap.drift = None if flags.error else bool(flags.drift)
        if not view.state_db:
            m.db_errors.labels(name).inc()
        if view.round is not None:
            snap.last_round, snap.checks = time.time(), []
            m.rounds.labels(name).inc()
            m.sample_seconds.labels(name).observe(view.sample_seconds)
            for j in view.round.judged:
                meas = j.measurement
                snap.checks.append(
                    CheckFigures(
                        j.spec.name,
                        _number(meas.value),
                        j.threshold,
                        meas.verdict.value,
                        j.assessment.state,
                        meas.measured_at.timestamp(),
                        meas.duration_ms / 1000,
                    )
                )
            if view.round.breached:
                rolled = any(t.get("cause") == "breach" for t in view.transitions)
                m.breaches.labels(name, "rolled-back" if rolled else "not-rolled-back").inc()
        for t in view.transitions:
            m.transitions.labels(name, t["operation"]).inc()
            if t["operation"] == "auto-rollback" and t.get("cause") in CAUSES:
                m.rollbacks.labels(name, t["cause"]).inc()
        self.snapshot, self.beat = snap, time.monotonic()
        m.updates += 1
        self.window = 3 * view.every + self.session.runbook.settings.defaults.timeout

    @property
    def live(self) -> bool:
        """The loop reported within about three intervals (plus a check's timeout)."""
        return time.monotonic() - self.beat <= self.window

    @property
    def ready(self) -> bool:
        """The state database answered the last round and this watcher holds the lease."""
        return self.snapshot.state_db and self.snapshot.lease_held


def fanout(*calls: Callable[[WatchView], None]) -> Callable[[WatchView], None]:
    """One `on_round` that calls each of `calls` in turn."""

    def call(view: WatchView) -> None:
        for c in calls:
            c(view)

    return call


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) else None

"""`migrate watch`: keep watch over the current stage for days. Sample the monitors every interval, store
each sample, roll back on a breach (stop with exit 1 on one it may not roll back: out of an irreversible
stage, or in the first), hold (and say so) when inconclusive, and with `auto_advance` move on when the soak
is satisfied and every gate allows it. One watcher acts at a time (a lease)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runbook import autorollback, engine, machine, monitoring
from runbook.commands.watchsteps import acquire_lease, notify_round, preempted, try_advance
from runbook.errors import LockedError, RunbookError, UnreachableError, UsageError
from runbook.exitcodes import ExitCode
from runbook.preempt import Guard
from runbook.reconcile import InFlightError, reconcile_first
from runbook.result import FieldsJson
from runbook.session import Session
from runbook.state.leases import lease_seconds


@dataclass
class WatchView:
    """What one round looked like (rendered live on a terminal, one line per sample in a log)."""

    n: int
    stage: str
    soak_remaining: float
    round: monitoring.Round | None
    note: str = ""
    cur: engine.Current | None = None
    """The state this round saw (None when the state database could not be read)."""
    state_db: bool = True
    lease_held: bool = False
    every: float = 0.0
    """Seconds until the next round is due (the interval, or the back-off after an error)."""
    sample_seconds: float = 0.0
    transitions: list[dict[str, Any]] = field(default_factory=list)
    """The transitions this watcher made since the previous view."""

    def to_json(self) -> dict[str, Any]:
        judged = self.round.judged if self.round else []
        return {
            "n": self.n,
            "stage": self.stage,
            "soak_remaining_seconds": self.soak_remaining,
            "note": self.note,
            "checks": [
                {
                    **j.measurement.to_json(),
                    "state": j.assessment.state,
                    "assessment": j.assessment.reason,
                    "threshold": j.threshold,
                }
                for j in judged
            ],
        }


@dataclass
class WatchResult(FieldsJson):
    runbook: str
    outcome: str
    """stopped | limit | rolled-back | preempted | not-rolled-back (a breach out of an irreversible stage) |
    breached (a breach in the first stage: nothing to roll back to)."""
    rounds: int
    stage: str
    transitions: list[dict[str, Any]] = field(default_factory=list)
    last: dict[str, Any] | None = None
    reason: str | None = None
    template: str = "watch"

    @property
    def exit_code(self) -> ExitCode:
        if self.outcome in ("not-rolled-back", "breached"):  # a breach not rolled back
            return ExitCode.NOT_READY
        return ExitCode.ROLLED_BACK if self.outcome in ("rolled-back", "preempted") else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "exit_code": int(self.exit_code)}


def watch(
    session: Session,
    *,
    interval: float | None = None,
    auto_advance: bool = False,
    max_rounds: int | None = None,
    stop: threading.Event | None = None,
    on_round: Callable[[WatchView], None] = lambda _v: None,
    wait_for_lease: bool = False,
    keep_pace: bool = False,
) -> WatchResult:
    """Watch until stopped, rolled back, or `max_rounds` samples were taken. `keep_pace` (replicas handing
    runbooks over): the first sample comes an interval after the last one of whichever watcher took it, as
    after a `--wait` take-over; a watch started by hand samples at once."""
    rb = session.runbook
    if interval is not None and not interval > 0:  # 0 used to mean the stage's interval, silently
        raise UsageError(
            f"the watch interval must be more than 0, got {interval}", hint="e.g. --interval 30s"
        )
    stop = stop or threading.Event()
    owner = f"{session.actor.user}@{socket.gethostname()} pid {os.getpid()}"  # read in "held by ..."
    result = WatchResult(rb.name, "stopped", 0, rb.stages[0].id)
    notified: set[tuple[str, str, int]] = set()
    lease_ttl = 0.0
    have_lease = False
    failures = 0
    guard = Guard(session, "watch")
    shown = 0
    every = interval if interval is not None else rb.settings.defaults.interval

    def show(view: WatchView) -> None:
        """Hand a view to `on_round` with what the loop knows (lease, interval, transitions made)."""
        nonlocal shown
        view.lease_held, view.every = have_lease, view.every or every
        view.transitions, shown = result.transitions[shown:], len(result.transitions)
        on_round(view)

    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                store = session.store()
                if guard.baseline is None:
                    guard.arm()  # a manual rollback from now on stops this watcher (exit 4)
                cur = engine.ensure_recorded(session)
                every = (
                    interval if interval is not None else cur.stage.interval or rb.settings.defaults.interval
                )
                lease_ttl = lease_seconds(every)
                if not have_lease:
                    waiting = WatchView(result.rounds, cur.stage.id, 0, None, cur=cur)
                    have_lease = acquire_lease(
                        session,
                        owner,
                        lease_ttl,
                        every,
                        wait_for_lease,
                        stop,
                        show,
                        waiting,
                        keep_pace=keep_pace,
                    )
                    if not have_lease:  # stopped while waiting for it: never sample without the lease
                        break
                    started = time.monotonic()  # the wait for the lease is no part of the round's time
                    cur = engine.ensure_recorded(session)  # as it is now: the other watcher may have acted
                else:
                    have_lease = store.renew_lease(rb.name, owner, lease_ttl)
                    if not have_lease:
                        raise LockedError(
                            "lost the watcher lease to another watcher", hint="only one acts at a time"
                        )
                if reconcile_first(session, "watch") is not None:  # never sample over a half-done flip
                    cur = engine.ensure_recorded(session)
                failures = 0
            except InFlightError as exc:
                show(WatchView(result.rounds, cur.stage.id, 0, None, note=f"waiting: {exc.message}", cur=cur))
                stop.wait(min(every, 5.0))
                continue
            except UnreachableError as exc:
                failures += 1
                session.reset_store()
                backoff = min(60.0, 2.0**failures)
                note = f"state database: {exc.message}"
                show(WatchView(result.rounds, result.stage, 0, None, note, state_db=False, every=backoff))
                stop.wait(backoff)
                continue
            result.stage = cur.stage.id
            sampled = time.monotonic()
            rnd = monitoring.sample(session, cur)
            result.rounds += 1
            left = machine.soak_remaining(cur.stage, cur.entered_at, session.clock())
            view = WatchView(result.rounds, cur.stage.id, left, rnd, cur=cur)
            view.sample_seconds = time.monotonic() - sampled
            if preempted(guard, view, result, show):
                return result
            if rnd.breached:
                reason = f"watch: {rnd.breach_reason()}"
                auto = autorollback.roll_back(
                    session,
                    from_stage=cur.stage.id,
                    expected_version=cur.version,
                    reason=reason,
                    verdicts=rnd.measurements,
                )
                if auto.refused is not None:
                    view.note = f"breach: {autorollback.HELD}: {auto.refused.message}"
                    result.outcome = "not-rolled-back"
                    result.reason = f"{reason}; {autorollback.HELD}: {auto.refused.message}"
                elif auto.done is not None:
                    view.note = f"breach: rolled back to {auto.to_stage}"
                    result.outcome, result.reason, result.stage = "rolled-back", reason, auto.to_stage
                    result.transitions.append(
                        {
                            "operation": "auto-rollback",
                            "from": cur.stage.id,
                            "to": auto.to_stage,
                            "cause": "breach",
                        }
                    )
                else:  # the first stage: nothing to roll back to, and a breach still (exit 1, as gate)
                    first = f"{cur.stage.id} is the first stage, nothing to roll back to"
                    view.note = f"breach: {first}"
                    result.outcome, result.reason = "breached", f"{reason}; {first}"
                show(view)
                result.last = view.to_json()
                return result
            notify_round(session, cur, rnd, left, notified)
            if auto_advance:
                view.note = try_advance(session, cur, rnd, left, result)
                if result.outcome in ("rolled-back", "not-rolled-back", "preempted"):
                    show(view)
                    result.last = view.to_json()
                    return result
            elif rnd.inconclusive:
                view.note = "inconclusive: holding (rolls back on a breach; never advances on its own)"
            show(view)
            result.last = view.to_json()
            if result.rounds % 100 == 0:
                session.store().prune_samples(rb.name, rb.settings.state.sample_retention)
            if max_rounds is not None and result.rounds >= max_rounds:
                result.outcome = "limit"
                break
            stop.wait(max(0.0, every - (time.monotonic() - started)))
    except KeyboardInterrupt:  # stopped at once (a second Ctrl-C), maybe mid-query: release on a new one
        session.reset_store()
        raise
    finally:
        if have_lease:
            with contextlib.suppress(RunbookError):
                session.store().release_lease(rb.name, owner)
    return result

"""What the watch loop does around a round's sample: take the watcher lease (one watcher acts at a time),
stop when a manual rollback preempts it, notify, and with `auto_advance` try the next stage."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from runbook import autorollback, engine, monitoring
from runbook.errors import LockedError, PreemptedError
from runbook.holders import lease_refused, waiting_note
from runbook.preempt import Guard
from runbook.session import Session

LEASE_POLL = 10.0
"""Seconds at most between two tries of a watcher waiting for the lease (`--wait`)."""

if TYPE_CHECKING:
    from runbook.commands.watch import WatchResult, WatchView


def preempted(
    guard: Guard, view: WatchView, result: WatchResult, on_round: Callable[[WatchView], None]
) -> bool:
    """A manual rollback came during this watch: record it, stop (exit 4), never act on the round."""
    try:
        guard.check("sample")
    except PreemptedError as exc:
        guard.stop(exc)
        view.note = f"preempted: {exc.abort.describe()}"
        on_round(view)
        result.outcome, result.reason, result.last = "preempted", exc.message, view.to_json()
        return True
    return False


def acquire_lease(
    session: Session,
    owner: str,
    ttl: float,
    every: float,
    wait: bool,
    stop: threading.Event,
    show: Callable[[WatchView], None],
    view: WatchView,
    *,
    keep_pace: bool = False,
) -> bool:
    """Take the watcher lease; with `wait`, poll (showing `view` each time) until it is free. Taken after a
    wait, the first round keeps the previous watcher's pace: it comes `every` seconds after that watcher's
    last sample (no two samples of a runbook closer than an interval across a hand-over); so is it with
    `keep_pace` (a replica taking a runbook over), wait or not. False: stopped
    first (the lease not held)."""
    store = session.store()
    rb = session.runbook
    waited = keep_pace
    while True:
        if store.acquire_lease(rb.name, owner, ttl):
            age = store.last_sample_age(rb.name) if waited else None
            if age is not None and age < every and stop.wait(every - age):
                store.release_lease(rb.name, owner)
                return False
            return True
        lease = store.lease(rb.name)
        if not wait:  # a holder gone from this host is named as such, with how to release its lease now
            raise lease_refused(rb.name, lease, session.actor.host)
        view.note = waiting_note(lease, session.actor.host)
        show(view)
        waited = True
        if stop.wait(min(ttl / 3, LEASE_POLL)):
            return False


def notify_round(
    session: Session,
    cur: engine.Current,
    rnd: monitoring.Round,
    left: float,
    notified: set[tuple[str, str, int]],
) -> None:
    """Notify each check that turned inconclusive and a satisfied soak, once per stage version (`notified`
    remembers what was sent)."""
    for j in rnd.inconclusive:
        key = ("inconclusive", j.spec.name, cur.version)
        if key not in notified:
            notified.add(key)
            session.notify(
                "inconclusive",
                {
                    "stage": cur.stage.id,
                    "check": j.spec.name,
                    "reason": j.assessment.reason,
                    "verdicts": [j.measurement.to_json()],
                },
            )
    if left <= 0 and cur.stage.soak.duration > 0 and ("soak", cur.stage.id, cur.version) not in notified:
        notified.add(("soak", cur.stage.id, cur.version))
        session.notify("soak-satisfied", {"stage": cur.stage.id, "verdicts": []})


def try_advance(
    session: Session, cur: engine.Current, rnd: monitoring.Round, left: float, result: WatchResult
) -> str:
    rb = session.runbook
    nxt = rb.next_stage(cur.stage.id)
    if nxt is None:
        return "last stage: nothing to advance to"
    if left > 0:
        return f"waiting for the soak ({left:.0f}s left)"
    if not rnd.holding:
        return "waiting: monitors do not all hold"
    if nxt.approval or nxt.manual:
        return f"waiting for a human: {nxt.id} needs " + ("approval" if nxt.approval else "confirmations")
    from runbook.commands.advance import advance

    try:
        res = advance(session, yes=True)
    except PreemptedError as exc:
        result.outcome, result.reason = "preempted", exc.message
        return f"preempted: {exc.abort.describe()}"
    except LockedError as exc:
        return f"advance skipped: {exc.message}"
    if res.outcome in ("advanced", "transfer-failed"):  # a failed stage transfer keeps the flip: entered
        result.stage = res.to_stage  # the stage it now watches, as `migrate status` shows it
        result.transitions.append({"operation": "advance", "from": res.from_stage, "to": res.to_stage})
        return f"advanced to {res.to_stage}" + (f"; {res.failure}" if res.failure else "")
    if res.outcome == "rolled-back":
        result.outcome, result.stage = "rolled-back", res.rolled_back_to or result.stage
        result.reason = f"verify of {res.to_stage} failed"
        result.transitions.append(
            {
                "operation": "auto-rollback",
                "from": res.to_stage,
                "to": res.rolled_back_to,
                "cause": "verify-failed",
            }
        )
        return f"verify of {res.to_stage} failed: rolled back to {res.rolled_back_to}"
    if res.outcome == "not-rolled-back":
        result.outcome, result.stage = "not-rolled-back", res.to_stage
        result.reason = f"verify of {res.to_stage} failed; {autorollback.HELD}: {res.failure}"
        result.transitions.append({"operation": "advance", "from": res.from_stage, "to": res.to_stage})
        return result.reason
    return "not advanced: " + "; ".join(b.message for b in res.blockers)

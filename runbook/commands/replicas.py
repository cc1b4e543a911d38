"""Replicas: several `migrate watch --wait` processes given the same runbooks share them out.

A runbook is watched by the one process holding its lease (the lease row, runbook/state/leases.py). Each
replica also keeps a heartbeat: a lease row of its own named `replica:<owner>`, renewed every tick (the
shortest interval of its runbooks) for a lease period (3 ticks, at least 30 s, as the watch loop's lease).
Every tick a replica reads the unexpired leases in one query (its first tick only announces it) and:

- counts the live replicas (the heartbeat rows) and takes its fair share, ceil(runbooks / live replicas);
- holding more than that (a replica joined), it stops the surplus watches: each releases its lease after its
  current round, and a replica below its share takes the runbook at its next tick;
- holding fewer, it starts watching runbooks whose lease nobody holds (a lease taken by another replica a
  moment before makes that watch end at once: the lease is the arbiter, never this count).

A SIGKILLed replica stops renewing: its leases and its heartbeat expire within one lease period, and the
others take its runbooks at their next tick (at most one tick after the expiry). Leases and heartbeats are
read from the state database of the first runbook: runbooks kept in other state databases are still arbitrated
by their own leases, only not counted for the share."""

from __future__ import annotations

import contextlib
import math
import threading
import uuid
from collections.abc import Callable, Sequence

from runbook.errors import RunbookError, UnreachableError
from runbook.session import Session
from runbook.state.leases import lease_seconds

HEARTBEAT = "replica:"
Start = Callable[[int, threading.Event], threading.Thread]
"""Start watching runbook i until the event is set; the thread ends when the watch does."""
Done = Callable[[int], bool]
"""Whether runbook i's watch ended by itself here (its --max-samples, a rollback, a bad runbook): never
taken again by this replica. A watch that ended because another replica holds the lease is not done."""


def fair_share(runbooks: int, replicas: int) -> int:
    return math.ceil(runbooks / max(1, replicas))


def share_out(
    sessions: Sequence[Session],
    coordinator: Session,
    *,
    stop: threading.Event,
    start: Start,
    tick: float,
    beat: Callable[[bool], None] = lambda _ok: None,
    done: Done = lambda _i: False,
) -> None:
    """Take and give back runbooks every `tick` until `stop`, or until every runbook's watch is `done` here
    (as a single watch, a replica given --max-samples ends); then stop every watch (each releases its
    lease) and the heartbeat. `beat(ok)` says whether the state database answered this tick."""
    owner = f"{coordinator.actor} ({uuid.uuid4().hex[:8]})"  # user@host pid N (a unique id)
    ttl = lease_seconds(tick)
    running: dict[int, tuple[threading.Thread, threading.Event]] = {}
    first = True
    try:
        while not stop.is_set():
            running = {i: te for i, te in running.items() if te[0].is_alive()}
            finished = {i for i in range(len(sessions)) if i not in running and done(i)}
            if len(finished) == len(sessions):
                break
            try:
                store = coordinator.store()
                store.acquire_lease(HEARTBEAT + owner, owner, ttl)
                held = store.held_leases()
            except UnreachableError:
                coordinator.reset_store()
                beat(False)
                stop.wait(tick)
                continue
            beat(True)
            if first:  # announced, not yet taking: replicas started together see each other first
                first = False
                stop.wait(tick)
                continue
            fair = fair_share(len(sessions), sum(1 for k in held if k.startswith(HEARTBEAT)))
            for i in sorted(running)[fair:]:
                running[i][1].set()  # the surplus: given back after its current round
            for i, s in enumerate(sessions):
                if len(running) >= fair:
                    break
                if i not in running and i not in finished and s.name not in held:
                    ev = threading.Event()
                    running[i] = (start(i, ev), ev)
            stop.wait(tick)
    finally:
        for _t, ev in running.values():
            ev.set()
        for t, _ev in running.values():
            while t.is_alive():
                t.join(0.5)
        with contextlib.suppress(RunbookError):
            coordinator.store().release_lease(HEARTBEAT + owner, owner)

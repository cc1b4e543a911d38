"""What became of the process holding a runbook's lock or watcher lease, seen from this host.

A holder on this host is looked up by its pid (psutil): `running`, `stopped` (SIGSTOP, Ctrl-Z: hung) or `gone`
(no such process, a zombie, or a pid reused by a process started after the holder took what it holds). A
holder on another host cannot be looked at from here: `other-host`.

The watcher lease names its holder in its owner, `user@host pid N` (a replica's `user@host pid N (id)`);
`migrate watch` refused a lease whose holder is gone here says so, and `migrate unlock` releases it.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import psutil

from runbook.errors import LockedError
from runbook.state.records import Lease

REUSE_MARGIN = 2.0
"""Seconds a process may seem to start after its holder took the lease and still be the holder (the
process start time psutil reads drifts with the boot time): a pid reused within them counts as running."""

_OWNER = re.compile(r"(?P<user>.*)@(?P<host>[^@\s]+) pid (?P<pid>\d+)(?: \((?P<tag>[^()]*)\))?")


@dataclass(frozen=True)
class LeaseOwner:
    """The holder a watcher lease names."""

    user: str
    host: str
    pid: int


def lease_owner(owner: str) -> LeaseOwner | None:
    """Read `user@host pid N` (or `user@host pid N (id)`); None for an owner written otherwise."""
    m = _OWNER.fullmatch(owner)
    return LeaseOwner(m["user"], m["host"], int(m["pid"])) if m else None


def process_state(host: str, pid: int, here: str, *, running_since: float | None = None) -> str:
    """What became of process `pid` of host `host`, seen from host `here`: `other-host` (not looked at),
    `gone`, `stopped` (hung: SIGSTOP or Ctrl-Z) or `running`. `running_since` (epoch seconds, this host's
    clock): the holder was running by then, so a process with its pid started later (beyond
    REUSE_MARGIN) is another one that reused the pid: `gone`."""
    if host != here:
        return "other-host"
    try:
        proc = psutil.Process(pid)
        status = proc.status()
        started = proc.create_time()
    except psutil.NoSuchProcess:
        return "gone"
    except psutil.AccessDenied:
        return "running"  # it exists; whether it is hung cannot be told
    if status in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
        return "gone"
    if running_since is not None and started > running_since + REUSE_MARGIN:
        return "gone"
    if status in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
        return "stopped"
    return "running"


def lease_holder_state(lease: Lease, here: str, *, now: float | None = None) -> str:
    """What became of the watcher holding `lease` (read a moment ago), seen from host `here`: as
    `process_state`, or `unknown` when its owner names no host and pid. The holder was running when it took
    the lease, `lease.held_for` seconds before the read (the database's clock, so no skew with this host)."""
    who = lease_owner(lease.owner)
    if who is None:
        return "unknown"
    now = time.time() if now is None else now  # after the read: the acquisition is placed late, never early
    return process_state(who.host, who.pid, here, running_since=now - lease.held_for)


def expires_in(lease: Lease) -> str:
    """`27s`: how long the lease had left when it was read, rounded up."""
    return f"{max(0, math.ceil(lease.expires_in))}s"


def waiting_note(lease: Lease | None, here: str) -> str:
    """The line of a `--wait` watcher waiting for the lease: a holder gone or hung on this host is named as
    such, with when its lease expires (the wait ends then)."""
    if lease is None:
        return "waiting for the watcher lease held by another watcher"
    note = f"waiting for the watcher lease held by {lease.owner}"
    seen = lease_holder_state(lease, here)
    if seen in ("gone", "stopped"):
        state = "is gone" if seen == "gone" else "is stopped (hung)"
        note += f" (its watcher {state}; the lease expires in {expires_in(lease)}, or `migrate unlock` now)"
    return note


def lease_refused(runbook: str, lease: Lease | None, here: str) -> LockedError:
    """The error of `migrate watch` (without --wait) finding the lease of `runbook` held by another watcher:
    a holder gone or hung on this host is named as such, with when its lease expires and how to release it
    now."""
    if lease is None:  # expired or released between the attempt and the read
        return LockedError(
            f"another watcher is already acting on {runbook}",
            hint="stop it first, or pass --wait to take over when its lease expires",
        )
    seen = lease_holder_state(lease, here)
    who = lease_owner(lease.owner)
    left = expires_in(lease)
    if who is not None and seen in ("gone", "stopped"):
        state = "is gone" if seen == "gone" else "is stopped (hung)"
        return LockedError(
            f"the watcher lease of {runbook} is held by {lease.owner}, but the watcher that held it "
            f"(pid {who.pid} on this host) {state}; its lease expires in {left} — wait, or run "
            "`migrate unlock` to release it now",
            hint="or pass --wait to take over when it expires",
        )
    where = ""
    if seen == "other-host" and who is not None:
        where = f" (it runs on {who.host}; its lease expires in {left} unless renewed)"
    return LockedError(
        f"another watcher is already acting on {runbook}: {lease.owner}",
        hint=f"stop it first{where}, or pass --wait to take over when its lease expires",
    )

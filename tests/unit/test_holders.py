"""What became of a lease's or lock's holder process (runbook/holders.py): the decision `migrate watch` and
`migrate unlock` take on a SIGKILLed watcher, on real processes of this host."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from runbook.holders import (
    LeaseOwner,
    lease_holder_state,
    lease_owner,
    lease_refused,
    process_state,
    waiting_note,
)
from runbook.state.records import Lease

HERE = socket.gethostname()


def lease(owner: str, *, held_for: float = 5.0, expires_in: float = 26.2) -> Lease:
    now = dt.datetime.now(dt.UTC)
    acquired = now - dt.timedelta(seconds=held_for)
    return Lease("rb", owner, acquired, now + dt.timedelta(seconds=expires_in), held_for, expires_in)


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: no such process (a pid is not reused at once)
    return proc.pid


@pytest.mark.parametrize(
    ("owner", "parsed"),
    [
        ("ops@box-1 pid 4121", LeaseOwner("ops", "box-1", 4121)),
        ("ops@box-1 pid 4121 (3f2a9c01)", LeaseOwner("ops", "box-1", 4121)),  # a replica's
        ("alice@example.com@box.lan pid 7", LeaseOwner("alice@example.com", "box.lan", 7)),  # RUNBOOK_ACTOR
        ("w1", None),
        ("ops@box pid x", None),
    ],
)
def test_the_owner_names_user_host_and_pid(owner: str, parsed: LeaseOwner | None) -> None:
    assert lease_owner(owner) == parsed


def test_a_holder_on_another_host_is_not_looked_at() -> None:
    assert process_state("elsewhere", os.getpid(), HERE) == "other-host"
    assert lease_holder_state(lease(f"ops@elsewhere pid {os.getpid()}"), HERE) == "other-host"
    assert lease_holder_state(lease("w1"), HERE) == "unknown"


def test_running_stopped_zombie_and_gone(child: subprocess.Popen[bytes]) -> None:
    assert process_state(HERE, child.pid, HERE) == "running"
    child.send_signal(signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_STOPPED and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process_state(HERE, child.pid, HERE) == "stopped"
    child.send_signal(signal.SIGKILL)
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process_state(HERE, child.pid, HERE) == "gone"  # killed, not yet reaped
    child.wait()
    assert process_state(HERE, child.pid, HERE) == "gone"
    assert process_state(HERE, dead_pid(), HERE) == "gone"


def test_a_pid_reused_by_a_process_started_after_the_lease_was_taken_is_gone() -> None:
    started = psutil.Process().create_time()
    mine = f"ops@{HERE} pid {os.getpid()}"
    assert lease_holder_state(lease(mine, held_for=1.0), HERE) == "running"  # taken after this process began
    age = time.time() - started
    assert (
        lease_holder_state(lease(mine, held_for=age + 60), HERE) == "gone"
    )  # taken a minute before it began
    assert lease_holder_state(lease(mine, held_for=age + 1), HERE) == "running"  # within the clock's margin
    assert process_state(HERE, os.getpid(), HERE, running_since=started - 60) == "gone"


def test_watch_names_a_gone_holder_and_when_its_lease_expires() -> None:
    pid = dead_pid()
    err = lease_refused("rb", lease(f"ops@{HERE} pid {pid}"), HERE)
    assert err.exit_code == 3
    assert err.message == (
        f"the watcher lease of rb is held by ops@{HERE} pid {pid}, but the watcher that held it "
        f"(pid {pid} on this host) is gone; its lease expires in 27s — wait, or run `migrate unlock` to "
        "release it now"
    )
    assert err.hint == "or pass --wait to take over when it expires"


def test_watch_refuses_a_live_holder_as_before_and_names_another_host() -> None:
    err = lease_refused(
        "rb", lease(f"ops@{HERE} pid {os.getpid()}", held_for=0.5), HERE
    )  # taken since it began
    assert err.message == f"another watcher is already acting on rb: ops@{HERE} pid {os.getpid()}"
    assert err.hint == "stop it first, or pass --wait to take over when its lease expires"
    err = lease_refused("rb", lease("ops@far pid 12 (ab12cd34)"), HERE)
    assert err.message == "another watcher is already acting on rb: ops@far pid 12 (ab12cd34)"
    assert err.hint == (
        "stop it first (it runs on far; its lease expires in 27s unless renewed), or pass --wait to take "
        "over when its lease expires"
    )
    assert lease_refused("rb", None, HERE).message == "another watcher is already acting on rb"


def test_a_waiting_watcher_says_when_the_holder_is_gone() -> None:
    pid = dead_pid()
    assert waiting_note(lease(f"ops@{HERE} pid {pid}"), HERE) == (
        f"waiting for the watcher lease held by ops@{HERE} pid {pid} (its watcher is gone; the lease expires "
        "in 27s, or `migrate unlock` now)"
    )
    live = f"ops@{HERE} pid {os.getpid()}"
    assert waiting_note(lease(live, held_for=0.5), HERE) == f"waiting for the watcher lease held by {live}"
    far = "ops@far pid 12"
    assert waiting_note(lease(far), HERE) == f"waiting for the watcher lease held by {far}"
    assert waiting_note(None, HERE) == "waiting for the watcher lease held by another watcher"

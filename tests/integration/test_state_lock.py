"""The runbook lock on a real PostgreSQL: one winner among 20, holder named, unlock, crash release."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import psycopg
import pytest

from runbook.errors import LockedError
from runbook.state import StateStore
from tests.integration.statehelp import actor, open_store

HOLD_SCRIPT = """
import sys, time
from runbook.actor import Actor
from runbook.state import StateStore
store = StateStore.open(sys.argv[1])
with store.lock("rb", "watch", Actor("child", "box", 777)):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_twenty_concurrent_lockers_one_wins(pg_url: str) -> None:
    open_store(pg_url).close()  # migrate once up front
    start, release = threading.Barrier(20), threading.Event()
    won: list[int] = []
    errors: dict[int, LockedError] = {}
    done = threading.Semaphore(0)

    def contend(i: int) -> None:
        with StateStore.open(pg_url) as store:
            start.wait()
            try:
                with store.lock("rb", "advance", actor(f"u{i}", pid=1000 + i)):
                    won.append(i)
                    done.release()
                    release.wait(60)
            except LockedError as exc:
                errors[i] = exc
                done.release()

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for _ in range(20):
        assert done.acquire(timeout=120)
    release.set()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(errors) == 19
    w = won[0]
    for exc in errors.values():
        assert f'runbook "rb" is locked by u{w}@box pid {1000 + w} since ' in exc.message
        assert exc.message.endswith(" UTC (advance)")
        assert exc.hint == "wait, or run `migrate unlock` if that process is gone"
        assert exc.exit_code == 3
    store = open_store(pg_url)
    assert store.lock_holder("rb") == (None, None)  # released at the end of the block
    with store.lock("rb", "rollback", actor()) as holder:
        assert (holder.operation, holder.actor.user) == ("rollback", "ops")


def test_wait_retries_until_free_and_runbooks_do_not_block_each_other(pg_url: str) -> None:
    store, other = open_store(pg_url), open_store(pg_url)
    with store.lock("rb", "advance", actor()):
        with other.lock("another-runbook", "advance", actor()) as h:
            assert h.runbook == "another-runbook"
        holder, pid = other.lock_holder("rb")
        assert holder is not None and holder.operation == "advance" and pid == holder.backend_pid
    got: list[str] = []

    def later() -> None:
        with store.lock("rb", "gate", actor("late"), wait=30):
            got.append("late")

    with other.lock("rb", "advance", actor("first")):
        t = threading.Thread(target=later)
        t.start()
        time.sleep(0.3)
        assert got == []  # still waiting while we hold it
    t.join(60)
    assert got == ["late"]


def test_unlock_terminates_the_holder_and_records_it(pg_url: str) -> None:
    store = open_store(pg_url)
    child = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, pg_url], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        locked = pytest.raises(LockedError, match=r"locked by child@box pid 777 since .* UTC \(watch\)")
        with locked, store.lock("rb", "advance", actor()):
            pass
        result = store.unlock("rb", actor("admin"), reason="watcher hung")
        assert result.terminated_backend is not None and result.holder is not None
        assert result.holder.actor.user == "child"
        assert result.message.startswith(
            f"terminated backend {result.terminated_backend}, which held the lock"
        )
        with store.lock("rb", "advance", actor()) as h:
            assert h.actor.user == "ops"
        ev = store.last_event("rb", "unlock")
        assert ev is not None and ev.id == result.event_id and ev.reason == "watcher hung"
        assert ev.data["terminated_backend"] == result.terminated_backend
        assert ev.data["holder"]["actor"]["user"] == "child"
    finally:
        child.kill()
        child.wait()


def test_a_killed_holder_releases_the_lock(pg_url: str) -> None:
    store = open_store(pg_url)
    child = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, pg_url], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "locked"
    child.kill()
    child.wait()
    with store.lock("rb", "advance", actor(), wait=30) as h:  # the server notices the closed session
        assert h.actor.user == "ops"
    result = store.unlock("rb", actor())
    assert result.terminated_backend is None
    assert result.message == 'the lock of "rb" was not held; nothing to do'
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a holder record whose session is gone
        conn.execute(
            "INSERT INTO runbook.lock_holders (runbook, operation, actor, host, pid, backend_pid, "
            "acquired_at) VALUES ('rb', 'advance', 'ghost', 'gone', 1, 99999, '2026-01-01 10:02:03+00')"
        )
    assert store.lock_holder("rb") == (None, None)
    result = store.unlock("rb", actor())
    assert result.message == (
        'the lock of "rb" was not held; cleared the stale record of '
        "ghost@gone pid 1 since 10:02:03 UTC (advance)"
    )
    assert store.unlock("rb", actor()).holder is None

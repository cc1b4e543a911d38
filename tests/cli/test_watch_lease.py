"""The watcher lease left by a SIGKILLed `migrate watch` (a new-user trial: the next watch was refused for
~30 s with "stop it first", and `migrate unlock` said "Nothing to unlock"): watch names the gone holder and
when its lease expires, and unlock releases it; a live holder, one on another host, still needs --force."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from runbook.actor import current_actor
from runbook.state import StateStore
from tests.cli.conftest import Outcome

Migrate = Callable[..., Outcome]
MIGRATE = str(Path(sys.executable).with_name("migrate"))  # the installed CLI of this virtualenv


def _watch_proc(rb_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [MIGRATE, "watch", "--interval", "0.2s"],
        cwd=rb_dir,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_a_round(migrate: Migrate, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if json.loads(migrate("-o", "json", "status").out)["latest"]:
            return
        time.sleep(0.2)
    raise AssertionError("the watcher took no sample")


def test_a_sigkilled_watchers_lease_is_named_and_unlock_releases_it(rb_dir: Path, migrate: Migrate) -> None:
    assert migrate("advance", "--yes").code == 0
    first = _watch_proc(rb_dir)
    try:
        _wait_for_a_round(migrate, first)
        owner = f"{current_actor().user}@{socket.gethostname()} pid {first.pid}"
        r = migrate("unlock")  # alive on this host: not without --force
        assert r.code == 3, r.text
        assert re.fullmatch(
            rf'error: not unlocking "cli-test": its watcher lease is held by {re.escape(owner)} since '
            r"\d\d:\d\d:\d\d UTC, a watcher still running on this host",
            r.err.splitlines()[0],
        ), r.err
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    second = migrate("watch", "--interval", "0.2s", "--max-samples", "1")
    assert second.code == 3, second.text  # as a held lock (docs/commands.md, exit codes)
    m = re.fullmatch(
        rf"error: the watcher lease of cli-test is held by {re.escape(owner)}, but the watcher that held "
        rf"it \(pid {first.pid} on this host\) is gone; its lease expires in (\d+)s — wait, or run "
        r"`migrate unlock` to release it now",
        second.err.splitlines()[0],
    )
    assert m, second.err
    assert 0 < int(m[1]) <= 30  # the lease lasts 30 s at a 0.2 s interval
    assert second.err.splitlines()[1] == "  hint: or pass --wait to take over when it expires"

    r = migrate("unlock")  # gone: released without --force
    assert r.code == 0, r.text
    assert re.fullmatch(
        rf'Released the watcher lease of cli-test: released the watcher lease of "cli-test" held by '
        rf"{re.escape(owner)} since \d\d:\d\d:\d\d UTC; its process \(pid {first.pid} on this host\) was "
        r'gone; the lock of "cli-test" was not held\n',
        r.out,
    ), r.out
    ev = json.loads(migrate("-o", "json", "history", "--operation", "unlock").out)["events"][-1]
    assert ev["data"]["lease"]["owner"] == owner
    assert (ev["data"]["lease"]["holder_process"], ev["data"]["lease"]["released"]) == ("gone", True)

    again = migrate("watch", "--interval", "0.1s", "--max-samples", "1")
    assert again.code == 0, again.text
    assert migrate("unlock").out.startswith("Nothing to unlock for cli-test: ")  # watch released its own


def test_a_lease_held_on_another_host_needs_force_and_a_reused_pid_does_not(
    rb_dir: Path, migrate: Migrate, pg_url: str
) -> None:
    assert migrate("advance", "--yes").code == 0
    store = StateStore.open(pg_url)
    try:
        assert store.acquire_lease("cli-test", "ops@far-box pid 4121", 30)
        r = migrate("unlock")
        assert r.code == 3, r.text
        assert re.fullmatch(
            r'error: not unlocking "cli-test": its watcher lease is held on another host, far-box '
            r"\(ops@far-box pid 4121 since \d\d:\d\d:\d\d UTC\), which cannot be looked at from here; the "
            r"lease expires in \d+s unless that watcher renews it",
            r.err.splitlines()[0],
        ), r.err
        r = migrate("unlock", "--force", "--reason", "far-box was powered off")
        assert r.code == 0, r.text
        assert r.out.endswith(
            "; forced: its watcher runs on another host (far-box), not looked at; the lock "
            'of "cli-test" was not held\n'
        ), r.out
        assert store.lease("cli-test") is None

        # this very process's pid, but the lease was taken before it started: the pid was reused, the
        # watcher that took the lease is gone
        mine = f"ops@{socket.gethostname()} pid {os.getpid()}"
        assert store.acquire_lease("cli-test", mine, 30)
        with store.tx() as conn:
            conn.execute("UPDATE runbook.leases SET acquired_at = now() - interval '1 day'")
        r = migrate("unlock")
        assert r.code == 0, r.text
        assert f"; its process (pid {os.getpid()} on this host) was gone;" in r.out
    finally:
        store.close()


def test_unlock_frees_a_hung_lock_and_leaves_a_live_watchers_lease(
    rb_dir: Path, migrate: Migrate, pg_url: str
) -> None:
    assert migrate("advance", "--yes").code == 0
    code = (
        "import time\nfrom runbook.state import StateStore\nfrom runbook.actor import Actor\n"
        f"s = StateStore.open({pg_url!r})\n"
        "with s.lock('cli-test', 'rollback', Actor('bob', 'hung-box', 99, None)):\n"
        "    print('held', flush=True)\n    time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    store = StateStore.open(pg_url)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        mine = f"ops@{socket.gethostname()} pid {os.getpid()}"  # this process: a watcher still running here
        assert store.acquire_lease("cli-test", mine, 30)
        r = migrate("unlock", "--reason", "bob's rollback hung")
        assert r.code == 0, r.text
        assert r.out.startswith("Released the lock of cli-test: terminated backend "), r.out
        assert re.search(
            rf"; the watcher lease held by {re.escape(mine)} since \d\d:\d\d:\d\d UTC was left alone \(it "
            r"needs --force\)\n$",
            r.out,
        ), r.out
        assert store.lease("cli-test") is not None
    finally:
        child.kill()
        child.wait()
        store.close()

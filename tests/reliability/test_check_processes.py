"""A `command` check never leaves a process behind (issue 10, section 6): not when `migrate` is SIGKILLed
while the check runs (`advance`, verify), and not when the check ends with something still running in the
background (`gate`, monitor). Real `migrate` processes, real PostgreSQL, real SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import psutil

from tests.reliability.conftest import Home, kill, record, runbook_yaml, wait_for_file

ROUNDS = 3


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (not zombie) processes of process group `pgid`."""
    out = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return out


def gone_within(pgid: int, seconds: float, start: float) -> tuple[bool, float]:
    """Whether every process of group `pgid` is gone within `seconds` of `start`, and how long it took."""
    while time.monotonic() - start < seconds:
        if not group_members(pgid):
            return True, time.monotonic() - start
        time.sleep(0.02)
    return False, seconds


def cleanup(pgid: int) -> None:
    for proc in group_members(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)


def check(name: str, run: str) -> str:
    return f'      - name: {name}\n        kind: command\n        shell: true\n        run: "{run}"\n'


def test_sigkill_of_migrate_during_verify_leaves_no_process(home: Home) -> None:
    """The check is `sh -c 'echo $$ > FILE; sleep 30; echo done'`: a shell and its `sleep` child, so a
    watchdog that only killed the direct child would still leave `sleep` behind."""
    worst = 0.0
    for i in range(ROUNDS):
        marker = home.dir / f"check-{i}.pid"
        home.write(runbook_yaml(verify_extra=check("slow", f"echo $$ > {marker}; sleep 30; echo done")))
        if i:
            assert home.run("rollback", "--yes", "--reason", "next round").code in (0, 1, 4)
        proc = home.popen("advance", "--yes")
        pgid = os.getpgid(int(wait_for_file(marker, proc, timeout=60)))  # the watchdog's group
        assert pgid != os.getpgid(proc.pid)
        assert group_members(pgid), "the check is not running"
        killed = time.monotonic()
        kill(proc)
        try:
            gone, took = gone_within(pgid, 5.0, killed)
            assert gone, f"left behind: {[p.cmdline() for p in group_members(pgid)]}"
        finally:
            cleanup(pgid)
        worst = max(worst, took)
    record(
        f"RELIABILITY check processes: {ROUNDS} SIGKILLs of `migrate advance` during a verify command "
        f"(sh + sleep 30): 0 left behind, the group gone within {worst * 1000:.0f} ms of the kill"
    )


def test_a_check_that_ends_kills_what_it_left_running(home: Home, tmp_path: Path) -> None:
    marker = tmp_path / "background.pid"
    monitor = check("bg", f"sleep 30 >/dev/null 2>&1 & echo $! > {marker}; echo 0")
    text = runbook_yaml().replace("  - id: legacy\n", "  - id: legacy\n    monitor:\n" + monitor, 1)
    home.write(text)
    ran = home.run("gate")
    assert ran.code == 0, ran.text
    pid = int(marker.read_text())
    try:
        deadline = time.monotonic() + 5
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the background sleep of the check is still running"
            time.sleep(0.02)
    finally:
        if psutil.pid_exists(pid):
            os.kill(pid, signal.SIGKILL)

"""The commands of the flag backends never leave a process behind: the dotenv backend's `reload` command and
the `command` backend's `set` command, when `migrate` is SIGKILLed while they run, and a reload command that
runs past its timeout. Real `migrate` processes, real PostgreSQL, real SIGKILL; each command is
`sh -c '...; sleep 30; echo done'`, a shell and its `sleep` child (killing only the shell leaves `sleep`)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import psutil

from tests.reliability.conftest import Home, kill, record, runbook_yaml, wait_for_file

ROUNDS = 2
SLOW = 'if [ -n \\"$SLOW_MARKER\\" ]; then echo $$ > \\"$SLOW_MARKER\\"; sleep 30; echo done; fi'
"""Slow only when `migrate` runs with SLOW_MARKER set (the re-run after each kill runs it fast)."""


def dotenv(timeout: str = "60s") -> str:
    return (
        "  flags:\n    type: dotenv\n    path: app.env\n    reload_shell: true\n"
        f'    reload: ["{SLOW}"]\n    reload_timeout: {timeout}\n'
    )


def command_flags(store: Path) -> str:
    return (
        "  flags:\n    type: command\n    shell: true\n"
        f'    get: "cat {store}/{{name}} 2>/dev/null || true"\n'
        f'    set: "printf %s {{value}} > {store}/{{name}}; {SLOW}"\n'
    )


def started(marker: Path) -> list[psutil.Process]:
    """The shell whose pid is in `marker` and everything it started, once its `sleep` runs."""
    shell = psutil.Process(int(marker.read_text()))
    deadline = time.monotonic() + 10
    while not shell.children(recursive=True):
        assert time.monotonic() < deadline, "the command's sleep never started"
        time.sleep(0.02)
    return [shell, *shell.children(recursive=True)]


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
    return out


def gone_within(procs: list[psutil.Process], seconds: float) -> list[str]:
    """Wait up to `seconds` for `procs` to end; the command lines of those still running (then killed)."""
    deadline = time.monotonic() + seconds
    while alive(procs) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = []
    for p in alive(procs):
        with contextlib.suppress(psutil.Error):
            left.append(" ".join(p.cmdline()))
            p.kill()
    return left


def sigkill_during_writes(home: Home, flags: str, rounds: int, tag: str) -> int:
    """`rounds` times: `migrate advance` (rollback, in odd rounds) killed while its slow flag command runs;
    the processes left behind after 5 s."""
    home.write(runbook_yaml(flags=flags))
    left_behind = 0
    for i in range(rounds):
        marker = home.dir / f"{tag}-{i}.pid"
        args = ("rollback", "--yes", "--reason", "r") if i % 2 else ("advance", "--yes")
        proc = home.popen(*args, extra={"SLOW_MARKER": str(marker)})
        wait_for_file(marker, proc, timeout=60)
        procs = started(marker)
        kill(proc)
        left = gone_within(procs, 5.0)
        assert not left, f"left behind after SIGKILL of `migrate {args[0]}`: {left}"
        left_behind += len(left)
        done = home.run(*args)  # the interrupted transition again, fast: the next round moves on from it
        assert done.code in (0, 4), done.text
    return left_behind


def test_sigkill_during_a_dotenv_reload_or_command_set_leaves_no_process(home: Home, tmp_path: Path) -> None:
    left = sigkill_during_writes(home, dotenv(), ROUNDS, "reload")
    store = tmp_path / "store"
    store.mkdir()
    left += sigkill_during_writes(home, command_flags(store), ROUNDS, "set")
    record(f"RELIABILITY flag commands: {2 * ROUNDS} SIGKILLs during reload/set commands: {left} left behind")


def test_a_reload_that_times_out_leaves_no_process(home: Home) -> None:
    home.write(runbook_yaml(flags=dotenv("1s")))
    marker = home.dir / "reload.pid"
    proc = home.popen("advance", "--yes", extra={"SLOW_MARKER": str(marker)})
    wait_for_file(marker, proc, timeout=60)
    procs = started(marker)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, out + err
    assert "did not finish within 1s" in out + err, out + err
    left = gone_within(procs, 2.0)
    assert not left, f"left behind by the timed-out reload: {left}"

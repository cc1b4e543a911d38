"""Run a program in a process group of its own that never outlives the call, nor `migrate` itself.

The program starts a new process group (its pid is the group id). A watchdog, `/bin/sh` in the same group,
waits on a pipe whose only writer is this process: when `migrate` dies, even by SIGKILL, the kernel closes the
pipe, the watchdog reads end-of-file and kills the whole group (the shell, `sleep` and anything else the
program started). When the call ends in any other way (done, timed out, an exception, SIGTERM handled as an
exception) the group is killed here, so no descendant is left behind either way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping

_WATCHDOG = 'read _; kill -s KILL -- "-$1" 2>/dev/null'
"""`read` (of the pipe, its stdin) returns at end of file: this process is gone, or done with the group."""


def run_in_group(
    argv: str | list[str], *, shell: bool, cwd: str | None, env: Mapping[str, str], timeout: float
) -> tuple[int, str, str]:
    """Run `argv`; its exit status, stdout and stderr. On timeout raise `subprocess.TimeoutExpired`. The
    program's whole process group is killed when this returns or raises, and by the watchdog if this
    process is killed."""
    with subprocess.Popen(
        argv,
        shell=shell,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        process_group=0,  # not a new session: the watchdog may only join a group of its own session
    ) as proc:
        watchdog, alive = _watch(proc.pid)
        try:
            out, err = proc.communicate(timeout=timeout)
            return proc.returncode, out, err
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            if alive is not None:
                os.close(alive)
            if watchdog is not None:
                watchdog.wait()
            if proc.returncode is None:
                proc.kill()
                proc.communicate()


def _watch(group: int) -> tuple[subprocess.Popen[bytes] | None, int | None]:
    """Start the watchdog of process group `group`; it and the write end of its pipe (to close when done).
    (None, None) when the group is already gone (the program ended at once)."""
    done, alive = os.pipe()  # not inherited by other children: only this process holds `alive`
    try:
        watchdog = subprocess.Popen(
            ["/bin/sh", "-c", _WATCHDOG, "runbook-watchdog", str(group)],
            stdin=done,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            process_group=group,
        )
    except (OSError, subprocess.SubprocessError):  # setpgid failed: the group has no member left
        os.close(alive)
        return None, None
    finally:
        os.close(done)
    return watchdog, alive

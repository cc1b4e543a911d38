"""Run a program in a process group of its own that never outlives the call, nor `migrate` itself.

A watchdog, `/bin/sh`, starts first, in a new process group (its pid is the group id), and waits on a pipe
whose only writer is this process; the program then joins that group. When `migrate` dies, even by SIGKILL,
the kernel closes the pipe, the watchdog reads end-of-file and kills the whole group (itself, the program's
shell, `sleep` and anything else the program started). The watchdog is there before the program, so there is
no moment in which the program runs unwatched (a SIGKILL between starting the program and starting its
watchdog used to leave the program running). When the call ends in any other way (done, timed out, an
exception, SIGTERM handled as an exception) the group is killed here, so no descendant is left behind either
way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping

from runbook.errors import RunbookError

_WATCHDOG = 'read _; kill -s KILL -- "-$$" 2>/dev/null'
"""`read` (of the pipe, its stdin) returns at end of file: this process is gone, or done with the group."""


class ProcessGroupError(RunbookError):
    """The program's watchdog could not be started (no program was started either)."""


def run_in_group(
    argv: str | list[str], *, shell: bool, cwd: str | None, env: Mapping[str, str], timeout: float
) -> tuple[int, str, str]:
    """Run `argv`; its exit status, stdout and stderr. On timeout raise `subprocess.TimeoutExpired`. The
    program's whole process group is killed when this returns or raises, and by the watchdog if this
    process is killed."""
    watchdog, alive = _watchdog()
    group = watchdog.pid
    try:
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
            process_group=group,  # the watchdog's: a group of this session, so the program may join it
        ) as proc:
            try:
                out, err = proc.communicate(timeout=timeout)
                return proc.returncode, out, err
            finally:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(group, signal.SIGKILL)
                if proc.returncode is None:
                    proc.kill()
                    proc.communicate()
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
        os.close(alive)
        watchdog.wait()


def _watchdog() -> tuple[subprocess.Popen[bytes], int]:
    """Start a watchdog in a process group of its own; it and the write end of its pipe (close when done)."""
    done, alive = os.pipe()  # not inherited by other children: only this process holds `alive`
    try:
        watchdog = subprocess.Popen(
            ["/bin/sh", "-c", _WATCHDOG, "runbook-watchdog"],
            stdin=done,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            process_group=0,
        )
    except OSError as exc:
        os.close(alive)
        raise ProcessGroupError(
            f"could not start /bin/sh to watch the program's processes: {exc.strerror or exc}",
            hint="runbook runs check and flag programs under /bin/sh; make sure it exists and can be run",
        ) from exc
    finally:
        os.close(done)
    return watchdog, alive

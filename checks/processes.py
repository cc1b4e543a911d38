"""Find the processes a `memory` or `uptime` check watches: by pid, by pid file, or by a command-line
pattern (a regular expression searched in the joined argv)."""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil


__all__ = ["Selector", "find", "rss"]


class NoProcess(LookupError):
    """No running process matches the selector (the message says which and why)."""


@dataclass(frozen=True)
class Selector:
    """Which processes: exactly one of `pid`, `pid_file`, `cmdline` is set."""

    pid: int | None = None
    pid_file: str | None = None
    cmdline: str | None = None

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.pid, self.pid_file, self.cmdline))

    def validate(self) -> None:
        """Raise ValueError unless at most one way is given and the pattern compiles."""
        if sum(v is not None for v in (self.pid, self.pid_file, self.cmdline)) > 1:
            raise ValueError("give only one of pid, pid_file and cmdline")
        if self.cmdline is not None:
            try:
                re.compile(self.cmdline)
            except re.error as exc:
                raise ValueError(f"cmdline: not a valid regular expression: {exc}") from None

    def describe(self) -> str:
        if self.pid is not None:
            return f"pid {self.pid}"
        if self.pid_file is not None:
            return f"the pid in {self.pid_file}"
        return f"processes matching /{self.cmdline}/"


def _read_pid(path: str) -> int:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().strip()
    except OSError as exc:
        raise NoProcess(f"cannot read pid file {path}: {exc.strerror}") from None
    if not text.isdigit():
        raise NoProcess(f"pid file {path} does not hold a pid (got {text[:20]!r})")
    return int(text)


def find(selector: Selector) -> list[psutil.Process]:
    """The running processes selected (never this process). Raises NoProcess when there are none."""
    import psutil  # on first use: loading a runbook imports every kind module

    if selector.cmdline is not None:
        pattern = re.compile(selector.cmdline)
        me = os.getpid()
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            argv = proc.info.get("cmdline") or []
            if proc.pid != me and argv and pattern.search(" ".join(argv)):
                found.append(proc)
        found = [p for p in found if _running(p)]
        if not found:
            raise NoProcess(f"no running process matches /{selector.cmdline}/")
        return found
    pid = selector.pid if selector.pid is not None else _read_pid(str(selector.pid_file))
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        where = f" (from {selector.pid_file})" if selector.pid_file else ""
        raise NoProcess(f"no process with pid {pid}{where}") from None
    if not _running(proc):
        raise NoProcess(f"process {pid} has exited")
    return [proc]


def _running(proc: psutil.Process) -> bool:
    import psutil  # on first use: loading a runbook imports every kind module

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def rss(proc: psutil.Process, children: bool = False) -> int:
    """Resident set size of `proc` in bytes (plus its descendants' when `children`); 0 if it vanished."""
    import psutil  # on first use: loading a runbook imports every kind module

    total = 0
    procs = [proc]
    if children:
        with contextlib.suppress(psutil.Error):
            procs.extend(proc.children(recursive=True))
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total

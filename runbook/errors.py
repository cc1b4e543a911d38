"""One exception root. Every error a user can see derives from `RunbookError`, carries its exit code and,
where one exists, the fix (`hint`). The CLI prints `message` and `hint`, never a traceback unless asked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runbook.exitcodes import ExitCode


class RunbookError(Exception):
    """Root of every error the toolkit raises on purpose."""

    exit_code: ExitCode = ExitCode.NOT_READY

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(RunbookError):
    """A bad command line: unknown stage, missing --reason, conflicting options."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a runbook file, located to the character."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SpecError(RunbookError):
    """The runbook file is malformed or invalid. Holds every issue found, first one first."""

    exit_code = ExitCode.USAGE

    def __init__(self, issues: Sequence[SpecIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(i) for i in self.issues) or "invalid runbook")


class ConfigError(RunbookError):
    """A setting is missing or wrong (no database URL, an unknown flag backend option)."""

    exit_code = ExitCode.USAGE


class UnreachableError(RunbookError):
    """A database, flag backend or HTTP service could not be reached."""

    exit_code = ExitCode.UNREACHABLE


class LockedError(RunbookError):
    """Another operation holds the runbook's advisory lock."""

    exit_code = ExitCode.LOCKED


class ConflictError(RunbookError):
    """The state changed under us (compare-and-set lost): someone else transitioned first."""

    exit_code = ExitCode.LOCKED


class FlagWriteError(RunbookError):
    """A flag write did not stick (read-back differs) or the backend refused it."""

    exit_code = ExitCode.UNREACHABLE


class PreemptedError(RunbookError):
    """A rollback asked the operation in flight to stop (an abort request): it stopped without committing.

    `abort` is the request (runbook.state.aborts.Abort); `step` is where the operation noticed it."""

    exit_code = ExitCode.ROLLED_BACK

    def __init__(self, abort: Any, step: str, operation: str = "the operation") -> None:
        super().__init__(
            f"{operation} preempted at {step}: {abort.describe()}; nothing was committed",
            hint="the rollback sets the flags; `migrate status` and `migrate history` show where things are",
        )
        self.abort = abort
        self.step = step
        self.operation = operation


class NotReadyError(RunbookError):
    """The transition is not allowed now: checks failed, soak not over, confirmation missing."""

    exit_code = ExitCode.NOT_READY

"""Exit codes of every `migrate` command: one enum, documented in docs/commands.md ("Exit codes"), never
re-purposed."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a `migrate` process tells its caller."""

    OK = 0
    """Done; checks passed; the migration is where it should be."""
    NOT_READY = 1
    """Checks failed or were inconclusive, or the stage is not ready to leave (soak, confirmations)."""
    USAGE = 2
    """Bad command line or runbook file; nothing was touched."""
    LOCKED = 3
    """Another operation holds the runbook's lock."""
    ROLLED_BACK = 4
    """The command rolled the migration back (automatically, or as asked)."""
    UNREACHABLE = 5
    """A database, flag backend or service the command needs could not be reached."""

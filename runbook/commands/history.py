"""`migrate history`: the audit log, newest last, with the measurements behind each decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runbook.errors import UsageError
from runbook.exitcodes import ExitCode
from runbook.operations import OPERATIONS
from runbook.result import FieldsJson
from runbook.session import Session


@dataclass
class HistoryResult(FieldsJson):
    runbook: str
    events: list[dict[str, Any]]
    operation: str | None = None
    """The operation asked for (`--operation`), if any."""
    other_events: int = 0
    """When no event of `operation` was found: how many events of other operations there are."""
    template: str = "history"
    exit_code: ExitCode = ExitCode.OK


def history(session: Session, *, limit: int = 50, operation: str | None = None) -> HistoryResult:
    """The last `limit` events (optionally of one operation, one of OPERATIONS), oldest first."""
    if operation is not None and operation not in OPERATIONS:
        raise UsageError(f"unknown operation {operation!r}", hint="operations: " + ", ".join(OPERATIONS))
    rb = session.runbook
    store = session.store()
    rows = store.events(rb.name, limit=limit, operation=operation)
    others = store.count_events(rb.name) if operation is not None and not rows else 0
    return HistoryResult(rb.name, [r.to_json() for r in rows], operation, others)

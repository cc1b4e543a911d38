"""`migrate history`: the audit log, newest last, with the measurements behind each decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runbook.exitcodes import ExitCode
from runbook.result import FieldsJson
from runbook.session import Session


@dataclass
class HistoryResult(FieldsJson):
    runbook: str
    events: list[dict[str, Any]]
    template: str = "history"
    exit_code: ExitCode = ExitCode.OK


def history(session: Session, *, limit: int = 50, operation: str | None = None) -> HistoryResult:
    """The last `limit` events (optionally of one operation), oldest first."""
    rb = session.runbook
    rows = session.store().events(rb.name, limit=limit, operation=operation)
    return HistoryResult(rb.name, [r.to_json() for r in rows])

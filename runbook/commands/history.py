"""`migrate history`: the audit log, newest last, with the measurements behind each decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runbook.exitcodes import ExitCode
from runbook.session import Session


@dataclass
class HistoryResult:
    runbook: str
    events: list[dict[str, Any]]
    template: str = "history"
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"runbook": self.runbook, "events": self.events}


def history(session: Session, *, limit: int = 50, operation: str | None = None) -> HistoryResult:
    """The last `limit` events (optionally of one operation), oldest first."""
    rb = session.runbook
    rows = session.store().events(rb.name, limit=limit, operation=operation)
    return HistoryResult(rb.name, [r.to_json() for r in rows])

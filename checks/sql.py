"""`sql`: a read-only query returning one value or row, and a condition on it."""

from __future__ import annotations

from dataclasses import dataclass

from runbook.checks.base import CheckContext, CheckKind, Measurement
from runbook.model import doc


@dataclass(frozen=True)
class SqlParams:
    query: str = doc("a query returning one row; its first column is the value", "")
    expect: tuple[str, ...] = doc('conditions on the row: "value == 0", "failed <= 3"', ())
    url: str | None = doc("database; default: settings.database.url", None)


def measure(params: SqlParams, ctx: CheckContext) -> Measurement:
    raise NotImplementedError


KIND = CheckKind(name="sql", params=SqlParams, measure=measure, summary="a query and a condition")

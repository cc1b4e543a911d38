"""One statement per round trip, always: every query the toolkit sends goes over PostgreSQL's extended
protocol, which refuses a string holding several statements.

psycopg 3 sends a query with the simple protocol (libpq's PQsendQuery, which runs every statement of the
string: `...; COMMIT; BEGIN READ WRITE; DELETE ...`) when it has no bound parameters, is not prepared, asks
for text results and is outside a pipeline; otherwise PQsendQueryParams (the extended protocol, one
statement). Text that reaches the server from a runbook (a `sql` check's query, a legacy `filter:`) would
then be able to end the read-only transaction and write. `SingleStatementCursor` removes that branch: it is
the cursor factory of every connection opened by `runbook.db.connect`, so `conn.execute(...)` and
`conn.cursor().execute(...)` always take the extended protocol, whatever the parameters.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg._queries import PostgresQuery
from psycopg.rows import Row

__all__ = ["SEVERAL_STATEMENTS", "SingleStatementCursor", "several_statements", "uses_extended_protocol"]

SEVERAL_STATEMENTS = (
    "holds several statements (refused: each check runs exactly one); remove the `;` and what follows it"
)
"""How a check explains the server's refusal of a multi-statement string, with the fix."""


class SingleStatementCursor(psycopg.Cursor[Row]):
    """A psycopg cursor that never uses the simple query protocol (so never runs two statements)."""

    def _execute_send(
        self,
        query: PostgresQuery,
        *,
        force_extended: bool = False,
        binary: bool | None = None,
    ) -> None:
        super()._execute_send(query, force_extended=True, binary=binary)


def several_statements(exc: BaseException) -> bool:
    """Tell whether `exc` is the server refusing several statements in one extended-protocol query."""
    return isinstance(exc, psycopg.errors.SyntaxError) and "cannot insert multiple commands" in (
        exc.diag.message_primary or ""
    )


def uses_extended_protocol(conn: psycopg.Connection[Any]) -> bool:
    """Tell whether `conn` sends every statement over the extended protocol (its cursor factory does)."""
    return issubclass(conn.cursor_factory, SingleStatementCursor)

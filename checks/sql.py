"""`sql`: a read-only query returning one value or row, and a condition on it.

The query runs on a read-only connection with the database's statement_timeout. Conditions name `value`
(the first column) or any column of the row. No row at all is INCONCLUSIVE by default (nothing to judge
yet; `no_row` changes that); a SQL error or a timeout is ERROR with the server's message; a condition that
does not hold is FAIL. Named placeholders `%(stage_entered_at)s` and `%(now)s`, and any in `params`, are
bound as values, never spliced into the text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import psycopg

from runbook.checks import expect as ex
from runbook.checks.base import CheckContext, CheckKind, Measurement, Verdict
from runbook.checks.transient import retry
from runbook.db import describe_url
from runbook.errors import RunbookError
from runbook.model import doc
from runbook.onestatement import SEVERAL_STATEMENTS, several_statements
from runbook.redact import redact_url


@dataclass(frozen=True)
class SqlParams:
    query: str = doc("a query returning one row; its first column is the value", "")
    expect: tuple[str, ...] = doc('conditions on the row: "value == 0", "failed <= 3"', ())
    url: str | None = doc("database; default: settings.database.url", None)
    params: Mapping[str, str] = doc(
        "values bound to %(name)s placeholders (besides now, stage_entered_at)", factory=dict
    )
    no_row: Literal["inconclusive", "fail", "pass", "error"] = doc(
        "verdict when the query returns no row", "inconclusive"
    )
    index: str = doc(
        "the CREATE INDEX statement that bounds the query on a large table; named when the query times out",
        "",
    )

    def __post_init__(self) -> None:
        if not self.query.strip():
            raise ValueError("query: required, e.g. SELECT count(*) FROM \"Job\" WHERE status = 'PENDING'")
        ex.parse_all(self.expect)
        words = [w.upper() for w in self.index.split()[:3]]
        if self.index and words[:2] != ["CREATE", "INDEX"] and words != ["CREATE", "UNIQUE", "INDEX"]:
            raise ValueError(f"index: expected a CREATE INDEX statement, got {self.index.strip()[:40]!r}")


def jsonable(v: Any) -> Any:
    """A database value as JSON: Decimal -> int or float, timestamps -> ISO strings."""
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    return v


def sql_error(exc: psycopg.Error) -> str:
    """The first line of a server error, without passwords, e.g. `relation "Jobs" does not exist`."""
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return "canceled by statement_timeout (the query took too long)"
    if several_statements(exc):
        return f"the query {SEVERAL_STATEMENTS}"
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    text = primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return redact_url(text)


def run_query(
    ctx: CheckContext, url: str | None, query: str, bind: Mapping[str, Any] | None
) -> tuple[list[str], tuple[Any, ...] | None]:
    """Run `query` and return (column names, first row or None), retrying transient errors."""

    def once() -> tuple[list[str], tuple[Any, ...] | None]:
        with ctx.connect(url) as conn, conn.cursor() as cur:
            # bytes: the runbook's query is trusted text, not composed from values. prepare=True sends it
            # with the extended protocol, which refuses several statements (no "...; COMMIT; DELETE").
            cur.execute(query.encode(), bind, prepare=True)
            names = [c.name for c in cur.description or ()]
            row = cur.fetchone() if cur.description else None
            return names, row

    return retry(once)


def measure(params: SqlParams, ctx: CheckContext) -> Measurement:
    """Run the query and judge its row."""
    url = params.url or ctx.runbook.settings.database.url
    inputs: dict[str, Any] = {"query": params.query.strip(), "database": describe_url(url) if url else None}
    if params.expect:
        inputs["expect"] = list(params.expect)
    bind: dict[str, Any] | None = None
    if "%(" in params.query:
        bind = {"now": ctx.now(), "stage_entered_at": ctx.stage_entered_at, **params.params}
        inputs["bound"] = {k: jsonable(v) for k, v in bind.items()}
    try:
        names, row = run_query(ctx, params.url, params.query, bind)
    except psycopg.Error as exc:
        fix = ""
        if isinstance(exc, psycopg.errors.QueryCanceled) and params.index:
            fix = f"; create the index: {' '.join(params.index.split())}"
        return Measurement(Verdict.ERROR, None, f"query failed: {sql_error(exc)}{fix}", inputs)
    except RunbookError as exc:
        hint = f"; {exc.hint}" if exc.hint else ""
        return Measurement(Verdict.ERROR, None, exc.message + hint, inputs)
    if row is None:
        verdict = Verdict(params.no_row)
        return Measurement(verdict, None, "the query returned no row", inputs)
    values = {name: jsonable(v) for name, v in zip(names, row, strict=False)}
    value = jsonable(row[0]) if row else None
    document = {**values, "value": value}
    passed: list[str] = []
    failed: list[str] = []
    for assertion in ex.parse_all(params.expect):
        try:
            ok, _, text = assertion.evaluate(document)
        except ex.MissingValue:
            cols = ", ".join(names) or "none"
            return Measurement(
                Verdict.ERROR, value, f"the row has no column {assertion.path} (columns: {cols})", inputs
            )
        (passed if ok else failed).append(text)
    if not params.expect:
        return Measurement(Verdict.PASS, value, f"value = {ex.show(value)}", inputs)
    return Measurement(Verdict.FAIL if failed else Verdict.PASS, value, "; ".join(failed or passed), inputs)


KIND = CheckKind(name="sql", params=SqlParams, measure=measure, summary="a query and a condition")

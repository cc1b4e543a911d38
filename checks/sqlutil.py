"""Shared plumbing of the database check kinds: a traced read-only session, the retry-and-explain wrapper
that turns errors into `error` measurements naming the fix, thresholds, and number formatting."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from runbook.checks.base import CheckContext, Measurement, Verdict
from runbook.checks.retry import call
from runbook.errors import RunbookError
from runbook.onestatement import SEVERAL_STATEMENTS, several_statements
from runbook.units import format_duration, format_seconds

Query = sql.SQL | sql.Composed
"""Queries are always composed with psycopg.sql (identifiers quoted, values bound as parameters)."""


CATALOG = "the catalog"
"""The `table` of catalog queries: named in timeout messages, left out of a measurement's `queries`."""


class MeasureError(Exception):
    """The check could not measure (not installed, wrong layout, missing column): an `error` verdict."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class Session:
    """A connection that records every query it runs and which table it is reading (for explanations)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.queries: list[str] = []
        self.inputs: dict[str, Any] = {}
        self.table: str | None = None
        self.timeout_hint: str | None = None

    def rows(
        self,
        query: Query,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        table: str | None = None,
        timeout_hint: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run `query` and return all rows; `table` and `timeout_hint` explain a timeout if one happens."""
        if table != CATALOG:  # catalog look-ups (layout, columns, indexes) would only clutter the audit log
            self.queries.append(" ".join(query.as_string(self.conn).split()))
        self.table, self.timeout_hint = table, timeout_hint
        rows: list[tuple[Any, ...]] = self.conn.execute(query, params).fetchall()
        return rows

    def one(
        self, query: Query, params: Mapping[str, Any] | Sequence[Any] | None = None, **kw: Any
    ) -> tuple[Any, ...]:
        """Run `query` and return its single row."""
        rows = self.rows(query, params, **kw)
        return rows[0] if rows else ()

    def scalar(self, query: Query, params: Mapping[str, Any] | Sequence[Any] | None = None, **kw: Any) -> Any:
        """Run `query` and return the first column of its first row (None when no row)."""
        row = self.one(query, params, **kw)
        return row[0] if row else None


def run_measurement(
    ctx: CheckContext, url: str | None, kind: str, body: Callable[[Session], Measurement]
) -> Measurement:
    """Connect (read-only, through `ctx`), run `body`, and turn every failure into an `error` measurement.

    Named transient errors are retried (bounded, with backoff) around the whole attempt."""
    holder: list[Session] = []

    def attempt() -> Measurement:
        with ctx.connect(url) as conn:
            session = Session(conn)
            holder[:] = [session]
            return body(session)

    try:
        m = call(attempt)
    except Exception as exc:
        session = holder[0] if holder else None
        message, hint = explain_error(exc, session)
        text = f"{message}; {hint}" if hint else message
        inputs = {**(session.inputs if session else {}), "queries": session.queries if session else []}
        return Measurement(verdict=Verdict.ERROR, value=None, explanation=text, inputs=inputs, kind=kind)
    session = holder[0]
    inputs = {**session.inputs, **m.inputs, "queries": session.queries}
    return dataclasses.replace(m, inputs=inputs, kind=kind)


def explain_error(exc: BaseException, session: Session | None) -> tuple[str, str | None]:
    """Explain an error raised while measuring: a one-line message and the fix."""
    table = session.table if session and session.table else "the database"
    if isinstance(exc, MeasureError):
        return exc.message, exc.hint
    if isinstance(exc, RunbookError):
        return exc.message, exc.hint
    if isinstance(exc, pgerrors.QueryCanceled):
        hint = session.timeout_hint if session else None
        return (
            f"query on {table} was cancelled by statement_timeout "
            "(a long scan, or a lock held by another session)",
            hint
            or "raise settings.database.statement_timeout, or find the session holding a lock (pg_locks)",
        )
    if isinstance(exc, pgerrors.InsufficientPrivilege):
        return (
            f"permission denied reading {table}",
            "grant the monitoring role SELECT on it (read-only is enough)",
        )
    if several_statements(exc):
        return f"the query on {table} {SEVERAL_STATEMENTS}", "fix the check's SQL (filter:, query:) or names"
    if isinstance(exc, psycopg.Error):
        first = (str(exc).strip().splitlines() or ["database error"])[0]
        state = f" [{exc.sqlstate}]" if exc.sqlstate else ""
        return f"query on {table} failed{state}: {first}", None
    return f"{type(exc).__name__}: {exc}", None


# --- thresholds and formatting ----------------------------------------------------------------------


def judge(
    value: float, *, max: float | None, min: float | None, fmt: Callable[[float], str] | None = None
) -> tuple[Verdict, str]:
    """Compare `value` with the thresholds: the verdict and the comparison text (`> max 0.05`; empty
    when no threshold is set: the check then only reports the value)."""
    f = fmt or num
    if max is not None and value > max:
        return Verdict.FAIL, f"> max {f(max)}"
    if min is not None and value < min:
        return Verdict.FAIL, f"< min {f(min)}"
    parts = [f"<= max {f(max)}" if max is not None else "", f">= min {f(min)}" if min is not None else ""]
    return Verdict.PASS, " and ".join(p for p in parts if p)


def thresholds(max: float | None, min: float | None) -> dict[str, float]:
    """Collect the thresholds that are set, for a measurement's inputs."""
    return {k: v for k, v in (("max", max), ("min", min)) if v is not None}


def num(x: float | int | None) -> str:
    """Format a number: `3`, `0.333`, `12.5` (three decimals at most, no trailing zeros; `6.7e-06` for
    values too small to show that way, so a tiny error rate never reads as 0)."""
    if x is None:
        return "none"
    if float(x).is_integer():
        return str(int(x))
    if abs(x) < 0.0005:
        return f"{x:.2g}"
    return f"{x:.3f}".rstrip("0").rstrip(".")


def ratio_text(x: float, *limits: float | None) -> str:
    """Format a ratio with two decimals (`1.10`), more (up to the four it is judged at) where two would hide
    it: a small ratio that would read `0.00` (`0.004`), or one that two decimals would put on the other side
    of, or on, a limit (`1.004, above the max 1.0`, never `1.00, above the max 1.0`)."""

    def side(a: float, b: float) -> int:
        return (a > b) - (a < b)

    digits = 2
    while digits < 4 and x != 0 and round(x, digits) == 0:
        digits += 1
    bounds = [b for b in limits if b is not None]
    while digits < 4 and any(side(round(x, digits), b) != side(x, b) for b in bounds):
        digits += 1
    return f"{x:.{digits}f}"


seconds = format_seconds
"""Format a duration for explanations: `3.85s` below a minute, `5m 3s` above (as values are rendered)."""


def window_text(window: float, since_stage: bool) -> str:
    """Describe a window: `in the last 1h` (and `since the stage was entered` when clipped)."""
    text = f"in the last {format_duration(window)}"
    return f"{text} (not before the stage was entered)" if since_stage else text


def aware(at: dt.datetime | None) -> dt.datetime | None:
    """Make a datetime timezone-aware (a naive one is taken as UTC, as the engine's clock is)."""
    if at is None or at.tzinfo is not None:
        return at
    return at.replace(tzinfo=dt.UTC)


def check_percentile(p: float) -> None:
    """Raise ValueError unless 0 < p < 100."""
    if not 0 < p < 100:
        raise ValueError(f"percentile must be between 0 and 100 (exclusive), got {p}")


def check_units(metric: str, unit: str, **limits: float | None) -> None:
    """Raise ValueError when a limit was written as a duration or a size the metric is not measured in
    (`unit`: "duration", "size" or "" for counts and ratios); a plain number is in the metric's unit."""
    for name, value in limits.items():
        written = getattr(value, "unit", "")
        if not written or written == unit:
            continue
        ratio = metric == "error_rate"
        want = {"duration": "a duration like 1d or seconds", "size": "a size like 100MB or bytes"}.get(
            unit, "a plain number like 0.05" if ratio else "a plain number"
        )
        measured = {"duration": "a duration", "size": "a size"}.get(
            unit, "a ratio (failed / finished)" if ratio else "a count"
        )
        raise ValueError(f"{name} is a {written} but metric {metric} measures {measured}: write {want}")


def check_thresholds(max: float | None, min: float | None) -> None:
    """Raise ValueError when min is above max."""
    if max is not None and min is not None and min > max:
        raise ValueError(f"min ({num(min)}) is above max ({num(max)}): no value can pass")

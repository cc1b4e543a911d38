"""One function per `legacy` metric: build the query (identifiers quoted, values bound in order), guard
against unindexed scans of a large table, judge and explain."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from psycopg import sql

from runbook.checks.base import Measurement, Verdict
from runbook.checks.legacy_table import LegacyTable
from runbook.checks.rates import judge_rate
from runbook.checks.sqlutil import Session, aware, judge, num, seconds, thresholds, window_text
from runbook.units import count, format_duration

if TYPE_CHECKING:
    from runbook.checks.legacy import LegacyParams

MetricFn = Callable[[Session, LegacyTable, "LegacyParams", dt.datetime | None], Measurement]
ROLES: dict[str, tuple[str, ...]] = {
    "counts": ("status",),
    "drained": ("status",),
    "created_since": ("created",),
    "stale_running": ("status", "started"),
    "error_rate": ("status", "completed"),
    "processing_time": ("status", "started", "completed"),
}
"""The mapped columns each metric reads (verified to exist before querying)."""


class Query:
    """SQL text and its positional parameters, assembled in order."""

    def __init__(self) -> None:
        self.parts: list[sql.Composable] = []
        self.params: list[Any] = []

    def add(self, part: sql.Composable | str, *params: Any) -> Query:
        self.parts.append(sql.SQL(part) if isinstance(part, str) else part)
        self.params.extend(params)
        return self

    def where(self, table: LegacyTable, *conditions: tuple[sql.Composable, list[Any]]) -> Query:
        """` WHERE c1 AND c2 AND <row filter>`."""
        self.add(" WHERE ")
        for cond, params in conditions:
            self.add(cond, *params).add(" AND ")
        cond, params = table.row_filter()
        return self.add(cond, *params)

    def run(self, session: Session, table: LegacyTable, hint: str | None) -> list[tuple[Any, ...]]:
        return session.rows(sql.Composed(self.parts), self.params, table=table.name, timeout_hint=hint)


def _selection(table: LegacyTable) -> str:
    bits = [f"type {table.type_value}"] if table.type_value is not None else []
    if table.settings.filter or table.extra_filter:
        bits.append("filtered")
    return f" ({', '.join(bits)})" if bits else ""


def _status_counts(
    s: Session, table: LegacyTable, p: LegacyParams, groups: tuple[str, ...]
) -> dict[str, int]:
    active_only = set(groups) <= {"pending", "running"}
    table.guard_scan("status", active_only=active_only, limit=p.scan_limit_rows, allow=p.allow_scan)
    hint = f"create the index: {table.index_statement('status', active_only=active_only)}"
    q = Query().add(sql.SQL("SELECT {}::text, count(*) FROM {}").format(table.col("status"), table.ident))
    q.where(table, table.status_in(*groups)).add(" GROUP BY 1")
    return {str(v): int(n) for v, n in q.run(s, table, hint)}


def _judged(
    value: float, what: str, max: float | None, min: float | None, *, fmt: Any = num, **inputs: Any
) -> Measurement:
    verdict, cmp = judge(value, max=max, min=min, fmt=fmt)
    inputs.update(thresholds(max, min))
    return Measurement(
        verdict=verdict, value=value, explanation=f"{what} {cmp}" if cmp else what, inputs=inputs
    )


def counts(s: Session, table: LegacyTable, p: LegacyParams, entered: dt.datetime | None) -> Measurement:
    by_value = _status_counts(s, table, p, p.status)
    shown = ", ".join(f"{v} {by_value.get(v, 0)}" for v in table.values(*p.status))
    value = sum(by_value.values())
    what = f"legacy rows in {table.name}{_selection(table)}: {shown} ({' + '.join(p.status)} = {value})"
    m = _judged(value, what, p.max, p.min, counts=by_value, groups=list(p.status))
    return Measurement(
        verdict=m.verdict, value=value, explanation=m.explanation, inputs=m.inputs, unit="rows"
    )


def drained(s: Session, table: LegacyTable, p: LegacyParams, entered: dt.datetime | None) -> Measurement:
    by_value = _status_counts(s, table, p, ("pending", "running"))
    pending = sum(by_value.get(v, 0) for v in table.values("pending"))
    running = sum(by_value.get(v, 0) for v in table.values("running"))
    value = pending + running
    where = f"{table.name}{_selection(table)}"
    if value == 0:
        verdict, text = Verdict.PASS, f"legacy table {where} drained: 0 pending, 0 running"
    else:
        verdict = Verdict.FAIL if p.strict else Verdict.INCONCLUSIVE
        text = f"legacy table {where} not drained yet: {pending} pending, {running} running"
    inputs = {"pending": pending, "running": running, "strict": p.strict}
    return Measurement(verdict=verdict, value=value, explanation=text, inputs=inputs, unit="rows")


def created_since(
    s: Session, table: LegacyTable, p: LegacyParams, entered: dt.datetime | None
) -> Measurement:
    if entered is None:
        return Measurement(
            verdict=Verdict.INCONCLUSIVE,
            value=None,
            explanation="no stage entered yet: nothing to count since",
        )
    table.guard_scan("created", active_only=False, limit=p.scan_limit_rows, allow=p.allow_scan)
    entered = aware(entered) or entered
    cond = (sql.SQL("{} >= {}").format(table.col("created"), table.instant("created")), [entered])
    q = Query().add(sql.SQL("SELECT count(*) FROM {}").format(table.ident)).where(table, cond)
    value = int(q.run(s, table, f"create the index: {table.index_statement('created')}")[0][0])
    since = entered.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    what = f"{count(value, 'legacy row')}{_selection(table)} created since the stage was entered ({since})"
    m = _judged(value, what, p.effective_max, p.min, since=entered.isoformat())
    text = m.explanation
    if m.verdict is Verdict.FAIL and p.effective_max is not None:
        text += ": the app still writes jobs to the legacy table"
    return Measurement(verdict=m.verdict, value=value, explanation=text, inputs=m.inputs, unit="rows")


def stale_running(
    s: Session, table: LegacyTable, p: LegacyParams, entered: dt.datetime | None
) -> Measurement:
    after = p.stale_after if p.stale_after is not None else table.settings.stale_after
    table.guard_scan("status", active_only=True, limit=p.scan_limit_rows, allow=p.allow_scan)
    started, now = table.col("started"), table.now("started")
    late = (sql.SQL("{} < {} - %s * interval '1 second'").format(started, now), [after])
    q = Query().add(
        sql.SQL("SELECT count(*), coalesce(extract(epoch FROM {} - min({})), 0)::float8 FROM {}").format(
            now, started, table.ident
        )
    )
    q.where(table, table.status_in("running"), late)
    value, oldest = q.run(s, table, f"create the index: {table.index_statement('status', active_only=True)}")[
        0
    ]
    rows = count(value, "running legacy row")
    what = f"{rows}{_selection(table)} started more than {format_duration(after)} ago"
    if value:
        what += f" (oldest {seconds(float(oldest))}: a crashed worker?)"
    m = _judged(int(value), what, p.effective_max, p.min, stale_after=after)
    return Measurement(
        verdict=m.verdict, value=int(value), explanation=m.explanation, inputs=m.inputs, unit="rows"
    )


def _window(
    table: LegacyTable, p: LegacyParams, entered: dt.datetime | None
) -> tuple[sql.Composable, list[Any]]:
    since = entered if p.since_stage else None
    start = sql.SQL("greatest({} - %s * interval '1 second', {})").format(
        table.now("completed"), table.instant("completed")
    )
    return sql.SQL("{} >= {}").format(table.col("completed"), start), [p.window, aware(since)]


def _too_few(n: int, what: str, p: LegacyParams, value: Any) -> Measurement:
    """INCONCLUSIVE: only `n` `what`s (a singular noun: `finished legacy row`) in the window."""
    return Measurement(
        verdict=Verdict.INCONCLUSIVE,
        value=value,
        explanation=f"only {count(n, what)} {window_text(p.window, p.since_stage)} (min_jobs {p.min_jobs}): "
        "not enough to judge",
        inputs={"jobs": n, "min_jobs": p.min_jobs},
    )


def error_rate(s: Session, table: LegacyTable, p: LegacyParams, entered: dt.datetime | None) -> Measurement:
    table.guard_scan("completed", active_only=True, limit=p.scan_limit_rows, allow=p.allow_scan)
    done, done_v = table.status_in("done")
    failed, failed_v = table.status_in("failed")
    q = Query().add(sql.SQL("SELECT count(*) FILTER (WHERE {}), ").format(done), *done_v)
    q.add(sql.SQL("count(*) FILTER (WHERE {}) FROM {}").format(failed, table.ident), *failed_v)
    q.where(table, _window(table, p, entered), table.status_in("done", "failed"))
    ok, bad = (int(x) for x in q.run(s, table, f"create the index: {table.index_statement('completed')}")[0])
    total = ok + bad
    rate = bad / total if total else None
    if total < max(p.min_jobs, 1):
        return _too_few(total, "finished legacy row", p, rate)
    span = window_text(p.window, p.since_stage)
    what = f"legacy error rate {num(rate)} ({bad} failed of {total} finished{_selection(table)} {span})"
    assert rate is not None
    if p.confidence is not None:
        return judge_rate(bad, total, what, confidence=p.confidence, max=p.max, min=p.min, window=p.window)
    return _judged(rate, what, p.max, p.min, completed=ok, failed=bad, window=p.window)


def processing_time(
    s: Session, table: LegacyTable, p: LegacyParams, entered: dt.datetime | None
) -> Measurement:
    table.guard_scan("completed", active_only=True, limit=p.scan_limit_rows, allow=p.allow_scan)
    started, completed = table.col("started"), table.col("completed")
    q = Query().add(
        sql.SQL(
            "SELECT count(*), percentile_cont(%s) WITHIN GROUP (ORDER BY extract(epoch FROM {} - {})) FROM {}"
        ).format(completed, started, table.ident),
        p.percentile / 100,
    )
    q.where(
        table,
        _window(table, p, entered),
        table.status_in("done"),
        (sql.SQL("{} IS NOT NULL").format(started), []),
    )
    n, value = q.run(s, table, f"create the index: {table.index_statement('completed')}")[0]
    if int(n) < max(p.min_jobs, 1) or value is None:
        return _too_few(int(n), "completed legacy row", p, value)
    span = window_text(p.window, p.since_stage)
    what = (
        f"legacy processing time p{num(p.percentile)} {seconds(value)} over {count(int(n), 'completed row')}"
        f"{_selection(table)} {span}"
    )
    m = _judged(
        float(value), what, p.max, p.min, fmt=seconds, jobs=int(n), percentile=p.percentile, window=p.window
    )
    return Measurement(
        verdict=m.verdict, value=float(value), explanation=m.explanation, inputs=m.inputs, unit="s"
    )


def processing_times(
    s: Session, table: LegacyTable, p: LegacyParams, entered: dt.datetime | None, limit: int
) -> list[float]:
    """The processing times (seconds) behind metric processing_time: the latest `limit` in its window."""
    table.guard_scan("completed", active_only=True, limit=p.scan_limit_rows, allow=p.allow_scan)
    started, completed = table.col("started"), table.col("completed")
    q = Query().add(
        sql.SQL("SELECT extract(epoch FROM {} - {})::float8 FROM {}").format(completed, started, table.ident)
    )
    q.where(
        table,
        _window(table, p, entered),
        table.status_in("done"),
        (sql.SQL("{} IS NOT NULL").format(started), []),
    )
    q.add(sql.SQL(" ORDER BY {} DESC LIMIT %s").format(completed), limit)
    return [float(r[0]) for r in q.run(s, table, f"create the index: {table.index_statement('completed')}")]


METRIC_FUNCTIONS: dict[str, MetricFn] = {
    "counts": counts,
    "drained": drained,
    "created_since": created_since,
    "stale_running": stale_running,
    "error_rate": error_rate,
    "processing_time": processing_time,
}

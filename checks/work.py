"""`work`: at least N jobs processed on the new path since the stage was entered (a pg-boss queue's
completed jobs, the v10 archive included; or legacy rows of a type). Inconclusive until reached, never a
failure: too little work means "keep soaking", not "roll back"."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from psycopg import sql

from runbook import units
from runbook.checks.base import CheckContext, CheckKind, Measurement, Verdict
from runbook.checks.legacy_metrics import Query
from runbook.checks.legacy_table import load
from runbook.checks.pgboss_layout import Layout, detect_once
from runbook.checks.pgboss_metrics import missing_queue
from runbook.checks.pgboss_queries import INTERNAL_PREFIX, finished_count, queue_row, window_index_hint
from runbook.checks.sqlutil import Session, aware, run_measurement
from runbook.model import doc

__all__ = ["COUNT_CAP", "KIND", "WorkParams", "measure"]

COUNT_CAP = 10_000
"""Jobs are counted exactly up to this many (or min_jobs, if larger); past it the count says `at least`."""


@dataclass(frozen=True)
class WorkParams:
    source: Literal["pgboss", "legacy"] = doc(
        "where the work is counted: pgboss (a queue's completed jobs) or legacy (rows of the legacy table)",
        "pgboss",
    )
    queue: str | None = doc("pgboss: the queue", None)
    type: str | None = doc("legacy: only rows of this type (needs settings.legacy.type_column)", None)
    filter: str | None = doc("legacy: extra SQL condition on the rows", None)
    min_jobs: int = doc("jobs that must be processed since the stage was entered; inconclusive until then", 1)
    include_failed: bool = doc("count failed jobs as processed too (default: completed only)", False)
    schema: str | None = doc("pgboss: schema; default settings.pgboss.schema", None)
    url: str | None = doc(
        "database; default settings.pgboss.url or settings.legacy.url, then settings.database.url", None
    )

    def __post_init__(self) -> None:
        if self.source not in ("pgboss", "legacy"):
            raise ValueError(f"source must be pgboss or legacy, got {self.source!r}")
        if self.source == "pgboss" and not self.queue:
            raise ValueError("source pgboss needs a queue (the name given to createQueue/send)")
        if self.queue and self.queue.startswith(INTERNAL_PREFIX):
            raise ValueError(f"queue {self.queue!r} is internal to pg-boss; name one of the app's queues")
        if self.source == "legacy" and self.queue:
            raise ValueError("queue applies to source pgboss; select legacy rows with type or filter")
        if self.source == "pgboss" and (self.type or self.filter):
            raise ValueError("type and filter apply to source legacy; name the pg-boss queue instead")
        if self.min_jobs < 1:
            raise ValueError(f"min_jobs must be at least 1, got {self.min_jobs}")


def measure(params: WorkParams, ctx: CheckContext) -> Measurement:
    """Count the jobs processed since the stage was entered; pass once `min_jobs` is reached."""
    entered = ctx.stage_entered_at
    if entered is None:
        return Measurement(
            verdict=Verdict.INCONCLUSIVE,
            value=0,
            explanation="no stage entered yet: no work to count",
            kind="work",
        )
    settings = ctx.runbook.settings
    if params.source == "pgboss":
        schema = params.schema or settings.pgboss.schema
        url = params.url or settings.pgboss.url
        return run_measurement(
            ctx, url, "work", lambda s: _pgboss(s, params, schema, entered, detect_once(ctx, s, url, schema))
        )
    url = params.url or settings.legacy.url
    return run_measurement(ctx, url, "work", lambda s: _legacy(s, params, ctx, entered))


def _judge(count: int, what: str, params: WorkParams) -> Measurement:
    done = count >= params.min_jobs
    text = f"{what} (need {params.min_jobs})"
    if not done:
        text += ": keep soaking"
    verdict = Verdict.PASS if done else Verdict.INCONCLUSIVE
    return Measurement(
        verdict=verdict, value=count, explanation=text, unit="jobs", inputs={"min_jobs": params.min_jobs}
    )


def _pgboss(s: Session, params: WorkParams, schema: str, entered: dt.datetime, layout: Layout) -> Measurement:
    assert params.queue is not None
    s.inputs.update(layout.describe(), source="pgboss", queue=params.queue, since=entered.isoformat())
    info = queue_row(s, layout, params.queue)
    if info is None:
        return Measurement(verdict=Verdict.INCONCLUSIVE, value=0, explanation=missing_queue(params.queue))
    states = ("completed", "failed") if params.include_failed else ("completed",)
    cap = count_cap(params)
    hint = window_index_hint(layout, info)
    count = finished_count(s, layout, params.queue, entered, states, cap, hint=hint)
    return _judge(
        count,
        f"{units.count(_shown(count, cap), 'job')} {' or '.join(states)} in pg-boss queue {params.queue} "
        "since the stage was entered",
        params,
    )


def _legacy(s: Session, params: WorkParams, ctx: CheckContext, entered: dt.datetime) -> Measurement:
    settings = ctx.runbook.settings.legacy
    table = load(s, settings, ("status", "completed"), type_value=params.type, extra_filter=params.filter)
    s.inputs.update(source="legacy", table=table.name, type=params.type, since=entered.isoformat())
    groups = ("done", "failed") if params.include_failed else ("done",)
    since = (sql.SQL("{} >= {}").format(table.col("completed"), table.instant("completed")), [aware(entered)])
    cap = count_cap(params)
    q = Query().add(sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {}").format(table.ident))
    q.where(table, table.status_in(*groups), since).add(" LIMIT %s) AS f", cap)
    count = int(q.run(s, table, f"create the index: {table.index_statement('completed')}")[0][0])
    kind = f" of type {params.type}" if params.type else ""
    return _judge(
        count,
        f"{units.count(_shown(count, cap), 'legacy row')}{kind} processed since the stage was entered",
        params,
    )


def count_cap(params: WorkParams) -> int:
    """Count at most this many jobs: exact up to COUNT_CAP (or min_jobs if larger), `at least` beyond."""
    return max(COUNT_CAP, params.min_jobs)


def _shown(count: int, cap: int) -> str:
    return f"at least {count}" if count >= cap else str(count)


KIND = CheckKind(
    name="work",
    params=WorkParams,
    measure=measure,
    summary="at least N jobs processed on the new path since the stage was entered",
)

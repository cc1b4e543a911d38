"""The INSERT of a batch of jobs as pg-boss itself writes it (`insertJobs` in pg-boss 10.4 `src/plans.js` and
12.38 `dist/plans.js`): the same columns, the same defaults taken from the queue row (retry, expiry,
retention, dead letter, policy), `ON CONFLICT DO NOTHING` on the deterministic id. Cached queue counters are
not touched: pg-boss's own insert does not touch them either (a supervising instance refreshes them).

v12 grew columns across its minor releases, so a column is written only when the job table has it, and a queue
setting is read only when the queue table has it.

One deliberate difference: pg-boss keeps a job until its start-after plus the queue's retention, so a legacy
row overdue by more than the retention (a start-after column 20 days old, retention 14 days) would be written
already past its keep-until, and pg-boss's maintenance deletes created jobs past it before any worker runs
them. A moved job is kept from now when its start-after is past."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from psycopg import sql

from runbook.transfer.mapping import Mapping

V12_DEFAULTS = {"expire_seconds": 900, "deletion_seconds": 7 * 86400, "retention_seconds": 14 * 86400}
"""QUEUE_DEFAULTS of pg-boss 12.38 (dist/plans.js)."""


def insert_statement(m: Mapping, source: sql.Composable) -> sql.Composed:
    """INSERT ... SELECT FROM `source` (columns id, data, "startAfter": runbook.transfer.legacy_sql's
    jobs_source) JOIN queue ... ON CONFLICT DO NOTHING RETURNING id. The mapping's job options are the same
    for every job of a transfer, so they are literals of the statement."""
    ts, layout = m.settings, m.layout
    now = sql.SQL("{}.job_now()").format(sql.Identifier(layout.schema)) if m.has_job_now else sql.SQL("now()")
    columns = _v10_columns(now) if layout.name == "v10" else _v12_columns(m, now)
    names = sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns)
    values = sql.SQL(", ").join(sql.SQL(e) if isinstance(e, str) else e for _, e in columns)
    expire = None if ts.expire_in is None else max(1, round(ts.expire_in))
    return sql.SQL(
        "INSERT INTO {table} ({names}) SELECT {values} FROM (SELECT x.id, x.data,"
        ' {priority}::integer AS priority, x."startAfter", {retry_limit}::integer AS "retryLimit",'
        ' {retry_delay}::integer AS "retryDelay", {expire}::integer AS "expireInSeconds",'
        ' COALESCE(x."startAfter", {now}) AS start_after FROM {source} x) j'
        " JOIN {queue} q ON q.name = %(name)s ON CONFLICT DO NOTHING RETURNING id"
    ).format(
        table=layout.table(m.queue.table),
        names=names,
        values=values,
        priority=sql.Literal(ts.priority),
        retry_limit=sql.Literal(ts.retry_limit),
        retry_delay=sql.Literal(ts.retry_delay),
        expire=sql.Literal(expire),
        now=now,
        source=source,
        queue=layout.table("queue"),
    )


def not_returned(ids: Sequence[Any], returned: Sequence[Sequence[Any]]) -> list[Any]:
    """The ids an `INSERT ... RETURNING id` did not write now: already there (an earlier run) or refused (a
    singleton key, a policy). Only these need looking up; on a first run the list is empty and the batch
    skips the lookup (half of a batch's time on pg-boss 12)."""
    written = {str(r[0]) for r in returned}
    return [i for i in ids if str(i) not in written]


def present_statement(m: Mapping) -> sql.Composed:
    """Count how many of the ids the insert did not write the queue holds (written by an earlier run)."""
    return sql.SQL("SELECT count(*) FROM {} WHERE name = %s AND id = ANY(%s::uuid[])").format(
        m.layout.table(m.queue.table)
    )


def from_queue(q: Callable[[str], str]) -> list[tuple[str, str | sql.Composable]]:
    """The v12 job columns pg-boss's own insert takes from the queue row (`q(column)`: the queue's value or
    NULL where this 12.x has no such column), and those a new job always starts with (no flow)."""
    return [
        ("policy", q("policy")),
        ("dead_letter", q("dead_letter")),
        ("heartbeat_seconds", q("heartbeat_seconds")),
        ("blocked", "false"),
        ("blocking", "false"),
        ("pending_dependencies", "0"),
    ]


def _v10_columns(now: sql.Composable) -> list[tuple[str, str | sql.Composable]]:
    return [
        ("id", "j.id"),
        ("name", "q.name"),
        ("data", "j.data"),
        ("priority", "COALESCE(j.priority, 0)"),
        ("start_after", "j.start_after"),
        ("dead_letter", "q.dead_letter"),
        (
            "expire_in",
            'CASE WHEN j."expireInSeconds" IS NOT NULL THEN j."expireInSeconds"::numeric * interval \'1s\''
            " WHEN q.expire_seconds IS NOT NULL THEN q.expire_seconds * interval '1s'"
            " ELSE interval '15 minutes' END",
        ),
        (
            "keep_until",
            sql.SQL(
                "GREATEST(j.start_after, {})"
                " + CAST(COALESCE((q.retention_minutes * 60)::text, '14 days') AS interval)"
            ).format(now),
        ),
        ("retry_limit", 'COALESCE(j."retryLimit", q.retry_limit, 2)'),
        (
            "retry_delay",
            "CASE WHEN COALESCE(q.retry_backoff, false)"
            ' THEN GREATEST(COALESCE(j."retryDelay", q.retry_delay), 1)'
            ' ELSE COALESCE(j."retryDelay", q.retry_delay, 0) END',
        ),
        ("retry_backoff", "COALESCE(q.retry_backoff, false)"),
        ("policy", "q.policy"),
    ]


def _v12_columns(m: Mapping, now: sql.Composable) -> list[tuple[str, str | sql.Composable]]:
    qcols = m.layout.queue_columns

    def q(column: str) -> str:
        return f"q.{column}" if column in qcols else "NULL"

    wanted: list[tuple[str, str | sql.Composable]] = [
        ("id", "j.id"),
        ("name", "q.name"),
        ("data", "j.data"),
        ("priority", "COALESCE(j.priority, 0)"),
        ("start_after", "j.start_after"),
        ("created_on", now),
        (
            "expire_seconds",
            f'COALESCE(j."expireInSeconds", {q("expire_seconds")}, {V12_DEFAULTS["expire_seconds"]})',
        ),
        ("deletion_seconds", f"COALESCE({q('deletion_seconds')}, {V12_DEFAULTS['deletion_seconds']})"),
        (
            "keep_until",
            sql.SQL(
                "GREATEST(j.start_after, {}) + COALESCE("
                + q("retention_seconds")
                + ", "
                + str(V12_DEFAULTS["retention_seconds"])
                + ") * interval '1s'"
            ).format(now),
        ),
        ("retry_limit", f'COALESCE(j."retryLimit", {q("retry_limit")}, 2)'),
        ("retry_delay", f'COALESCE(j."retryDelay", {q("retry_delay")}, 0)'),
        ("retry_backoff", f"COALESCE({q('retry_backoff')}, false)"),
        ("retry_delay_max", q("retry_delay_max")),
        *from_queue(q),
    ]
    return [(c, e) for c, e in wanted if c in m.layout.job_columns]

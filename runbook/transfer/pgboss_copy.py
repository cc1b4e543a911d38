"""SQL of `migrate transfer pgboss`: claim unfinished jobs of one queue in a source pg-boss schema (10, 11 or
12 layout), write them into a target pg-boss 11 or 12 schema as pg-boss's own insert does, delete them from
the source, and the transfer ledger (runbook's state schema, in the target database) that makes a two-database
batch idempotent.

A job keeps its id, name, data, priority, state (created or retry), retry count/limit/delay/backoff, start
after, singleton key and time, expiry, creation, start and keep-until times and its output (a retry's last
error). Its start time matters: pg-boss counts a fetch as a retry (retry_count + 1) only for a job that
started before, so a retry copied without it would get one attempt more than its limit. What pg-boss 12 takes
from the queue (dead letter, policy, deletion, heartbeat) comes from the target queue row, as pg-boss 12's
insert does. An active job (only with --include-active, and only once expired) becomes a retry, ready now,
with pg-boss's timeout output, as pg-boss's own expiry makes it (its next fetch counts the retry); one with no
retry left stays in the source."""

from __future__ import annotations

from typing import LiteralString

from psycopg import sql

from runbook.checks.pgboss_layout import Layout
from runbook.transfer.pgboss_insert import V12_DEFAULTS, from_queue

RECORD = (
    "j(id uuid, name text, data jsonb, priority integer, state text, retry_limit integer,"
    " retry_count integer, retry_delay integer, retry_backoff boolean, retry_delay_max integer,"
    " expire_seconds integer, singleton_key text, singleton_on timestamp, start_after timestamptz,"
    " created_on timestamptz, keep_until timestamptz, group_id text, group_tier text, trace_context jsonb,"
    " started_on timestamptz, output jsonb)"
)
MOVABLE = "state IN ('created', 'retry')"
TIMED_OUT = '{"value": {"message": "job timed out"}}'
"""The output pg-boss 11 and 12 give a job whose expiry fails it (failJobsByTimeout)."""
CARRIED = ("retry_delay_max", "group_id", "group_tier", "trace_context")
"""Columns some 12.x releases have: copied from a source that has them, else null."""


def _where(src: Layout) -> sql.Composed:
    """Movable jobs: created or retry, or expired active ones with %(active)s; never one in a flow (pg-boss
    12 `blocked` / `blocking`: its dependencies live in job_dependency, which a transfer does not move)."""
    flows = sql.SQL(" AND NOT blocked AND NOT blocking") if "blocking" in src.job_columns else sql.SQL("")
    return sql.SQL("({} OR {}){}").format(sql.SQL(MOVABLE), _expired(src), flows)


def _expired(src: Layout) -> sql.Composable:
    return sql.SQL("(%(active)s AND state = 'active' AND retry_count < retry_limit AND {} < now())").format(
        src.expiry
    )


def claim(src: Layout, *, lock: bool) -> sql.Composed:
    """The oldest movable jobs of queue %(name)s, at most %(size)s, as (id text, json text): one JSON object
    per job with the keys of RECORD. `lock`: FOR UPDATE SKIP LOCKED (a worker's job is never taken)."""
    active = sql.SQL("state = 'active'")
    expire = (
        sql.SQL("ceil(extract(epoch FROM expire_in))::integer")
        if "expire_in" in src.job_columns
        else sql.SQL("expire_seconds")
    )
    carried = sql.SQL(", ").join(
        sql.SQL("{}, {}").format(
            sql.Literal(c), sql.Identifier(c) if c in src.job_columns else sql.SQL("NULL")
        )
        for c in CARRIED
    )
    return sql.SQL(
        "SELECT id::text, json_build_object('id', id, 'name', name, 'data', data, 'priority', priority,"
        " 'state', CASE WHEN {active} THEN 'retry' ELSE state::text END,"
        " 'retry_limit', retry_limit,"
        " 'retry_count', retry_count, 'started_on', started_on,"
        " 'output', CASE WHEN {active} THEN {timed_out}::jsonb ELSE output END,"
        " 'retry_delay', retry_delay, 'retry_backoff', retry_backoff, {carried},"
        " 'expire_seconds', {expire}, 'singleton_key', singleton_key, 'singleton_on', singleton_on,"
        " 'start_after', CASE WHEN {active} THEN now() ELSE start_after END, 'created_on', created_on,"
        " 'keep_until', keep_until)::text"
        " FROM {job} WHERE name = %(name)s AND {where}"
        " ORDER BY start_after, id LIMIT %(size)s{lock}"
    ).format(
        active=active,
        timed_out=sql.Literal(TIMED_OUT),
        carried=carried,
        expire=expire,
        job=src.table("job"),
        where=_where(src),
        lock=sql.SQL(" FOR UPDATE SKIP LOCKED") if lock else sql.SQL(""),
    )


def counts(src: Layout) -> sql.Composed:
    """(queue, state, jobs) of what would move, per queue in %(names)s."""
    return sql.SQL(
        "SELECT name, state::text, count(*) FROM {job}"
        " WHERE name = ANY(%(names)s) AND {where} GROUP BY 1, 2 ORDER BY 1, 2"
    ).format(job=src.table("job"), where=_where(src))


def sample(src: Layout) -> sql.Composed:
    """The dry run's sample: the %(size)s oldest jobs that would move of the queues %(names)s, as (id, queue,
    state, start after, data as text cut after %(chars)s + 1 characters)."""
    return sql.SQL(
        "SELECT id::text, name, state::text, start_after, left(data::text, %(chars)s + 1) FROM {job}"
        " WHERE name = ANY(%(names)s) AND {where} ORDER BY created_on, id LIMIT %(size)s"
    ).format(job=src.table("job"), where=_where(src))


def insert(dst: Layout, table: str) -> sql.Composed:
    """INSERT the JSON array %(jobs)s into queue %(name)s's table of the target (v12), ON CONFLICT DO
    NOTHING (the id: a rerun writes nothing twice), RETURNING the ids written now."""
    qcols = dst.queue_columns

    def q(column: str) -> str:
        return f"q.{column}" if column in qcols else "NULL"

    state = sql.SQL("j.state::{}").format(sql.Identifier(dst.schema, "job_state"))
    wanted: list[tuple[str, str | sql.Composable]] = [
        ("id", "j.id"),
        ("name", "q.name"),
        ("data", "j.data"),
        ("priority", "COALESCE(j.priority, 0)"),
        ("state", state),
        ("retry_limit", f"COALESCE(j.retry_limit, {q('retry_limit')}, 2)"),
        ("retry_count", "COALESCE(j.retry_count, 0)"),
        ("retry_delay", f"COALESCE(j.retry_delay, {q('retry_delay')}, 0)"),
        ("retry_backoff", f"COALESCE(j.retry_backoff, {q('retry_backoff')}, false)"),
        ("retry_delay_max", f"COALESCE(j.retry_delay_max, {q('retry_delay_max')})"),
        (
            "expire_seconds",
            f"COALESCE(j.expire_seconds, {q('expire_seconds')}, {V12_DEFAULTS['expire_seconds']})",
        ),
        ("deletion_seconds", f"COALESCE({q('deletion_seconds')}, {V12_DEFAULTS['deletion_seconds']})"),
        ("singleton_key", "j.singleton_key"),
        ("singleton_on", "j.singleton_on"),
        ("start_after", "j.start_after"),
        ("created_on", "j.created_on"),
        ("started_on", "j.started_on"),
        ("output", "j.output"),
        (
            "keep_until",
            f"COALESCE(j.keep_until, j.start_after + COALESCE({q('retention_seconds')}, "
            f"{V12_DEFAULTS['retention_seconds']}) * interval '1s')",
        ),
        ("group_id", "j.group_id"),
        ("group_tier", "j.group_tier"),
        ("trace_context", "j.trace_context"),
        *from_queue(q),
    ]
    columns = [(c, e) for c, e in wanted if c in dst.job_columns]
    return sql.SQL(
        "INSERT INTO {table} ({names}) SELECT {values}"
        " FROM json_to_recordset(%(jobs)s::text::json) AS " + RECORD + " JOIN {queue} q ON q.name = %(name)s"
        " WHERE j.name = %(name)s ON CONFLICT DO NOTHING RETURNING id"
    ).format(
        table=dst.table(table),
        names=sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns),
        values=sql.SQL(", ").join(sql.SQL(e) if isinstance(e, str) else e for _, e in columns),
        queue=dst.table("queue"),
    )


def _of_batch(head: LiteralString, layout: Layout, tail: LiteralString = "") -> sql.Composed:
    """`head` over the jobs %(ids)s of queue %(name)s in `layout`'s job table, `tail` narrowing them."""
    return sql.SQL(head + " FROM {} WHERE name = %(name)s AND id = ANY(%(ids)s::uuid[])" + tail).format(
        layout.table("job")
    )


def present(dst: Layout) -> sql.Composed:
    """How many of the ids %(ids)s queue %(name)s of the target holds (written now or by an earlier run)."""
    return _of_batch("SELECT count(*)", dst)


def delete(src: Layout) -> sql.Composed:
    """Remove the copied jobs %(ids)s of queue %(name)s from the source (only while still unfinished)."""
    return _of_batch("DELETE", src, " AND state <= 'active'")


def delete_unstarted(src: Layout) -> sql.Composed:
    """Recovery: remove from the source the copied jobs %(ids)s no worker has taken since the copy."""
    return _of_batch("DELETE", src, " AND state < 'active'")


def still_there(src: Layout) -> sql.Composed:
    """Recovery: the copied jobs %(ids)s a source worker took (or finished) since the copy."""
    return _of_batch("SELECT id::text", src)


def withdraw(dst: Layout) -> sql.Composed:
    """Recovery: remove the target's copies of jobs %(ids)s a source worker took, unless started there too."""
    return _of_batch("DELETE", dst, " AND state < 'active'")


def ledger_ddl(schema: str) -> list[sql.Composed]:
    """The ledger: one row per two-database batch, `copied` once its copy committed in the target, `done`
    once the source rows are gone. Its run, number and inserted count let whoever marks it `done` count it
    for its run (runbook.transfer.audit); a ledger made by an older release gains them (null there)."""
    ledger = sql.Identifier(schema, "transfer_ledger")
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (batch_id uuid PRIMARY KEY, source text NOT NULL,"
            " target text NOT NULL, queue text NOT NULL, job_ids uuid[] NOT NULL,"
            " phase text NOT NULL CHECK (phase IN ('copied', 'done')),"
            " copied_at timestamptz NOT NULL DEFAULT now(), done_at timestamptz)"
        ).format(ledger),
        sql.SQL(
            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS run_id uuid, ADD COLUMN IF NOT EXISTS batch integer,"
            " ADD COLUMN IF NOT EXISTS inserted integer"
        ).format(ledger),
    ]


def ledger_write(schema: str) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {} (batch_id, source, target, queue, job_ids, phase, run_id, batch, inserted)"
        " VALUES (%(batch)s, %(source)s, %(target)s, %(name)s, %(ids)s::uuid[], 'copied', %(run)s,"
        " %(number)s, %(inserted)s)"
    ).format(sql.Identifier(schema, "transfer_ledger"))


def ledger_open(schema: str) -> sql.Composed:
    """Batches of this source -> target whose copy committed but whose source rows may remain: (batch id,
    queue, job ids, run id, batch number, inserted)."""
    return sql.SQL(
        "SELECT batch_id, queue, job_ids::text[], run_id::text, batch, inserted FROM {}"
        " WHERE source = %(source)s AND target = %(target)s AND phase = 'copied' ORDER BY copied_at"
    ).format(sql.Identifier(schema, "transfer_ledger"))


def ledger_done(schema: str) -> sql.Composed:
    """Mark a batch `done`; its rowcount is 0 when it already was (its own run and a recovery both try)."""
    return sql.SQL(
        "UPDATE {} SET phase = 'done', done_at = now() WHERE batch_id = %(batch)s AND phase = 'copied'"
    ).format(sql.Identifier(schema, "transfer_ledger"))

"""Queues the target of `migrate transfer pgboss` lacks, made the way pg-boss 12 makes them: its own
`create_queue(name, options)` SQL function (the one `boss.createQueue` calls) under the same advisory lock,
with the options the source queue holds (policy, retry, expiry, retention, dead letter), so the target keeps
the jobs the source would have kept. A dead-letter queue the target lacks is made first (the queue table
references it). Where the source is pg-boss 10, `retention_minutes` becomes `retentionSeconds`; the target's
own defaults fill what the source does not hold."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from runbook.checks.pgboss_layout import Layout

OPTIONS = {
    "policy": "policy",
    "retry_limit": "retryLimit",
    "retry_delay": "retryDelay",
    "retry_backoff": "retryBackoff",
    "retry_delay_max": "retryDelayMax",
    "expire_seconds": "expireInSeconds",
    "retention_seconds": "retentionSeconds",
    "deletion_seconds": "deleteAfterSeconds",
    "warning_queued": "warningQueueSize",
    "heartbeat_seconds": "heartbeatSeconds",
    "partition": "partition",
    "dead_letter": "deadLetter",
}
"""Source queue column -> createQueue option (pg-boss 12.38 `create_queue`)."""
LOCK = (
    "SELECT pg_advisory_xact_lock(('x' || encode(sha224((current_database() || '.pgboss.' || %s"
    " || 'create-queue')::bytea), 'hex'))::bit(64)::bigint)"
)
"""pg-boss 12's advisoryLockKey(schema, 'create-queue'): an app's concurrent createQueue waits for us."""


def options(src_conn: psycopg.Connection[Any], src: Layout, names: list[str]) -> dict[str, dict[str, Any]]:
    """The createQueue options of the source queues `names` (only the settings the source holds)."""
    columns = [c for c in (*OPTIONS, "retention_minutes") if c in src.queue_columns]
    query = sql.SQL("SELECT name, {} FROM {} WHERE name = ANY(%s)").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns), src.table("queue")
    )
    found: dict[str, dict[str, Any]] = {}
    for name, *values in src_conn.execute(query, (names,)).fetchall():
        row = dict(zip(columns, values, strict=True))
        minutes = row.pop("retention_minutes", None)
        if minutes is not None and row.get("retention_seconds") is None:
            row["retention_seconds"] = int(minutes) * 60
        found[name] = {OPTIONS[c]: v for c, v in row.items() if v is not None}
    return found


def plan(
    src_conn: psycopg.Connection[Any], src: Layout, missing: list[str], present: set[str]
) -> list[tuple[str, dict[str, Any]]]:
    """The queues to create, dead-letter queues first, each with its options."""
    order: list[tuple[str, dict[str, Any]]] = []
    wanted = list(missing)
    known: dict[str, dict[str, Any]] = {}
    while wanted:
        known.update(options(src_conn, src, [w for w in wanted if w not in known]))
        letters = [
            o["deadLetter"]
            for w in wanted
            if (o := known.get(w, {})).get("deadLetter") and o["deadLetter"] not in present
            and o["deadLetter"] not in known
        ]  # fmt: skip
        wanted = letters
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name in present:
            return
        done.add(name)
        letter = known.get(name, {}).get("deadLetter")
        if letter:
            visit(letter)
        order.append((name, known.get(name, {"policy": "standard"})))

    for name in missing:
        visit(name)
    return order


def existing(dst_conn: psycopg.Connection[Any], dst: Layout) -> set[str]:
    return {r[0] for r in dst_conn.execute(sql.SQL("SELECT name FROM {}").format(dst.table("queue")))}


def create(dst_conn: psycopg.Connection[Any], dst: Layout, queues: list[tuple[str, dict[str, Any]]]) -> None:
    """Create the queues in one transaction under pg-boss's createQueue lock."""
    function = sql.SQL("SELECT {}.create_queue(%s, %s::jsonb)").format(sql.Identifier(dst.schema))
    with dst_conn.transaction():
        dst_conn.execute(LOCK, (dst.schema,))
        for name, opts in queues:
            dst_conn.execute(function, (name, json.dumps(opts)))

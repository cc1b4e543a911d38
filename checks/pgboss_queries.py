"""The read-only queries behind the `pgboss` kind, one per fact, for every layout. Each filters the job table
by `name = queue` so PostgreSQL prunes to one partition; v10 windows read `job UNION ALL archive`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from runbook.checks.pgboss_layout import Layout
from runbook.checks.sqlutil import Session, aware

INTERNAL_PREFIX = "__pgboss__"
FINISHED = ("completed", "failed")


@dataclass(frozen=True)
class Window:
    """A time window ending now: `seconds` long (None = unbounded), never starting before `since`."""

    seconds: float | None
    since: dt.datetime | None = None

    def start(self) -> sql.Composable:
        """Compose the window's start; uses parameters `window` and `since`."""
        if self.seconds is None:
            return sql.SQL("%(since)s::timestamptz")
        return sql.SQL("greatest(now() - %(window)s * interval '1 second', %(since)s::timestamptz)")

    def params(self) -> dict[str, Any]:
        return {"window": self.seconds, "since": aware(self.since)}


def queue_row(session: Session, layout: Layout, queue: str) -> dict[str, Any] | None:
    """Read the queue's row (settings, cached counters, their age in seconds), or None if missing."""
    wanted = [
        "name",
        "table_name",
        "partition_name",
        "monitor_on",
        *sorted(c for c in layout.queue_columns if c.endswith("_count")),
    ]
    cols = [c for c in wanted if c in layout.queue_columns]
    age = (
        sql.SQL(", extract(epoch FROM now() - monitor_on)::float8 AS monitor_age")
        if "monitor_on" in cols
        else sql.SQL("")
    )
    query = sql.SQL("SELECT {cols}{age} FROM {queue} WHERE name = %(queue)s").format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in cols), age=age, queue=layout.table("queue")
    )
    rows = session.rows(query, {"queue": queue}, table=layout.qualified("queue"))
    if not rows:
        return None
    names = [*cols, "monitor_age"] if "monitor_on" in cols else cols
    return dict(zip(names, rows[0], strict=True))


def queue_names(session: Session, layout: Layout) -> list[str]:
    """List the app's queue names (internal `__pgboss__` queues skipped)."""
    rows = session.rows(
        sql.SQL("SELECT name FROM {} WHERE name NOT LIKE %s ORDER BY name").format(layout.table("queue")),
        (INTERNAL_PREFIX.replace("_", r"\_") + "%",),
        table=layout.qualified("queue"),
    )
    return [r[0] for r in rows]


def live_counts(session: Session, layout: Layout, queue: str) -> dict[str, int]:
    """Count the queued, ready, deferred and active jobs of `queue` now."""
    nb = layout.not_blocked
    query = sql.SQL(
        "SELECT count(*) FILTER (WHERE state < 'active'),"
        " count(*) FILTER (WHERE state < 'active'{nb} AND start_after <= now()),"
        " count(*) FILTER (WHERE state < 'active'{nb} AND start_after > now()),"
        " count(*) FILTER (WHERE state = 'active')"
        # `IN` rather than the equivalent `state <= 'active'`: pg-boss 12's partial index on live states
        # (name, state, blocked, start_after) WHERE state IN (...) is only provably usable with a list
        # (0.4 ms instead of a 0.75 s scan of 5M jobs)
        " FROM {job} WHERE name = %(queue)s AND state IN ('created', 'retry', 'active')"
    ).format(nb=nb, job=layout.table("job"))
    row = session.one(query, {"queue": queue}, table=layout.qualified("job"))
    return dict(zip(("queued", "ready", "deferred", "active"), (int(v) for v in row), strict=True))


def oldest_ready(session: Session, layout: Layout, queue: str) -> tuple[float, int]:
    """Measure the age in seconds of the oldest ready job (0 when none) and how many jobs are ready."""
    query = sql.SQL(
        "SELECT coalesce(extract(epoch FROM now() - min(greatest(created_on, start_after))), 0)::float8,"
        " count(*)"
        " FROM {job} WHERE name = %(queue)s AND state < 'active'{nb} AND start_after <= now()"
    ).format(job=layout.table("job"), nb=layout.not_blocked)
    age, count = session.one(query, {"queue": queue}, table=layout.qualified("job"))
    return float(age), int(count)


def _finished_source(
    layout: Layout, window: Window, time_column: str, states: tuple[str, ...]
) -> sql.Composable:
    """Select rows of `queue` in `states` whose `time_column` is in the window: job, plus archive on v10."""
    cols = sql.SQL("state, created_on, start_after, started_on, completed_on")
    where = sql.SQL("name = %(queue)s AND state = ANY(%(states)s) AND {col} >= {start}").format(
        col=sql.Identifier(time_column), start=window.start()
    )
    parts = [sql.SQL("SELECT {} FROM {} WHERE {}").format(cols, layout.table("job"), where)]
    if layout.has_archive:
        # A job is archived after it started and finished, so `archived_on >= start` follows from the window;
        # said explicitly, it lets the archive's own index (archive_i1 on archived_on) bound the scan
        # instead of reading the whole archive (v10 has no index on completed_on or started_on there).
        bounded = sql.SQL("{} AND archived_on >= {}").format(where, window.start())
        parts.append(sql.SQL("SELECT {} FROM {} WHERE {}").format(cols, layout.table("archive"), bounded))
    return sql.SQL(" UNION ALL ").join(parts)


def finished(
    session: Session,
    layout: Layout,
    queue: str,
    window: Window,
    percentile: float,
    *,
    hint: str | None = None,
) -> dict[str, Any]:
    """Count completed and failed jobs finished in the window; percentile of the completed ones' run time."""
    query = sql.SQL(
        "SELECT count(*) FILTER (WHERE state = 'completed'), count(*) FILTER (WHERE state = 'failed'),"
        " percentile_cont(%(p)s) WITHIN GROUP (ORDER BY extract(epoch FROM completed_on - started_on))"
        " FILTER (WHERE state = 'completed' AND started_on IS NOT NULL)"
        " FROM ({source}) AS f"
    ).format(source=_finished_source(layout, window, "completed_on", FINISHED))
    params = {"queue": queue, "states": list(FINISHED), "p": percentile / 100, **window.params()}
    completed, failed, run = session.one(query, params, table=_tables(layout), timeout_hint=hint)
    return {
        "completed": int(completed),
        "failed": int(failed),
        "run_time": None if run is None else float(run),
    }


def run_times(
    session: Session, layout: Layout, queue: str, window: Window, limit: int, *, hint: str | None = None
) -> list[float]:
    """The run times (seconds) of the jobs of `queue` completed in the window, the latest `limit` of them."""
    query = sql.SQL(
        "SELECT extract(epoch FROM completed_on - started_on)::float8 FROM ({source}) AS f"
        " WHERE state = 'completed' AND started_on IS NOT NULL ORDER BY completed_on DESC LIMIT %(limit)s"
    ).format(source=_finished_source(layout, window, "completed_on", ("completed",)))
    params = {"queue": queue, "states": ["completed"], "limit": limit, **window.params()}
    return [float(r[0]) for r in session.rows(query, params, table=_tables(layout), timeout_hint=hint)]


def finished_count(
    session: Session,
    layout: Layout,
    queue: str,
    since: dt.datetime,
    states: tuple[str, ...],
    cap: int,
    *,
    hint: str | None = None,
) -> int:
    """Jobs of `queue` in `states` that finished since `since`, counted up to `cap`: the scan stops there,
    so a soak that began days ago costs no more than one that began a minute ago."""
    window = Window(None, since)
    source = _finished_source(layout, window, "completed_on", states)
    if not layout.has_archive and has_completed_index(session, layout):
        # walk pg-boss's (name, completed_on) index and stop at `cap`: without the order, the planner may
        # choose a sequential scan that reads other queues' jobs until it finds `cap` of this one
        source = sql.SQL("{} ORDER BY completed_on DESC").format(source)
    query = sql.SQL("SELECT count(*) FROM ({source} LIMIT %(cap)s) AS f").format(source=source)
    params = {"queue": queue, "states": list(states), "cap": cap, **window.params()}
    return int(session.scalar(query, params, table=_tables(layout), timeout_hint=hint))


def has_completed_index(session: Session, layout: Layout) -> bool:
    """Whether a valid index of the schema's job tables leads with (name, completed_on) (job_i16, built by
    pg-boss 12 from schema 46; none before, nor on v10's archive)."""
    query = sql.SQL(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i"
        " JOIN pg_catalog.pg_class c ON c.oid = i.indrelid"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        " JOIN pg_catalog.pg_attribute b ON b.attrelid = i.indrelid AND b.attnum = i.indkey[1]"
        " WHERE n.nspname = %s AND a.attname = 'name' AND b.attname = 'completed_on' AND i.indisvalid)"
    )
    return bool(session.scalar(query, (layout.schema,), table="the catalog"))


def waits(
    session: Session,
    layout: Layout,
    queue: str,
    window: Window,
    percentile: float,
    *,
    hint: str | None = None,
) -> tuple[int, float | None]:
    """Count jobs started in the window; percentile of their wait (start - when they became ready)."""
    query = sql.SQL(
        "SELECT count(*), percentile_cont(%(p)s) WITHIN GROUP"
        " (ORDER BY extract(epoch FROM started_on - greatest(created_on, start_after))) FROM ({source}) AS f"
    ).format(source=_finished_source(layout, window, "started_on", ("active", *FINISHED)))
    params = {"queue": queue, "states": ["active", *FINISHED], "p": percentile / 100, **window.params()}
    count, wait = session.one(query, params, table=_tables(layout), timeout_hint=hint)
    return int(count), None if wait is None else float(wait)


def stuck(session: Session, layout: Layout, queue: str) -> tuple[int, int]:
    """Count active jobs past their expiry (or, on 12.x, past their own heartbeat), and all active jobs."""
    late = sql.SQL("{expiry} < now()").format(expiry=layout.expiry)
    if layout.has_job_heartbeat:
        late = sql.SQL(
            "({late} OR (heartbeat_seconds IS NOT NULL AND"
            " coalesce(heartbeat_on, started_on) + heartbeat_seconds * interval '1 second' < now()))"
        ).format(late=late)
    query = sql.SQL(
        "SELECT count(*) FILTER (WHERE {late}), count(*) FROM {job}"
        " WHERE name = %(queue)s AND state = 'active'"
    )
    row = session.one(
        query.format(late=late, job=layout.table("job")),
        {"queue": queue},
        table=layout.qualified("job"),
        timeout_hint=window_index_hint(layout, None) if layout.has_archive else None,
    )
    return int(row[0]), int(row[1])


def _tables(layout: Layout) -> str:
    job = layout.qualified("job")
    return f"{job} and {layout.qualified('archive')}" if layout.has_archive else job


def index_statements(layout: Layout, queue_info: dict[str, Any] | None) -> list[str]:
    """The indexes that bound this layout's window and active-job queries where pg-boss has none: pg-boss
    10 has no index on completed_on (job partitions nor archive) nor on active jobs; 11 and 12 before
    12.3x none on completed_on."""
    schema = sql_name(layout.schema)
    if layout.has_archive:
        return [
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS archive_name_completed_on_idx"
            f" ON {schema}.archive (name, completed_on)",
            # job is partitioned (one partition per queue): CONCURRENTLY is not possible on the parent, and
            # the index on the parent reaches every partition, also those of queues created later
            "CREATE INDEX IF NOT EXISTS job_name_state_completed_on_idx"
            f" ON {schema}.job (name, state, completed_on)",
        ]
    table = str((queue_info or {}).get("table_name") or "job_common")
    return [
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {sql_name(table + '_name_completed_on_idx')} ON {schema}."
        f"{sql_name(table)} (name, completed_on) WHERE completed_on IS NOT NULL"
    ]


def window_index_hint(layout: Layout, queue_info: dict[str, Any] | None) -> str:
    """Suggest the indexes that make window queries cheap on this layout, as statements to run."""
    statements = index_statements(layout, queue_info)
    if layout.has_archive:
        return (
            f"pg-boss 10's archive has no index on completed_on: {statements[0]}; and its job partitions"
            f" none on completed_on or active jobs: {statements[1]} (a few seconds per million jobs, writes"
            " wait meanwhile); or shorten the window"
        )
    return f"{statements[0]} (pg-boss 12.3x creates it itself); or shorten the window"


def sql_name(name: str) -> str:
    """Write an identifier as SQL needs it (quoted only when needed)."""
    plain = name.isidentifier() and name == name.lower() and name.isascii()
    return name if plain else '"' + name.replace('"', '""') + '"'


def queued_per_queue(session: Session, layout: Layout) -> list[dict[str, Any]]:
    """Count live the queued, ready, deferred and active jobs of every app queue that has any."""
    out = []
    for name in queue_names(session, layout):
        counts = live_counts(session, layout, name)
        if counts["queued"] or counts["active"]:
            out.append({"queue": name, **counts})
    return out

"""Live pg-boss workers: the instance registry of pg-boss 12 (schema 44+), and for 10 and 11, which have no
registry, documented proxies (pg-boss connections in pg_stat_activity, `cron_on` / `monitor_on` freshness).

`instances(conn, schema)` is a stable API: the `uptime` kind reads restarts from it."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from runbook.checks.pgboss_layout import Layout
from runbook.checks.sqlutil import CATALOG, MeasureError, Session
from runbook.units import count

QUIET_BEATS = 3
"""pg-boss counts an instance live until it misses this many heartbeats (INSTANCE_QUIET_BEATS)."""
INSTANCE_COLUMNS = (
    "id", "name", "host", "pid", "version", "application_name", "heartbeat_seconds", "workers", "metrics",
    "crash_restarts", "crash_restarts_since", "started_on", "heartbeat_on", "stopped_on",
)  # fmt: skip


class NoRegistryError(MeasureError):
    """The schema has no instance registry (pg-boss 10, 11 and 12 before schema 44)."""


def instances(conn: psycopg.Connection[Any], schema: str = "pgboss") -> list[dict[str, Any]]:
    """Read pg-boss 12's instance registry: oldest start first, each with a `live` flag.

    Keys: id (str), name, host, pid, version, application_name, heartbeat_seconds, workers (list of the
    instance's work() entries), queues (their queue names), metrics, crash_restarts, crash_restarts_since,
    started_on, heartbeat_on, stopped_on (aware datetimes or None), heartbeat_age (seconds) and live
    (`stopped_on IS NULL AND heartbeat_on >= now() - heartbeat_seconds * 3 s`, as pg-boss decides).
    Raises NoRegistryError when the schema has no `instance` table."""
    return registry(Session(conn), schema)


def registry(session: Session, schema: str) -> list[dict[str, Any]]:
    """Read the registry as `instances()` does, on a traced session."""
    present = {
        r[0]
        for r in session.rows(
            sql.SQL(
                "SELECT attname FROM pg_catalog.pg_attribute"
                " WHERE attrelid = to_regclass(format('%%I.%%I', %s::text, 'instance')) AND attnum > 0"
                " AND NOT attisdropped"
            ),
            (schema,),
            table=CATALOG,
        )
    }
    if not present:
        raise NoRegistryError(
            f'pg-boss schema "{schema}" has no instance registry (it arrived with pg-boss 12.x, schema 44)',
            hint="upgrade pg-boss to the current 12.x, or rely on the proxies of metric live_workers",
        )
    cols = [c for c in INSTANCE_COLUMNS if c in present]
    query = sql.SQL(
        "SELECT {cols}, extract(epoch FROM now() - heartbeat_on)::float8,"
        " stopped_on IS NULL AND heartbeat_on >= now() - heartbeat_seconds * {beats} * interval '1 second'"
        " FROM {table} ORDER BY started_on, id"
    ).format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in cols),
        beats=sql.Literal(QUIET_BEATS),
        table=sql.Identifier(schema, "instance"),
    )
    out = []
    for row in session.rows(query, table=f"{schema}.instance"):
        item = dict(zip([*cols, "heartbeat_age", "live"], row, strict=True))
        item["id"] = str(item["id"])
        workers = item.get("workers") or []
        item["workers"] = workers
        item["queues"] = sorted(
            {str(w.get("queue")) for w in workers if isinstance(w, dict) and w.get("queue")}
        )
        item["live"] = bool(item["live"])
        out.append(item)
    return out


def live_from_registry(
    session: Session, layout: Layout, queue: str | None, max_staleness: float
) -> tuple[int, str, dict[str, Any]]:
    """Count live instances (working `queue` when given); also a description and inputs.

    An empty registry means the app runs with `registerInstance: false` (or never started): the proxies
    answer instead, and say so."""
    rows = registry(session, layout.schema)
    if not rows:
        return live_from_proxies(session, layout, queue, max_staleness)
    if queue:
        rows = [r for r in rows if queue in r["queues"]]
    live = [r for r in rows if r["live"]]
    stopped = [r for r in rows if r.get("stopped_on") is not None]
    quiet = [r for r in rows if not r["live"] and r.get("stopped_on") is None]
    where = f" working queue {queue}" if queue else ""
    text = f"{count(len(live), 'live pg-boss instance')}{where} in the registry"
    extra = []
    if quiet:
        extra.append(f"{len(quiet)} quiet without stop() (crashed or frozen; last heartbeat "
                     f"{round(min(r['heartbeat_age'] for r in quiet))}s ago)")  # fmt: skip
    if stopped:
        extra.append(f"{len(stopped)} stopped")
    if extra:
        text += f" ({'; '.join(extra)})"
    summary = [
        {k: _plain(r.get(k)) for k in ("id", "host", "pid", "live", "heartbeat_age", "stopped_on", "queues")}
        for r in rows
    ]
    return len(live), text, {"source": "instance registry", "instances": summary}


def live_from_proxies(
    session: Session, layout: Layout, queue: str | None, max_staleness: float
) -> tuple[int, str, dict[str, Any]]:
    """Estimate live workers where no registry exists: pg-boss connections, or fresh maintenance stamps."""
    connections = int(
        session.scalar(
            sql.SQL(
                "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND application_name LIKE 'pgboss%%'"
            ),
            table="pg_stat_activity",
        )
    )
    stamps: dict[str, float | None] = {}
    stamps["version.cron_on"] = session.scalar(
        sql.SQL("SELECT extract(epoch FROM now() - max(cron_on))::float8 FROM {}").format(
            layout.table("version")
        ),
        table=layout.qualified("version"),
    )
    if "monitor_on" in layout.queue_columns:
        where = sql.SQL(" WHERE name = %(queue)s") if queue else sql.SQL("")
        stamps["queue.monitor_on"] = session.scalar(
            sql.SQL("SELECT extract(epoch FROM now() - max(monitor_on))::float8 FROM {}{}").format(
                layout.table("queue"), where
            ),
            {"queue": queue},
            table=layout.qualified("queue"),
        )
    fresh = [name for name, age in stamps.items() if age is not None and age <= max_staleness]
    value = connections if connections else (1 if fresh else 0)
    ages = ", ".join(f"{k} {'never' if v is None else f'{round(v)}s ago'}" for k, v in stamps.items())
    why = (
        f"pg-boss {layout.name} has no worker registry"
        if not layout.has_instances
        else "the instance registry is empty: registerInstance: false?"
    )
    text = f"proxy ({why}): {count(connections, 'pg-boss connection')} in pg_stat_activity; {ages}"
    if not connections and fresh:
        text += f" (fresh within {round(max_staleness)}s: counted as 1 supervising instance)"
    inputs = {
        "source": "proxy",
        "proxy": True,
        "connections": connections,
        "stamp_ages": stamps,
        "max_staleness": max_staleness,
    }
    return value, text, inputs


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value

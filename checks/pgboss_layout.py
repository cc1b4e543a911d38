"""Detect which pg-boss schema layout a database holds (v10, v11, v12), by feature rather than by version
number, and refuse what cannot be read (pg-boss 9 and older, an interrupted install)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from psycopg import sql

from runbook.checks.sqlutil import CATALOG, MeasureError, Session

LayoutName = Literal["v10", "v11", "v12"]

TABLES = (
    "version",
    "job",
    "archive",
    "job_common",
    "queue",
    "instance",
    "bam",
    "job_dependency",
    "queue_stats",
)
V12_EXTRAS = frozenset({"instance", "bam", "job_dependency", "queue_stats"})
"""Tables only the v12 layout has (any one is enough: they arrived at different 12.x releases)."""
FIRST_V10_SCHEMA = 21
CACHED_COUNTERS = {
    "queued": "queued_count",
    "deferred": "deferred_count",
    "active": "active_count",
    "ready": "ready_count",
}
"""Cached counters on `queue` (v11+; `ready_count` from schema 32), refreshed by a supervising instance."""


class NotInstalledError(MeasureError):
    """The pg-boss schema does not exist (or its install never finished)."""


@dataclass(frozen=True)
class Layout:
    """What the pg-boss schema looks like: layout, schema version and the features the checks rely on."""

    schema: str
    version: int
    name: LayoutName
    tables: frozenset[str]
    job_columns: frozenset[str]
    queue_columns: frozenset[str]

    def table(self, name: str) -> sql.Identifier:
        """Quote `schema.table` as an identifier."""
        return sql.Identifier(self.schema, name)

    def qualified(self, name: str) -> str:
        """Name `schema.table` for messages (`pgboss.job`)."""
        return f"{self.schema}.{name}"

    @property
    def has_archive(self) -> bool:
        """Whether finished jobs also live in `archive` (v10 only)."""
        return self.name == "v10" and "archive" in self.tables

    @property
    def has_instances(self) -> bool:
        return "instance" in self.tables

    @property
    def expiry(self) -> sql.Composable:
        """When an active job expires: `started_on + expire_in` (v10) or `+ expire_seconds` (v11+)."""
        if "expire_in" in self.job_columns:
            return sql.SQL("started_on + expire_in")
        return sql.SQL("started_on + expire_seconds * interval '1 second'")

    @property
    def expire_column(self) -> str:
        return "expire_in" if "expire_in" in self.job_columns else "expire_seconds"

    @property
    def not_blocked(self) -> sql.Composable:
        """`AND NOT blocked` where flows exist (12.x): a blocked job waits on a parent, it is not ready."""
        return sql.SQL(" AND NOT blocked") if "blocked" in self.job_columns else sql.SQL("")

    @property
    def has_job_heartbeat(self) -> bool:
        return {"heartbeat_on", "heartbeat_seconds"} <= self.job_columns

    def cached_counter(self, state: str) -> str | None:
        """Name the `queue` column caching the count of `state` jobs, if any (stamped by monitor_on)."""
        column = CACHED_COUNTERS.get(state)
        if column and column in self.queue_columns and "monitor_on" in self.queue_columns:
            return column
        return None

    def describe(self) -> dict[str, Any]:
        """Describe the layout for a measurement's inputs."""
        return {"schema": self.schema, "schema_version": self.version, "layout": self.name}


def detect_once(ctx: Any, session: Session, url: str | None, schema: str) -> Layout:
    """`detect`, once per monitoring round for all the round's checks on the same schema (the check
    context's `memo`, where it has one: four pg-boss checks read the catalog once, not four times)."""
    memo = getattr(ctx, "memo", None)
    if memo is None:
        return detect(session, schema)
    return cast(Layout, memo(("pgboss-layout", url, schema), lambda: detect(session, schema)))


def detect(session: Session, schema: str) -> Layout:
    """Detect the layout of pg-boss schema `schema`; NotInstalledError, or MeasureError if unsupported."""
    rows = session.rows(
        sql.SQL(
            "SELECT c.relname, a.attname FROM pg_catalog.pg_class c"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_catalog.pg_attribute a"
            " ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p')"
        ),
        (schema, list(TABLES)),
        table=CATALOG,
    )
    columns: dict[str, set[str]] = {}
    for table, column in rows:
        columns.setdefault(table, set())
        if column:
            columns[table].add(column)
    fix = (
        "start the app once with pg-boss enabled (boss.start() creates the schema), "
        "or set settings.pgboss.schema to the schema the app uses"
    )
    if "version" not in columns:
        raise NotInstalledError(f'pg-boss schema "{schema}" not installed', hint=fix)
    version = session.scalar(
        sql.SQL("SELECT max(version) FROM {}").format(sql.Identifier(schema, "version")),
        table=f"{schema}.version",
    )
    if version is None or "job" not in columns:
        raise NotInstalledError(
            f'pg-boss schema "{schema}" not installed (its install did not finish)', hint=fix
        )
    job_columns = frozenset(columns["job"])
    if int(version) < FIRST_V10_SCHEMA or "created_on" not in job_columns:
        raise MeasureError(
            f'pg-boss schema "{schema}" has version {version}, the layout of pg-boss 9 or older, '
            "which this toolkit does not read",
            hint="upgrade the app to pg-boss 10 or later (the plan's ^10; 12.x is current)",
        )
    if "queue" not in columns:
        raise NotInstalledError(
            f'pg-boss schema "{schema}" not installed (its install did not finish)', hint=fix
        )
    tables = frozenset(columns)
    name: LayoutName
    if "archive" in tables and "expire_in" in job_columns:  # a stray archive beside a v11+ job is ignored
        name = "v10"
    elif tables & V12_EXTRAS:
        name = "v12"
    else:
        name = "v11"
    return Layout(
        schema=schema,
        version=int(version),
        name=name,
        tables=tables,
        job_columns=job_columns,
        queue_columns=frozenset(columns.get("queue", ())),
    )

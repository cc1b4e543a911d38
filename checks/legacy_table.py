"""The legacy job table as mapped in settings.legacy: identifiers quoted with psycopg.sql, the row filter
(type and SQL filters), UTC-correct time comparisons, a check that every mapped column exists, and the
guard against full scans of a large table without an index."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from runbook.checks.sqlutil import CATALOG, MeasureError, Session
from runbook.model import LegacySettings
from runbook.sqltext import quote_ident, quote_literal
from runbook.units import count

GROUPS = ("pending", "running", "done", "failed", "cancelled")
"""Status groups of the mapping (settings.legacy.pending, ... hold the values of each)."""
SETTING_OF = {
    "id": "id_column",
    "status": "status_column",
    "created": "created_column",
    "started": "started_column",
    "completed": "completed_column",
    "type": "type_column",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str

    @property
    def with_time_zone(self) -> bool:
        return self.type.startswith("timestamp with time zone")


@dataclass(frozen=True)
class Index:
    name: str
    first_column: str
    partial: bool


@dataclass(frozen=True)
class LegacyTable:
    """A verified legacy table: mapping, real column types, size estimate and indexes."""

    settings: LegacySettings
    columns: dict[str, Column]
    rows_estimate: float
    estimate_source: str
    indexes: tuple[Index, ...]
    type_value: str | None = None
    extra_filter: str | None = None

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.settings.schema, self.settings.table)

    @property
    def name(self) -> str:
        """`"public"."Job"` for messages (quoted as SQL needs it)."""
        return qualified(self.settings)

    def col(self, role: str) -> sql.Identifier:
        """Quote the column playing `role` (status, created, started, completed, type, id)."""
        name = getattr(self.settings, SETTING_OF[role])
        assert name, role
        return sql.Identifier(name)

    def values(self, *groups: str) -> list[str]:
        """List the status values of the groups, in mapping order."""
        return [v for g in groups for v in getattr(self.settings, g)]

    def status_in(self, *groups: str) -> tuple[sql.Composable, list[str]]:
        """Compose `"status" IN (%s, ...)` for the groups' values, with and those values as parameters."""
        values = self.values(*groups)
        if not values:
            return sql.SQL("false"), []
        marks = sql.SQL(", ").join(sql.Placeholder() * len(values))
        return sql.SQL("{} IN ({})").format(self.col("status"), marks), values

    def row_filter(self) -> tuple[sql.Composable, list[Any]]:
        """Select the rows of this migration: type value and the SQL filters (settings, params)."""
        parts: list[sql.Composable] = []
        params: list[Any] = []
        if self.type_value is not None:
            parts.append(sql.SQL("{} = %s").format(self.col("type")))
            params.append(self.type_value)
        for extra in (self.settings.filter, self.extra_filter):
            if extra:
                # Operator-written SQL from the runbook; `%` doubled since values are bound as parameters.
                parts.append(sql.SQL("({})").format(sql.SQL(extra.replace("%", "%%"))))
        if not parts:
            return sql.SQL("true"), []
        return sql.SQL(" AND ").join(parts), params

    def now(self, role: str) -> sql.Composable:
        """Express `now()` in the column's terms (UTC wall time for a UTC timestamp-without-time-zone)."""
        if self.columns[getattr(self.settings, SETTING_OF[role])].with_time_zone:
            return sql.SQL("now()")
        return (
            sql.SQL("(now() AT TIME ZONE 'UTC')")
            if self.settings.timestamps_utc
            else sql.SQL("localtimestamp")
        )

    def instant(self, role: str) -> sql.Composable:
        """Convert a timestamptz parameter (`%s`) to the column's terms."""
        if self.columns[getattr(self.settings, SETTING_OF[role])].with_time_zone:
            return sql.SQL("%s::timestamptz")
        if self.settings.timestamps_utc:
            return sql.SQL("(%s::timestamptz AT TIME ZONE 'UTC')")
        return sql.SQL("%s::timestamptz::timestamp")

    def has_index(self, role: str, *, partial_ok: bool) -> bool:
        """Tell whether a valid index leads with the role's column (a partial one only when `partial_ok`)."""
        name = getattr(self.settings, SETTING_OF[role])
        return any(i.first_column == name and (partial_ok or not i.partial) for i in self.indexes)

    def index_statement(self, role: str, *, active_only: bool = False) -> str:
        """Suggest the index to create so the role's filter does not scan the table."""
        name = getattr(self.settings, SETTING_OF[role])
        suffix = "active_idx" if role == "status" and active_only else "idx"
        idx = quote_ident(f"{self.settings.table}_{name}_{suffix}")
        column = quote_ident(name)
        head = f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {idx} ON {self.name} ({column})"
        if role == "status" and active_only:
            values = ", ".join(quote_literal(v) for v in self.values("pending", "running"))
            return f"{head} WHERE {column} IN ({values})"
        if role == "completed":
            return f"{head} WHERE {column} IS NOT NULL"
        return head

    def guard_scan(self, role: str, *, active_only: bool, limit: float, allow: bool) -> None:
        """Refuse to scan a table of more than `limit` rows without an index on the role's column."""
        if allow or self.rows_estimate <= limit or self.has_index(role, partial_ok=active_only):
            return
        column = getattr(self.settings, SETTING_OF[role])
        raise MeasureError(
            f"{self.name} holds about {count(f'{round(self.rows_estimate):,}', 'row')} "
            f"(above scan_limit_rows {round(limit):,})"
            f' and no index starts with "{column}": this check would scan the whole table',
            hint=f"create the index: {self.index_statement(role, active_only=active_only)}; "
            "or set allow_scan: true on this check",
        )


def qualified(settings: LegacySettings) -> str:
    """`"public"."Job"`: the mapped table as SQL text (quoted, quotes doubled)."""
    return f"{quote_ident(settings.schema)}.{quote_ident(settings.table)}"


def load(
    session: Session,
    settings: LegacySettings,
    roles: tuple[str, ...],
    *,
    type_value: str | None,
    extra_filter: str | None,
) -> LegacyTable:
    """Verify that the table and the columns of `roles` exist; read column types, size and indexes."""
    head = session.one(
        sql.SQL(
            "SELECT c.reltuples::float8, c.oid,"
            " (SELECT coalesce(json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod))"
            " ORDER BY a.attnum), '[]') FROM pg_catalog.pg_attribute a"
            " WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),"
            " (SELECT coalesce(json_agg(json_build_array(i.indexrelid::regclass::text, a.attname,"
            " i.indpred IS NOT NULL)), '[]') FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
            " WHERE i.indrelid = c.oid AND i.indisvalid)"
            " FROM pg_catalog.pg_class c WHERE c.oid = to_regclass(format('%%I.%%I', %s::text, %s::text))"
        ),
        (settings.schema, settings.table),
        table=CATALOG,
    )  # the table, its columns and its indexes in one statement (a watcher reads them every round)
    name = qualified(settings)
    if not head:
        raise MeasureError(
            f"legacy table {name} does not exist", hint="fix settings.legacy.schema and settings.legacy.table"
        )
    reltuples, oid, attributes, index_rows = head
    columns = {a: Column(a, t) for a, t in attributes}
    if type_value is not None and not settings.type_column:
        raise MeasureError(
            f"this check selects type {type_value!r} but the legacy mapping has no type column",
            hint="set settings.legacy.type_column, or select the rows with `filter:` instead",
        )
    for role in (*roles, *(("type",) if type_value is not None else ())):
        setting = SETTING_OF[role]
        column = getattr(settings, setting)
        if not column or column not in columns:
            shown = "not set" if not column else f'"{column}" does not exist'
            raise MeasureError(
                f"column {shown} for settings.legacy.{setting} in {name}; its columns are: "
                + ", ".join(f'"{c}"' for c in columns),
                hint=f"fix settings.legacy.{setting}",
            )
    indexes = tuple(Index(r[0], r[1], r[2]) for r in index_rows)
    estimate, source = float(reltuples), "pg_class.reltuples"
    if reltuples < 0:  # never analyzed: estimate from the size (this one takes a lock on the table)
        size = session.scalar(sql.SQL("SELECT pg_relation_size(%s::oid)::float8"), (oid,), table=name)
        estimate, source = float(size) / 200, "table size / 200 B (never analyzed)"
    return LegacyTable(settings, columns, float(estimate), source, indexes, type_value, extra_filter)

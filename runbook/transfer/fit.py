"""What a transfer reads from and writes to the legacy table must fit its columns, checked before anything is
locked, so a dry run, `plan --check` and a stage's preflight refuse what the run itself would fail on (exit 2
naming the setting, not a batch PostgreSQL refuses mid-run): the marker column holds a job id, the updated
column a time, the start-after column a time, the data column JSON; no column the transfer writes is
generated; an archive table exists and starts with the legacy table's columns, in order, with their types."""

from __future__ import annotations

import re
from typing import Any

from psycopg import sql

from runbook.checks.legacy_table import LegacyTable
from runbook.checks.sqlutil import CATALOG, Session
from runbook.errors import ConfigError
from runbook.model import TransferSettings
from runbook.sqltext import quote_ident

JOB_ID_LENGTH = 36
"""A pg-boss job id as text: a UUID, 36 characters."""
TIME = re.compile(r"^(timestamp\b.*|date)$")
JSON = ("json", "jsonb", "text")
"""A data column: JSON, or text holding JSON (each row's text must parse; a bad one stops its batch)."""


def check(session: Session, legacy: LegacyTable, ts: TransferSettings) -> None:
    """Raise ConfigError naming the setting to fix when a column cannot take what the transfer puts in it."""
    expected = {
        "marker_column": ("a job id (text, uuid, or varchar of 36 or more)", _holds_job_id),
        "updated_column": ("a time (timestamp, timestamptz)", lambda t: t.startswith("timestamp")),
        "start_after_column": ("a time (timestamp, timestamptz, date)", lambda t: bool(TIME.match(t))),
        "data_column": ("JSON (json, jsonb, or text holding JSON)", lambda t: t in JSON),
    }
    for setting, (what, fits) in expected.items():
        column = getattr(ts, setting)
        if column and not fits(legacy.columns[column].type):
            raise ConfigError(
                f'column "{column}" named by settings.transfer.{setting} is {legacy.columns[column].type}; '
                f"it must hold {what}",
                hint=f"name another column in settings.transfer.{setting}, or leave it unset",
            )
    written = [c for c in (ts.marker_column, ts.updated_column) if c] if ts.moved == "cancel" else []
    for column in _generated(session, legacy.settings.schema, legacy.settings.table, written):
        raise ConfigError(
            f'column "{column}" of {legacy.name}, which the transfer writes to mark a moved row, is '
            "generated (GENERATED ... STORED, or an identity GENERATED ALWAYS): PostgreSQL refuses to "
            "write it",
            hint="name a plain column in settings.transfer, or leave it unset",
        )
    if ts.moved == "archive" and ts.archive_table:
        _check_archive(session, legacy, ts.archive_table)


def _holds_job_id(kind: str) -> bool:
    if kind in ("text", "uuid", "citext", "character varying"):
        return True
    sized = re.fullmatch(r"character(?: varying)?\((\d+)\)", kind)
    return bool(sized and int(sized.group(1)) >= JOB_ID_LENGTH)


def _generated(session: Session, schema: str, table: str, columns: list[str]) -> list[str]:
    """The ones of `columns` no statement may write: generated, or an identity GENERATED ALWAYS."""
    if not columns:
        return []
    rows = session.rows(
        sql.SQL(
            "SELECT attname FROM pg_catalog.pg_attribute"
            " WHERE attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text)) AND attname = ANY(%s)"
            " AND (attgenerated <> '' OR attidentity = 'a') ORDER BY attnum"
        ),
        (schema, table, columns),
        table=CATALOG,
    )
    return [r[0] for r in rows]


def _check_archive(session: Session, legacy: LegacyTable, archive: str) -> None:
    """The archive takes `INSERT INTO archive SELECT * FROM legacy ...`: by position, so its first columns
    must be the legacy table's, in order, with the same types; more columns after them (an `archived_at` with
    a default) are fine."""
    schema = legacy.settings.schema
    name = f"{quote_ident(schema)}.{quote_ident(archive)}"
    like = f"CREATE TABLE {name} (LIKE {legacy.name})"
    head = session.one(
        sql.SQL(
            "SELECT coalesce(json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod),"
            " a.attgenerated <> '' OR a.attidentity = 'a') ORDER BY a.attnum)"
            " FILTER (WHERE a.attnum IS NOT NULL), '[]')"
            " FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid"
            " AND a.attnum > 0 AND NOT a.attisdropped"
            " WHERE c.oid = to_regclass(format('%%I.%%I', %s::text, %s::text)) GROUP BY c.oid"
        ),
        (schema, archive),
        table=CATALOG,
    )
    if not head:
        raise ConfigError(
            f"archive table {name} (settings.transfer.archive_table) does not exist",
            hint=f"create it: {like}",
        )
    found: list[list[Any]] = head[0]
    wanted = [(c.name, c.type) for c in legacy.columns.values()]
    have = [(n, t) for n, t, _ in found[: len(wanted)]]
    for i, (column, kind) in enumerate(wanted):
        if i >= len(have) or have[i] != (column, kind):
            found_here = f'"{have[i][0]}" {have[i][1]}' if i < len(have) else "no more columns"
            raise ConfigError(
                f"archive table {name} does not start with the columns of {legacy.name} in their order: "
                f'column {i + 1} should be "{column}" {kind}, it is {found_here} (moved rows are copied into '
                "it by position)",
                hint=f"recreate it: {like}",
            )
    blocked = [n for n, _, gen in found[: len(wanted)] if gen]
    if blocked:
        raise ConfigError(
            f'archive table {name}: column "{blocked[0]}" is generated (or an identity GENERATED ALWAYS), so '
            "the copy of a moved row cannot be written into it",
            hint=f"make it a plain column, or recreate the table: {like}",
        )

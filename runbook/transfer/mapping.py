"""Resolve `settings.transfer` against the real database before anything moves: the legacy columns it names
exist, the types that go to the queue, the pg-boss layout (10, 11 or 12), the queue exists and has a policy
whose jobs a plain insert cannot lose. Every problem is a ConfigError (exit 2) naming the setting to fix."""

from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from runbook.checks import legacy_table, pgboss_layout
from runbook.checks.sqlutil import CATALOG, MeasureError, Session
from runbook.errors import ConfigError, UsageError
from runbook.model import Runbook, TransferSettings
from runbook.transfer import fit

PLAIN_POLICIES = (None, "standard")
"""Queue policies under which every inserted job stays: the others (short, singleton, stately, exclusive,
key_strict_fifo) make pg-boss itself drop or refuse jobs, which a transfer must not do silently."""


@dataclass(frozen=True)
class QueueInfo:
    name: str
    policy: str | None
    table: str
    """Table the queue's jobs live in: `job` (v10, the partitioned parent) or queue.table_name (v12)."""


@dataclass(frozen=True)
class Mapping:
    """A transfer, resolved: legacy table (verified), pg-boss layout and queue, the legacy types moved."""

    legacy: legacy_table.LegacyTable
    layout: pgboss_layout.Layout
    queue: QueueInfo
    types: tuple[str, ...] | None
    """Type values moved (settings.legacy.type_column); None when the table has no type column."""
    settings: TransferSettings
    namespace: uuid.UUID
    runbook: str
    has_job_now: bool

    @property
    def moved_status(self) -> str:
        """The status a moved row gets (moved: cancel): settings.transfer.moved_status, else the runbook's
        first cancelled status (a status the table uses, as its workers and the legacy checks know it)."""
        cancelled = self.legacy.settings.cancelled
        return self.settings.moved_status or (cancelled[0] if cancelled else "CANCELLED")

    def job_id(self, legacy_id: Any) -> str:
        """The deterministic pg-boss id of a legacy row: uuid5(namespace, '<runbook>:<legacy id>'), built
        from a SHA-1 of the namespace hashed once (a third of uuid.uuid5's time, spent while a batch holds
        its rows)."""
        digest = self._prefix.copy()
        digest.update(f"{self.runbook}:{legacy_id}".encode())
        b = bytearray(digest.digest()[:16])
        b[6], b[8] = (b[6] & 0x0F) | 0x50, (b[8] & 0x3F) | 0x80  # version 5, RFC 4122 variant
        x = b.hex()
        return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"

    @functools.cached_property
    def _prefix(self) -> Any:
        return hashlib.sha1(self.namespace.bytes, usedforsecurity=False)


def resolve(
    session: Session, rb: Runbook, *, queue: str, type_value: str | None, row_filter: str | None = None
) -> Mapping:
    """Check the mapping, the queue and the layout; raise ConfigError / UsageError naming the fix.
    `row_filter` (checked by runbook.transfer.rowfilter) is ANDed into every claim."""
    ts = rb.settings.transfer
    try:
        namespace = uuid.UUID(ts.namespace)
    except ValueError:
        raise ConfigError(
            f"settings.transfer.namespace is not a UUID: {ts.namespace!r}", hint="write a UUID, e.g. uuidgen"
        ) from None
    types = types_for(ts, rb.settings.legacy.type_column, queue, type_value)
    try:
        legacy = legacy_table.load(
            session, rb.settings.legacy, ("id", "status", "created"), type_value=None, extra_filter=row_filter
        )
        layout = pgboss_layout.detect(session, rb.settings.pgboss.schema)
    except MeasureError as exc:
        raise ConfigError(exc.message, hint=exc.hint) from None
    _check_columns(legacy, ts)
    fit.check(session, legacy, ts)
    info = _queue(session, layout, queue)
    has_job_now = bool(
        session.scalar(
            sql.SQL("SELECT to_regprocedure(format('%%I.job_now()', %s::text)) IS NOT NULL"),
            (layout.schema,),
            table=CATALOG,
        )
    )
    return Mapping(legacy, layout, info, types, ts, namespace, rb.name, has_job_now)


def types_for(
    ts: TransferSettings, column: str | None, queue: str, type_value: str | None
) -> tuple[str, ...] | None:
    """The legacy type values whose rows go to `queue` (`column`: settings.legacy.type_column). The loader
    asks it too, for a stage's `transfer:` (runbook.spec.stageforms)."""
    if not column:
        if type_value is not None or ts.queues:
            raise UsageError(
                "--type and settings.transfer.queues need a type column, and settings.legacy.type_column "
                "is not set",
                hint="set settings.legacy.type_column, or drop --type (every claimable row goes to --queue)",
            )
        return None
    mapped = tuple(t for t, q in ts.queues.items() if q == queue)
    if type_value is None:
        if not ts.queues:
            raise UsageError(
                f"settings.legacy.type_column is {column!r}, so a transfer moves the types "
                "settings.transfer.queues sends to its queue, and settings.transfer.queues is not set",
                hint=f"add settings.transfer.queues: {{TYPE: {queue}}} (a line a type), or pass --type TYPE",
            )
        if not mapped:
            raise UsageError(
                f"no legacy type maps to queue {queue!r} in settings.transfer.queues",
                hint=f"add `{{TYPE: {queue}}}` to settings.transfer.queues, or pass --type TYPE",
            )
        return mapped
    target = ts.queues.get(type_value)
    if target is None and ts.queues:
        raise UsageError(
            f"settings.transfer.queues does not send type {type_value!r} to any queue (it maps "
            + ", ".join(sorted(ts.queues))
            + ")",
            hint=f"add `{type_value}: {queue}` to settings.transfer.queues, or pass a type it maps",
        )
    if target is not None and target != queue:
        raise UsageError(
            f"settings.transfer.queues sends type {type_value!r} to queue {target!r}, not {queue!r}",
            hint=f"pass --queue {target}, or change settings.transfer.queues",
        )
    return (type_value,)


def _check_columns(legacy: legacy_table.LegacyTable, ts: TransferSettings) -> None:
    named: list[tuple[str, str | None]] = [(f"settings.transfer.data.{k}", c) for k, c in ts.data.items()]
    for setting in ("data_column", "start_after_column", "marker_column", "updated_column"):
        named.append((f"settings.transfer.{setting}", getattr(ts, setting)))
    named.append(("settings.legacy.type_column", legacy.settings.type_column))
    for setting, column in named:
        if column and column not in legacy.columns:
            raise ConfigError(
                f'column "{column}" named by {setting} does not exist in {legacy.name}; its columns are: '
                + ", ".join(f'"{c}"' for c in legacy.columns),
                hint=f"fix {setting}",
            )
    if ts.moved == "archive" and not ts.archive_table:
        raise ConfigError(
            "settings.transfer.moved is archive but settings.transfer.archive_table is not set",
            hint="name the archive table (same columns as the legacy table)",
        )


def _queue(session: Session, layout: pgboss_layout.Layout, queue: str) -> QueueInfo:
    table_col = "table_name" if "table_name" in layout.queue_columns else "NULL"
    row = _queue_row(session, layout, queue, table_col)
    if not row:
        raise ConfigError(
            f'pg-boss queue "{queue}" does not exist in schema "{layout.schema}"; migrate transfer does not '
            "create queues (their retry, expiry and retention policy is the app's to choose)",
            hint=f"create it from the app: await boss.createQueue('{queue}'), then run the transfer again",
        )
    policy, table = row
    if policy not in PLAIN_POLICIES:
        raise ConfigError(
            f'pg-boss queue "{queue}" has policy "{policy}": pg-boss itself keeps only some of its jobs, so '
            "moved rows could be lost",
            hint="transfer into a queue with the standard policy",
        )
    return QueueInfo(queue, policy, table or "job")


def _queue_row(session: Session, layout: pgboss_layout.Layout, queue: str, table_col: str) -> tuple[Any, ...]:
    query = sql.SQL("SELECT policy, {} FROM {} WHERE name = %s").format(
        sql.SQL(table_col) if table_col == "NULL" else sql.Identifier(table_col), layout.table("queue")
    )
    return session.one(query, (queue,), table=layout.qualified("queue"))

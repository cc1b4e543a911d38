"""`migrate transfer legacy`: move claimable legacy rows into a pg-boss queue, exactly once, as the
runbook's `settings.transfer` mapping says (runbook.transfer). `--dry-run` counts and samples, locking and
writing nothing.
Every real transfer, finished or failed, is an audited event (`migrate history` shows its counts)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import psycopg

from runbook import db, engine
from runbook.checks.sqlutil import Session as SqlSession
from runbook.errors import RunbookError, UnreachableError, UsageError
from runbook.exitcodes import ExitCode
from runbook.session import Session
from runbook.transfer import batch as batches
from runbook.transfer import legacy_sql
from runbook.transfer.mapping import Mapping, resolve

SAMPLE = 3
SCAN_WARN_ROWS = 100_000


@dataclass
class TransferResult:
    runbook: str
    queue: str
    layout: str
    dry_run: bool
    types: list[str] | None
    counts: dict[str, int] = field(default_factory=dict)
    """Dry run: claimable rows per legacy type (`*` without a type column)."""
    sample: list[dict[str, Any]] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    template: str = "transfer"
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "runbook": self.runbook,
            "queue": self.queue,
            "pgboss_layout": self.layout,
            "dry_run": self.dry_run,
            "types": self.types,
            "counts": self.counts,
            "sample": self.sample,
            "batches": self.batches,
            "totals": self.totals,
        }


def transfer_legacy(
    session: Session,
    *,
    queue: str,
    type_value: str | None = None,
    batch: int = 500,
    limit: int | None = None,
    dry_run: bool = False,
) -> TransferResult:
    """Resolve the mapping, then count (dry run) or move batch by batch."""
    if batch < 1 or (limit is not None and limit < 1):
        raise UsageError("--batch and --limit must be at least 1")
    rb = session.runbook
    s = rb.settings
    url = s.legacy.url or s.database.url
    if (s.pgboss.url or s.database.url) != url:
        raise UsageError(
            "settings.legacy.url and settings.pgboss.url name different databases: this release transfers "
            "only within one database (one transaction per batch)",
            hint="run the transfer where both live in one database",
        )
    conn = db.connect(
        url,
        what="the application database",
        connect_timeout=s.database.connect_timeout,
        autocommit=True,
        application_name="runbook-transfer",
    )
    with conn:
        m = resolve(SqlSession(conn), rb, queue=queue, type_value=type_value)
        result = TransferResult(rb.name, queue, m.layout.name, dry_run, list(m.types or []) or None)
        warning = scan_warning(m)
        if warning:
            session.progress(warning)
        if dry_run:
            _dry_run(conn, m, result)
            return result
        totals = batches.Totals()
        try:
            batches.run(
                conn,
                m,
                totals,
                batch=batch,
                limit=limit,
                progress=lambda b: session.progress(_line(b)),
            )
        except RunbookError as exc:
            _audit(session, m, totals, error=exc.message)
            raise
        except psycopg.OperationalError as exc:
            _audit(session, m, totals, error=str(exc).strip())
            raise UnreachableError(
                f"lost the application database during the transfer: {str(exc).strip()}",
                hint="the batch in flight was rolled back; run the same command again to go on",
            ) from None
        except psycopg.Error as exc:
            _audit(session, m, totals, error=str(exc).strip())
            raise batches.TransferError(
                f"PostgreSQL refused a batch: {str(exc).strip()}",
                hint="the batch was rolled back (nothing of it moved); fix the row or the mapping, run again",
            ) from None
    result.batches = [b.to_json() for b in totals.batches]
    result.totals = _totals(totals)
    _audit(session, m, totals, error=None)
    return result


def scan_warning(m: Mapping) -> str | None:
    """Each claim takes the oldest pending rows: without a partial index in that order, it reads and sorts
    every pending row (the whole table without a status index), every batch, while the rows it claims stay
    locked. Say so on a large table, naming the index."""
    lt = m.legacy
    if lt.rows_estimate <= SCAN_WARN_ROWS or legacy_sql.has_claim_index(lt):
        return None
    return (
        f"warning: {lt.name} holds about {round(lt.rows_estimate):,} rows and no partial index leads with "
        f"its {lt.settings.created_column} column: every batch sorts all pending rows while holding its rows "
        "locked; create the index first: " + legacy_sql.claim_index_statement(lt)
    )


def _dry_run(conn: Any, m: Mapping, result: TransferResult) -> None:
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        query, params = legacy_sql.counts(m)
        result.counts = {str(t or "*"): int(n) for t, n in conn.execute(query, params).fetchall()}
        query, params = legacy_sql.select(m, lock=False)
        rows = conn.execute(query, [*params, SAMPLE]).fetchall()
    result.sample = [{"legacy_id": r[0], "job_id": m.job_id(r[0]), "data": r[2]} for r in rows]
    result.totals = {"claimable": sum(result.counts.values())}


def _line(b: batches.Batch) -> str:
    return (
        f"batch {b.number}: claimed {b.claimed}, inserted {b.inserted}, already in pg-boss {b.already}, "
        f"marked {b.marked} ({b.seconds * 1000:.0f} ms)"
    )


def _totals(t: batches.Totals) -> dict[str, Any]:
    moved = t.total("marked")
    return {
        "batches": len(t.batches),
        "claimed": t.total("claimed"),
        "inserted": t.total("inserted"),
        "already_present": t.total("already"),
        "moved": moved,
        "seconds": round(t.seconds, 3),
        "rows_per_second": round(moved / t.seconds, 1) if t.seconds > 0 else None,
        "longest_batch_ms": t.longest_ms,
    }


def _audit(session: Session, m: Mapping, t: batches.Totals, *, error: str | None) -> None:
    """Record the transfer (its counts) in the state; a failure to record never hides the transfer's own."""
    counts = _totals(t)
    reason = (
        f"legacy {m.legacy.name} -> pg-boss queue {m.queue.name} ({m.layout.name}): moved {counts['moved']} "
        f"rows in {counts['batches']} batches (inserted {counts['inserted']}, already present "
        f"{counts['already_present']})" + (f"; stopped: {error}" if error else "")
    )
    data = {"transfer": "legacy", "queue": m.queue.name, "types": list(m.types or []), **counts}
    ev = engine.event(
        session,
        "transfer",
        from_stage=None,
        to_stage=None,
        reason=reason,
        outcome="failed" if error else "done",
        data=data,
    )
    if error is None:
        session.store().append_event(session.runbook.name, ev)
        return
    with contextlib.suppress(RunbookError):
        session.store().append_event(session.runbook.name, ev)

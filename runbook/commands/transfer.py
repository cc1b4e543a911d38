"""`migrate transfer legacy`: move claimable legacy rows into a pg-boss queue, exactly once, as the
runbook's `settings.transfer` mapping says (runbook.transfer). `--dry-run` counts and samples, locking and
writing nothing.
Every real transfer, finished, failed or killed, is an audited event (`migrate history` shows its counts; a
killed run's is recorded by the next run, from the ledger: runbook.transfer.audit)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg

from runbook import db
from runbook.checks.sqlutil import Session as SqlSession
from runbook.errors import UsageError
from runbook.exitcodes import ExitCode
from runbook.result import FieldsJson
from runbook.session import Session
from runbook.transfer import audit, legacy_sql, pgboss_ends, report, rowfilter
from runbook.transfer import batch as batches
from runbook.transfer.mapping import Mapping, resolve

SAMPLE = 3
SCAN_WARN_ROWS = 100_000
WORKERS = 1
"""--workers default (runbook.cli repeats it): batches moved at once, each on its own connection. Two move
about 1.5x the rows a second of one on a 2-core machine, each batch then holding its rows longer (median 35
against 29 ms at 250 rows): one keeps the 100 ms lock goal's margin (bench/transfer.py,
docs/benchmarks.md)."""


@dataclass
class TransferResult(FieldsJson):
    runbook: str
    queue: str
    layout: str
    dry_run: bool
    types: list[str] | None
    row_filter: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    """Dry run: claimable rows per legacy type (`*` without a type column)."""
    sample: list[dict[str, Any]] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    interrupted: list[dict[str, Any]] = field(default_factory=list)
    """Earlier runs that were killed before recording their event: recorded now, from the ledger, with
    their counts (runbook.transfer.audit)."""
    template: str = "transfer"
    exit_code: ExitCode = ExitCode.OK

    json_names: ClassVar[dict[str, str]] = {"layout": "pgboss_layout", "row_filter": "filter"}


def transfer_legacy(
    session: Session,
    *,
    queue: str,
    type_value: str | None = None,
    batch: int = 250,  # the longest a batch holds legacy rows stays under 100 ms (bench/transfer.py)
    limit: int | None = None,
    dry_run: bool = False,
    row_filter: str | None = None,
    filter_source: str = "--filter",
    workers: int = WORKERS,
) -> TransferResult:
    """Resolve the mapping, then count (dry run) or move batch by batch. `row_filter` is ANDed into the
    claim once it is checked (runbook.transfer.rowfilter); `filter_source` names it in errors."""
    if batch < 1 or workers < 1 or (limit is not None and limit < 1):
        raise UsageError("--batch, --workers and --limit must be at least 1")
    if row_filter is not None:
        row_filter = rowfilter.check_text(row_filter, filter_source)
    rb = session.runbook
    s = rb.settings
    url = s.legacy.url or s.database.url

    def connect(to: str | None = url, what: str = "the application database") -> Any:
        return db.connect(
            to,
            what=what,
            connect_timeout=s.database.connect_timeout,
            autocommit=True,
            application_name="runbook-transfer",
        )

    pgboss_url = s.pgboss.url or s.database.url
    if pgboss_url != url:
        _one_database(connect(), connect(pgboss_url, "the pg-boss database (settings.pgboss.url)"))

    conn = connect()
    with conn:
        m = resolve(SqlSession(conn), rb, queue=queue, type_value=type_value, row_filter=row_filter)
        if row_filter is not None:
            rowfilter.check_plans(conn, m, filter_source)
        result = TransferResult(
            rb.name, queue, m.layout.name, dry_run, list(m.types or []) or None, row_filter
        )
        warning = scan_warning(m)
        if warning:
            session.progress(warning)
        if dry_run:
            _dry_run(conn, m, result)
            return result
        totals = batches.Totals()
        options = {"batch": batch, "workers": workers, **({"limit": limit} if limit is not None else {})}
        subject, data = _event(m, options)
        schema = s.state.schema
        with report.failures(
            lambda error: None,
            lost="lost the application database before the transfer",
            lost_hint="nothing was moved; run the same command again",
            refused_hint="nothing was moved",
            refused="could not record the transfer's run in the ledger",
        ):
            audit.ensure(conn, schema)
            result.interrupted = audit.record_interrupted(session, conn, schema, kind="legacy")
            run = audit.start(
                conn, schema, runbook=rb.name, kind="legacy", source=m.legacy.name, target=m.queue.name,
                subject=subject, noun="row", data=data,
            )  # fmt: skip
        with report.failures(
            lambda error: _audit(session, subject, data, totals, error=error, run=run),
            lost="lost the application database during the transfer",
            lost_hint=(
                "the batch in flight was rolled back (a server crash also undoes the batches of its last "
                "moments, whole: their rows are pending again); run the same command again to go on"
            ),
            refused_hint="the batch was rolled back (nothing of it moved); fix the row or the mapping, "
            "run again",
        ):
            bar = report.Progress(session, lambda: _claimable(conn, m, limit, bar.done), "rows")
            batches.run(
                conn, m, totals, batch=batch, limit=limit, workers=workers, connect=connect,
                progress=bar.batch, audit_run=(audit.batch_statement(schema), run.id),
            )  # fmt: skip
            bar.end()
        result.batches = [b.to_json() for b in totals.batches]
        result.totals = report.totals(totals)
        _audit(session, subject, data, totals, error=None, run=run)  # on `conn`: it marks the run audited
    return result


def _one_database(legacy: Any, pgboss: Any) -> None:
    """URLs that differ as text may still reach one database; only then can a batch be one transaction."""
    with legacy, pgboss:
        if pgboss_ends.same_database(legacy, pgboss):
            return
    raise UsageError(
        "settings.legacy.url and settings.pgboss.url name different databases: this release transfers "
        "only within one database (one transaction per batch)",
        hint="run the transfer where both live in one database",
    )


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


def _claimable(conn: Any, m: Mapping, limit: int | None, done: int) -> int:
    """Rows still claimable (the bar's rest), at most what `--limit` leaves."""
    query, params = legacy_sql.counts(m)
    left = sum(int(n) for _t, n in conn.execute(query, params).fetchall())
    return left if limit is None else min(left, max(0, limit - done))


def _dry_run(conn: Any, m: Mapping, result: TransferResult) -> None:
    with (
        report.failures(
            lambda error: None,
            lost="lost the application database during the dry run",
            lost_hint="nothing was locked or written; run it again",
            refused_hint="a legacy row does not fit settings.transfer (e.g. text in its data_column that is "
            "not JSON): fix the row or the mapping; nothing was locked or written",
            refused="the dry run's sample could not be built",
        ),
    ):
        try:
            with conn.transaction():
                conn.execute("SET TRANSACTION READ ONLY")
                query, params = legacy_sql.counts(m)
                result.counts = {str(t or "*"): int(n) for t, n in conn.execute(query, params).fetchall()}
                query, params = legacy_sql.select(m)
                rows = conn.execute(query, [*params, SAMPLE]).fetchall()
        except psycopg.errors.InvalidTextRepresentation:
            query, params = legacy_sql.oldest(m)
            ids = [r[0] for r in conn.execute(query, [*params, SAMPLE]).fetchall()]
            row = legacy_sql.not_json(conn, m, ids)  # PostgreSQL's cast error names no row
            if row is None:
                raise
            raise batches.TransferError(
                f"the dry run's sample could not be built: {row}",
                hint="fix the row (or settings.transfer.data_column); nothing was locked or written",
            ) from None
    result.sample = [{"legacy_id": r[0], "job_id": m.job_id(r[0]), "data": json.loads(r[2])} for r in rows]
    result.totals = {"claimable": sum(result.counts.values())}


def _event(m: Mapping, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The subject and data of this transfer's audited event (its own, or the next run's if it is killed)."""
    subject = f"legacy {m.legacy.name} -> pg-boss queue {m.queue.name} ({m.layout.name})"
    data = {
        "transfer": "legacy",
        "queue": m.queue.name,
        "types": list(m.types or []),
        **({"filter": m.legacy.extra_filter} if m.legacy.extra_filter else {}),
        **options,
    }
    return subject, data


def _audit(
    session: Session,
    subject: str,
    data: dict[str, Any],
    t: batches.Totals,
    *,
    error: str | None,
    run: audit.Run,
) -> None:
    report.record(session, t, subject=subject, noun="row", data=data, error=error, run=run)

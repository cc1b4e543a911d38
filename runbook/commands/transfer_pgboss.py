"""`migrate transfer pgboss`: move unfinished jobs from one pg-boss schema or database (10, 11 or 12 layout)
into another (11 or 12), exactly once (runbook.transfer.pgboss_batch). A queue the target lacks is made first
with the source queue's policy and options (runbook.transfer.pgboss_queues); one it holds must have the
source's policy. `--dry-run` counts per queue and state and shows the oldest jobs, locking and writing
nothing. Audited as a 'transfer' event; a killed run's is recorded by the next run on the same source and
target (runbook.transfer.audit)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg

from runbook import db
from runbook.checks.pgboss_layout import Layout
from runbook.errors import UsageError
from runbook.exitcodes import ExitCode
from runbook.result import FieldsJson
from runbook.session import Session
from runbook.transfer import audit, pgboss_batch, pgboss_copy, pgboss_ends, pgboss_queues, report
from runbook.transfer.batch import Totals

SAMPLE = 3
SAMPLE_CHARS = 120
"""The dry run shows the SAMPLE oldest jobs that would move, their data cut after SAMPLE_CHARS characters."""


@dataclass
class PgbossTransferResult(FieldsJson):
    source: str
    target: str
    layouts: dict[str, str]
    dry_run: bool
    queues: list[str]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)
    """Dry run: the oldest jobs that would move (id, queue, state, start_after, data as text, cut)."""
    created_queues: list[str] = field(default_factory=list)
    """Queues the target lacked, made with the source's options (a dry run: the ones it would make)."""
    recovered: int = 0
    withdrawn: int = 0
    interrupted: list[dict[str, Any]] = field(default_factory=list)
    """Earlier runs that were killed before recording their event: recorded now, from the ledger, with
    their counts (their batches this run finished included; runbook.transfer.audit)."""
    batches: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    template: str = "transfer_pgboss"
    exit_code: ExitCode = ExitCode.OK

    json_names: ClassVar[dict[str, str]] = {"layouts": "pgboss_layouts"}


def transfer_pgboss(
    session: Session,
    *,
    from_schema: str,
    to_schema: str,
    from_url: str | None = None,
    to_url: str | None = None,
    queues: tuple[str, ...] = (),
    batch: int = 500,
    dry_run: bool = False,
    include_active: bool = False,
) -> PgbossTransferResult:
    if batch < 1:
        raise UsageError("--batch must be at least 1")
    s = session.runbook.settings
    default = s.pgboss.url or s.database.url
    src_url, dst_url = from_url or default, to_url or default
    if src_url == dst_url and from_schema == to_schema:
        raise _same(from_schema)
    source = f"{db.describe_url(src_url or '')}#{from_schema}"
    target = f"{db.describe_url(dst_url or '')}#{to_schema}"
    opened: list[psycopg.Connection[Any]] = []
    try:
        src_conn = _connect(src_url, "the source pg-boss database (--from-url)", "--from-url", opened)
        dst_conn = (
            src_conn if src_url == dst_url else _connect(dst_url, "the target (--to-url)", "--to-url", opened)
        )
        if dst_conn is not src_conn and pgboss_ends.same_database(src_conn, dst_conn):
            dst_conn = src_conn  # one database under two spellings: one transaction a batch, no ledger
        if dst_conn is src_conn and from_schema == to_schema:
            raise _same(from_schema)
        src, dst = (
            pgboss_ends.layout(src_conn, from_schema, "source"),
            pgboss_ends.layout(dst_conn, to_schema, "target"),
        )
        pgboss_ends.check_layouts(src, dst)
        names = pgboss_ends.queues(src_conn, src, queues)
        tables, missing = pgboss_ends.targets(dst_conn, src_conn, src, dst, names)
        creating = pgboss_queues.plan(src_conn, src, missing, pgboss_queues.existing(dst_conn, dst))
        ends = pgboss_batch.Ends(src_conn, dst_conn, src, dst, source, target, s.state.schema)
        result = PgbossTransferResult(
            source, target, {"source": src.name, "target": dst.name}, dry_run, names
        )
        result.created_queues = [name for name, _ in creating]
        counts = src_conn.execute(pgboss_copy.counts(src), {"names": names, "active": include_active})
        for name, state, n in counts.fetchall():
            result.counts.setdefault(name, {})[state] = int(n)
        if dry_run:
            result.totals = {"movable": sum(sum(c.values()) for c in result.counts.values())}
            result.sample = _sample(src_conn, src, names, include_active)
            return result
        if creating:
            pgboss_queues.create(dst_conn, dst, creating)
            tables = pgboss_ends.targets(dst_conn, src_conn, src, dst, names)[0]
        _move(session, ends, names, tables, result, batch=batch, include_active=include_active)
        return result
    finally:
        for conn in opened:
            conn.close()


def _sample(
    conn: psycopg.Connection[Any], src: Layout, names: list[str], active: bool
) -> list[dict[str, Any]]:
    """The SAMPLE oldest jobs that would move: id, queue, state, start after, data (cut at SAMPLE_CHARS)."""
    rows = conn.execute(
        pgboss_copy.sample(src), {"names": names, "active": active, "size": SAMPLE, "chars": SAMPLE_CHARS}
    ).fetchall()
    return [
        {
            "id": job_id,
            "queue": name,
            "state": state,
            "start_after": start.isoformat() if start is not None else None,
            "data": data if data is None or len(data) <= SAMPLE_CHARS else data[:SAMPLE_CHARS] + "…",
        }
        for job_id, name, state, start, data in rows
    ]


def _move(
    session: Session,
    ends: pgboss_batch.Ends,
    names: list[str],
    tables: dict[str, str],
    result: PgbossTransferResult,
    *,
    batch: int,
    include_active: bool,
) -> None:
    totals = Totals()
    movable = sum(sum(c.values()) for c in result.counts.values())
    bar = report.Progress(session, movable, "jobs", moved="removed from the source")
    run: audit.Run | None = None
    with report.failures(
        lambda error: _audit(session, result, totals, error=error, run=run),
        lost="lost a database during the transfer",
        lost_hint="the batch in flight is finished or undone by the next run; run the same command again",
        refused_hint="the batch was rolled back (nothing of it moved); fix the cause, run again",
    ):
        schema = ends.ledger_schema
        audit.ensure(ends.dst_conn, schema)
        rec = pgboss_batch.recover(ends)
        result.recovered, result.withdrawn = rec.removed, rec.withdrawn
        if rec.removed or rec.withdrawn:
            session.progress(
                f"finished interrupted batches: removed {rec.removed} copied jobs from the source; withdrew "
                f"{rec.withdrawn} copies of jobs a source worker took after the crash"
            )
        result.interrupted = audit.record_interrupted(
            session, ends.dst_conn, schema, kind="pgboss", source=ends.source, target=ends.target
        )
        subject, data = _event(result)
        run = audit.start(
            ends.dst_conn, schema, runbook=session.runbook.name, kind="pgboss", source=ends.source,
            target=ends.target, subject=subject, noun="job", data=data,
        )  # fmt: skip
        for name in names:
            pgboss_batch.run(
                ends,
                name,
                tables[name],
                totals,
                batch=batch,
                include_active=include_active,
                progress=functools.partial(bar.batch, prefix=f"{name}: "),
                run=run.id,
            )
    bar.end()
    result.batches = [b.to_json() for b in totals.batches]
    result.totals = report.totals(totals)
    _audit(session, result, totals, error=None, run=run)


def _same(schema: str) -> UsageError:
    return UsageError(
        f'the source and the target are the same pg-boss schema "{schema}" in one database',
        hint="name another --to-schema or --to-url (the two URLs reach the same database)",
    )


def _connect(
    url: str | None, what: str, option: str, opened: list[psycopg.Connection[Any]]
) -> psycopg.Connection[Any]:
    """Connect to one end; its errors name the option that gives its URL, or the settings it defaults to."""
    conn = db.connect(
        url,
        what=what,
        setting=f"{option} (default: settings.pgboss.url, then settings.database.url or DATABASE_URL)",
        autocommit=True,
        application_name="runbook-transfer",
    )
    opened.append(conn)
    return conn


def _event(r: PgbossTransferResult) -> tuple[str, dict[str, Any]]:
    """The subject and data of this transfer's audited event (its own, or the next run's if it is killed)."""
    subject = f"pg-boss {r.source} ({r.layouts['source']}) -> {r.target} ({r.layouts['target']})"
    data = {
        "transfer": "pgboss",
        "queues": r.queues,
        "created_queues": r.created_queues,
        "recovered": r.recovered,
        "withdrawn": r.withdrawn,
    }
    return subject, data


def _audit(
    session: Session, r: PgbossTransferResult, t: Totals, *, error: str | None, run: audit.Run | None
) -> None:
    subject, data = _event(r)
    report.record(session, t, subject=subject, noun="job", data=data, error=error, run=run)

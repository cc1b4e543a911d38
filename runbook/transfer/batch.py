"""The transfer loop: one transaction per batch (legacy table and pg-boss in one database). Claim the oldest
claimable rows `FOR UPDATE SKIP LOCKED`, insert their jobs with deterministic ids `ON CONFLICT DO NOTHING`,
check every id is now in the queue, mark the rows, commit. A crash anywhere before the commit rolls the whole
batch back; a rerun claims the same rows and their ids make the insert a no-op for any already there.

Batches commit with `synchronous_commit = off`: a commit returns before its log record is flushed (on this
2-core machine that took 1.5 ms of a 12 ms batch). That cannot lose or double a job. A batch is one
transaction, so a server crash loses whole batches (rows pending again, their jobs gone together), never half
of one; a crash can only lose the batches of the last moments, and none that anyone acted on: pg-boss
fetching a job, or a legacy worker taking a row, commits with its own flush, which takes every commit before
it along. Before the command reports its totals and records its event, `durable` flushes them all.

Each batch also adds its counts to its run's audit rows in the same transaction (runbook.transfer.audit).

Fault points (runbook.faultpoints) after each step: transfer:claimed, :inserted, :marked, :committed."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from runbook import faultpoints
from runbook.errors import RunbookError
from runbook.transfer import audit, legacy_sql, pgboss_insert
from runbook.transfer.mapping import Mapping
from runbook.transfer.workers import Workers


class TransferError(RunbookError):
    """A batch could not be moved as pg-boss would hold it; the batch was rolled back (nothing moved)."""


@dataclass(frozen=True)
class Batch:
    number: int
    claimed: int
    inserted: int
    already: int
    """Jobs already in pg-boss under the row's deterministic id (a row moved before, then reset)."""
    marked: int
    seconds: float
    """From the claim to the commit: how long the batch held its rows locked."""
    last: tuple[Any, Any] | None = None
    """(created, id) of the last row claimed: where this worker's next claim goes on."""

    def to_json(self) -> dict[str, Any]:
        return {
            "batch": self.number,
            "claimed": self.claimed,
            "inserted": self.inserted,
            "already_present": self.already,
            "marked": self.marked,
            "ms": round(self.seconds * 1000, 1),
        }


@dataclass
class Totals:
    batches: list[Batch] = field(default_factory=list)
    seconds: float = 0.0

    def total(self, name: str) -> int:
        return sum(int(getattr(b, name)) for b in self.batches)

    @property
    def longest_ms(self) -> float:
        return round(max((b.seconds for b in self.batches), default=0.0) * 1000, 1)


def run(
    conn: psycopg.Connection[Any],
    m: Mapping,
    totals: Totals,
    *,
    batch: int,
    limit: int | None,
    progress: Callable[[Batch], None],
    workers: int = 1,
    connect: Callable[[], psycopg.Connection[Any]] | None = None,
    audit_run: tuple[Any, str] | None = None,
) -> None:
    """Move batches until no claimable row is left or `limit` rows moved; each committed batch is added to
    `totals` as it commits (so a failure later still counts what moved). One worker moves them on `conn`;
    `workers` > 1 run concurrently, each on a connection of its own from `connect` (runbook.transfer.workers).
    `audit_run`: (statement, run id) adding each batch's counts to its run in the batch's own transaction
    (runbook.transfer.audit), so a killed run's batches are still counted in the history.
    """
    started = time.monotonic()
    statements = Statements(
        legacy_sql.claim(m, after=False),
        legacy_sql.claim(m, after=True),
        pgboss_insert.insert_statement(m, legacy_sql.jobs_source(m)),
        pgboss_insert.present_statement(m),
        legacy_sql.mark(m),
        *(audit_run or (None, None)),
    )
    shared: Workers[Batch] = Workers(limit)

    def add(done: Batch) -> None:
        totals.batches.append(done)
        totals.seconds = time.monotonic() - started
        progress(done)

    def work(emit: Callable[[Batch], None]) -> None:
        assert connect is not None
        with connect() as own:
            _drain(own, m, statements, shared, batch, emit)

    try:
        if workers == 1:
            _drain(conn, m, statements, shared, batch, add)
        else:
            shared.run(workers, work, add)
    except BaseException:
        with contextlib.suppress(psycopg.Error):
            durable(conn)
        raise
    else:
        durable(conn)
    finally:
        totals.seconds = time.monotonic() - started


def durable(conn: psycopg.Connection[Any]) -> None:
    """Return once every batch committed so far is on disk. A transaction that wrote to the log commits with
    synchronous_commit on by flushing the log up to its commit record, and with it the commits of every batch
    before it (on any connection: the log is the server's). It must write: PostgreSQL commits a transaction
    that only took an id (`txid_current()`) without a flush. A transactional logical message is the smallest
    write any role may make (no table, no privilege); nothing reads it unless logical decoding is set up."""
    with conn.transaction():
        conn.execute("SET LOCAL synchronous_commit = on")
        conn.execute("SELECT pg_logical_emit_message(true, 'runbook', 'transfer: batches flushed')")


@dataclass(frozen=True)
class Statements:
    claim: tuple[Any, list[Any]]
    claim_after: tuple[Any, list[Any]]
    insert: Any
    present: Any
    marks: list[Any]
    record: Any = None
    run: str | None = None


def _drain(
    conn: psycopg.Connection[Any],
    m: Mapping,
    statements: Statements,
    shared: Workers[Batch],
    batch: int,
    emit: Callable[[Batch], None],
) -> None:
    """One worker: batches until a claim from the start finds fewer rows than it asked for, or the limit is
    reserved. Each claim goes on past the last row this worker claimed (legacy_sql.claim); once that finds
    fewer rows than asked, the next claim starts from the oldest claimable row again."""
    conn.execute("SET synchronous_commit = off")  # see the module's docstring
    after: tuple[Any, Any] | None = None
    while True:
        size, number = shared.take(batch)
        if size == 0:
            return
        try:
            done = _one(conn, m, number, size, statements, after)
        except BaseException:
            shared.give_back(size)
            raise
        shared.give_back(size - (done.marked if done else 0))
        if done is not None:
            emit(done)
        if done is None or done.claimed < size:
            if after is None:
                return
            after = None  # past the last key: nothing left; look once more from the start
        elif done.last is not None and done.last[0] is not None:
            after = done.last


def _one(
    conn: psycopg.Connection[Any],
    m: Mapping,
    number: int,
    size: int,
    statements: Statements,
    after: tuple[Any, Any] | None = None,
) -> Batch | None:
    """One batch (None: nothing left to claim). Text in the data column that is not JSON fails the batch
    as PostgreSQL's cast error, which names no row: the first row of the batch that fails is found then."""
    legacy_ids: list[Any] = []
    try:
        return _batch(conn, m, number, size, statements, after, legacy_ids)
    except psycopg.errors.InvalidTextRepresentation:
        row = legacy_sql.not_json(conn, m, legacy_ids)  # the batch rolled back: name its first bad row
        if row is None:
            raise
        raise TransferError(
            f"PostgreSQL refused a batch: {row}; batch {number} was rolled back, nothing of it moved",
            hint="fix the row (or settings.transfer.data_column), then run the same command again",
        ) from None


def _batch(
    conn: psycopg.Connection[Any],
    m: Mapping,
    number: int,
    size: int,
    statements: Statements,
    after: tuple[Any, Any] | None,
    legacy_ids: list[Any],
) -> Batch | None:
    t0 = time.monotonic()
    with conn.transaction():
        query, params = statements.claim if after is None else statements.claim_after
        rows = conn.execute(query, [*params, *(after or ()), size]).fetchall()
        if not rows:
            return None
        faultpoints.pause("transfer:claimed")
        ids = [m.job_id(r[0]) for r in rows]
        legacy_ids += [r[1] for r in rows]
        returned = conn.execute(
            statements.insert, {"ids": legacy_ids, "jobs": ids, "name": m.queue.name}
        ).fetchall()
        inserted = len(returned)
        others = pgboss_insert.not_returned(ids, returned)
        there = int(conn.execute(statements.present, (m.queue.name, others)).fetchone()[0]) if others else 0  # type: ignore[index]
        if there != len(others):
            raise TransferError(
                f"{len(others) - there} of {len(ids)} jobs of batch {number} are not in pg-boss queue "
                f'"{m.queue.name}" after the insert; the batch was rolled back, nothing moved',
                hint="a unique index or policy of the queue refused them: check the queue with "
                "`SELECT * FROM <schema>.queue WHERE name = ...`",
            )
        faultpoints.pause("transfer:inserted")
        marked = 0
        for statement in statements.marks:
            cur = conn.execute(statement, {"ids": legacy_ids, "jobs": ids, "status": m.moved_status})
            marked = cur.rowcount
        if marked != len(rows):
            raise TransferError(
                f"marked {marked} of the {len(rows)} legacy rows of batch {number}; "
                "rolled back, nothing moved",
                hint="check settings.transfer.moved and the legacy table's triggers",
            )
        if statements.record is not None and statements.run is not None:
            conn.execute(
                statements.record, audit.batch_args(statements.run, number, len(rows), inserted, marked)
            )
        faultpoints.pause("transfer:marked")
    faultpoints.pause("transfer:committed")
    last = (rows[-1][2], rows[-1][1])
    return Batch(number, len(rows), inserted, len(rows) - inserted, marked, time.monotonic() - t0, last)

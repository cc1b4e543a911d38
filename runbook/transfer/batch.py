"""The transfer loop: one transaction per batch (legacy table and pg-boss in one database). Claim the oldest
claimable rows `FOR UPDATE SKIP LOCKED`, insert their jobs with deterministic ids `ON CONFLICT DO NOTHING`,
check every id is now in the queue, mark the rows, commit. A crash anywhere before the commit rolls the whole
batch back; a rerun claims the same rows and their ids make the insert a no-op for any already there.

Fault points (runbook.faultpoints) after each step: transfer:claimed, :inserted, :marked, :committed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from runbook import faultpoints
from runbook.errors import RunbookError
from runbook.transfer import legacy_sql, pgboss_insert
from runbook.transfer.mapping import Mapping


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
) -> None:
    """Move batches until no claimable row is left or `limit` rows moved; each committed batch is added to
    `totals` as it commits (so a failure later still counts what moved)."""
    started = time.monotonic()
    insert, present = pgboss_insert.insert_statement(m), pgboss_insert.present_statement(m)
    marks = legacy_sql.mark(m)
    moved = 0
    while limit is None or moved < limit:
        size = batch if limit is None else min(batch, limit - moved)
        done = _one(conn, m, len(totals.batches) + 1, size, insert, present, marks)
        if done is None:
            break
        totals.batches.append(done)
        moved += done.marked
        totals.seconds = time.monotonic() - started
        progress(done)
        if done.claimed < size:
            break
    totals.seconds = time.monotonic() - started


def _one(
    conn: psycopg.Connection[Any],
    m: Mapping,
    number: int,
    size: int,
    insert: Any,
    present: Any,
    marks: list[Any],
) -> Batch | None:
    t0 = time.monotonic()
    with conn.transaction():
        query, params = legacy_sql.select(m, lock=True)
        rows = conn.execute(query, [*params, size]).fetchall()
        if not rows:
            return None
        faultpoints.pause("transfer:claimed")
        jobs = [pgboss_insert.Job(m.job_id(r[0]), r[2], r[3]) for r in rows]
        ids = [j.id for j in jobs]
        returned = conn.execute(
            insert, {"jobs": pgboss_insert.recordset(m, jobs), "name": m.queue.name}
        ).fetchall()
        inserted = len(returned)
        others = pgboss_insert.not_returned(ids, returned)
        there = int(conn.execute(present, (m.queue.name, others)).fetchone()[0]) if others else 0  # type: ignore[index]
        if there != len(others):
            raise TransferError(
                f"{len(others) - there} of {len(ids)} jobs of batch {number} are not in pg-boss queue "
                f'"{m.queue.name}" after the insert; the batch was rolled back, nothing moved',
                hint="a unique index or policy of the queue refused them: check the queue with "
                "`SELECT * FROM <schema>.queue WHERE name = ...`",
            )
        faultpoints.pause("transfer:inserted")
        legacy_ids = [r[1] for r in rows]
        marked = 0
        for statement in marks:
            cur = conn.execute(statement, {"ids": legacy_ids, "jobs": ids, "status": m.settings.moved_status})
            marked = cur.rowcount
        if marked != len(rows):
            raise TransferError(
                f"marked {marked} of the {len(rows)} legacy rows of batch {number}; "
                "rolled back, nothing moved",
                hint="check settings.transfer.moved and the legacy table's triggers",
            )
        faultpoints.pause("transfer:marked")
    faultpoints.pause("transfer:committed")
    return Batch(number, len(rows), inserted, len(rows) - inserted, marked, time.monotonic() - t0)

"""The `migrate transfer pgboss` loop, per queue, batch by batch.

One database: one transaction per batch (claim FOR UPDATE SKIP LOCKED in the source schema, insert ON
CONFLICT DO NOTHING in the target schema, check every id is there, delete the source rows, commit).

Two databases: the source transaction claims and holds the rows; the target transaction inserts them and
writes a ledger row (phase `copied`) and commits; then the source rows are deleted and that commits; then the
ledger row becomes `done`. A crash before the target commit leaves nothing in the target; a crash after it
leaves a `copied` ledger row, and the next run first deletes those jobs from the source (`recover`).

Fault points (runbook.faultpoints): transfer-pgboss:claimed, :copied, :deleted, :committed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from runbook import faultpoints
from runbook.checks.pgboss_layout import Layout
from runbook.transfer import audit
from runbook.transfer import pgboss_copy as q
from runbook.transfer.batch import Batch, Totals, TransferError
from runbook.transfer.pgboss_insert import not_returned


@dataclass(frozen=True)
class Ends:
    """Both ends of a transfer: connections (the same one for one database), layouts, names for the ledger."""

    src_conn: psycopg.Connection[Any]
    dst_conn: psycopg.Connection[Any]
    src: Layout
    dst: Layout
    source: str
    target: str
    ledger_schema: str

    @property
    def same_db(self) -> bool:
        return self.src_conn is self.dst_conn


@dataclass(frozen=True)
class Recovered:
    removed: int
    """Copied jobs of interrupted batches deleted from the source now."""
    withdrawn: int
    """Copies deleted from the target because a source worker took the job after the crash released it."""


def recover(e: Ends) -> Recovered:
    """Finish the batches a killed run copied but did not delete from the source. The crash released their
    locks: a job a source worker took since then stays with that worker, and its copy leaves the target.
    Each finished batch is counted for the run that copied it (runbook.transfer.audit), with what this
    recovery removed and withdrew."""
    if e.same_db:
        return Recovered(0, 0)
    *ddl, alter = q.ledger_ddl(e.ledger_schema)
    for statement in ddl:
        e.dst_conn.execute(statement)
    if not _has_run_column(e):
        e.dst_conn.execute(alter)
    keys = {"source": e.source, "target": e.target}
    removed = withdrawn = 0
    opened = e.dst_conn.execute(q.ledger_open(e.ledger_schema), keys).fetchall()
    for batch_id, name, ids, run_id, number, inserted in opened:
        args = {"name": name, "ids": ids}
        with e.src_conn.transaction():
            gone = e.src_conn.execute(q.delete_unstarted(e.src), args).rowcount
            taken = [r[0] for r in e.src_conn.execute(q.still_there(e.src), args).fetchall()]
            with e.dst_conn.transaction():
                back = 0
                if taken:
                    back = e.dst_conn.execute(q.withdraw(e.dst), {"name": name, "ids": taken}).rowcount
                done = e.dst_conn.execute(q.ledger_done(e.ledger_schema), {"batch": batch_id}).rowcount
                if done and run_id is not None and number is not None:
                    moved = len(ids) - len(taken)
                    e.dst_conn.execute(
                        audit.batch_statement(e.ledger_schema),
                        audit.batch_args(
                            run_id,
                            number,
                            len(ids),
                            int(inserted or 0),
                            moved,
                            recovered=gone,
                            withdrawn=back,
                        ),
                    )
        removed, withdrawn = removed + gone, withdrawn + back
    return Recovered(removed, withdrawn)


def _has_run_column(e: Ends) -> bool:
    found = e.dst_conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = 'transfer_ledger'"
        " AND column_name = 'run_id'",
        (e.ledger_schema,),
    ).fetchone()
    return found is not None


def run(
    e: Ends,
    queue: str,
    table: str,
    totals: Totals,
    *,
    batch: int,
    include_active: bool,
    progress: Callable[[Batch], None],
    run: str | None = None,
) -> None:
    """Move every movable job of `queue` (target table `table`); each batch is added to `totals` once done,
    and counted for the audit run `run` (runbook.transfer.audit) as it commits."""
    started = time.monotonic() - totals.seconds
    while True:
        done = _one(e, queue, table, len(totals.batches) + 1, batch, include_active, run)
        if done is None:
            break
        totals.batches.append(done)
        totals.seconds = time.monotonic() - started
        progress(done)
        if done.claimed < batch:
            break
    totals.seconds = time.monotonic() - started


def _one(
    e: Ends, queue: str, table: str, number: int, size: int, include_active: bool, run: str | None
) -> Batch | None:
    t0 = time.monotonic()
    keys = {"name": queue, "size": size, "active": include_active}
    with e.src_conn.transaction():
        rows = e.src_conn.execute(q.claim(e.src, lock=True), keys).fetchall()
        if not rows:
            return None
        faultpoints.pause("transfer-pgboss:claimed")
        ids = [r[0] for r in rows]
        args = {"name": queue, "ids": ids, "jobs": "[" + ",".join(r[1] for r in rows) + "]"}
        if e.same_db:
            inserted = _copy(e, table, number, args)
            faultpoints.pause("transfer-pgboss:copied")
        else:
            with e.dst_conn.transaction():
                inserted = _copy(e, table, number, args)
                batch_id = str(uuid.uuid4())
                e.dst_conn.execute(
                    q.ledger_write(e.ledger_schema),
                    {
                        **args, "batch": batch_id, "source": e.source, "target": e.target, "run": run,
                        "number": number, "inserted": inserted,
                    },
                )  # fmt: skip
            faultpoints.pause("transfer-pgboss:copied")
        deleted = e.src_conn.execute(q.delete(e.src), args).rowcount
        if deleted != len(ids):
            raise TransferError(
                f"deleted {deleted} of the {len(ids)} source jobs of batch {number} (queue {queue})",
                hint="something else changed the source jobs; run the same command again",
            )
        if e.same_db and run is not None:
            e.src_conn.execute(
                audit.batch_statement(e.ledger_schema),
                audit.batch_args(run, number, len(ids), inserted, deleted),
            )
        faultpoints.pause("transfer-pgboss:deleted")
    if not e.same_db:
        with e.dst_conn.transaction():
            done = e.dst_conn.execute(q.ledger_done(e.ledger_schema), {"batch": batch_id}).rowcount
            if done and run is not None:
                e.dst_conn.execute(
                    audit.batch_statement(e.ledger_schema),
                    audit.batch_args(run, number, len(ids), inserted, deleted),
                )
    faultpoints.pause("transfer-pgboss:committed")
    return Batch(number, len(rows), inserted, len(rows) - inserted, deleted, time.monotonic() - t0)


def _copy(e: Ends, table: str, number: int, args: dict[str, Any]) -> int:
    returned = e.dst_conn.execute(q.insert(e.dst, table), args).fetchall()
    others = not_returned(args["ids"], returned)
    there = int(e.dst_conn.execute(q.present(e.dst), {**args, "ids": others}).fetchone()[0]) if others else 0  # type: ignore[index]
    if there != len(others):
        raise TransferError(
            f"{len(others) - there} of {len(args['ids'])} jobs of batch {number} are not in target "
            f'queue "{args["name"]}" after the insert (a singleton key or a policy of the target queue '
            "refused them); the batch was rolled back, nothing moved",
            hint="check the target queue's policy and its jobs with the same singleton keys",
        )
    return len(returned)

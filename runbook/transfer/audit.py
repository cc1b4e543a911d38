"""Every transfer run is in `history` with what it moved, a killed one (`kill -9`) too, counted once.

A run registers in `transfer_runs` (runbook's state schema, in the database its batches commit in: the legacy
table's for `transfer legacy`, the target's for `transfer pgboss`) and holds a session advisory lock on its
run id while it lives. Each batch adds its counts to `transfer_batches` in the transaction that moves it (two
pg-boss databases: when its ledger row becomes `done`, by the run itself or by the next run's recovery). A run
that ends records its own 'transfer' event (data.run_id) and then marks its row audited.

Before it moves anything, every run records, for each unaudited run whose lock is free (its process is gone),
one 'transfer' event with outcome 'interrupted' and the counts its batches left in `transfer_batches`, then
marks it audited. An event already in the history with that run id (the run, or an auditor, died between
the event and the mark) is not recorded again. So the moved counts of the history add up to what moved."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from runbook import engine
from runbook.session import Session
from runbook.units import count

LOCK_CLASS = 0x52425452
"""The first key of the advisory locks (`RBTR`): (LOCK_CLASS, 0) serializes creating the tables, (LOCK_CLASS,
hashtext(run id)) is held by a live run."""


def _t(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, name)


def ensure(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create the schema (when missing) and the two tables, one process at a time."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_CLASS,))
        if conn.execute("SELECT to_regnamespace(%s) IS NULL", (schema,)).fetchone()[0]:  # type: ignore[index]
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (run_id uuid PRIMARY KEY, runbook text NOT NULL,"
                " kind text NOT NULL, source text NOT NULL, target text NOT NULL, subject text NOT NULL,"
                " noun text NOT NULL, data jsonb NOT NULL, started_at timestamptz NOT NULL DEFAULT now(),"
                " audited_at timestamptz)"
            ).format(_t(schema, "transfer_runs"))
        )
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (run_id uuid NOT NULL, batch integer NOT NULL,"
                " claimed integer NOT NULL, inserted integer NOT NULL, already integer NOT NULL,"
                " moved integer NOT NULL, recovered integer NOT NULL DEFAULT 0,"
                " withdrawn integer NOT NULL DEFAULT 0, at timestamptz NOT NULL DEFAULT now(),"
                " PRIMARY KEY (run_id, batch))"
            ).format(_t(schema, "transfer_batches"))
        )


def batch_statement(schema: str) -> sql.Composed:
    """Add one batch's counts to its run (named parameters run, batch, claimed, inserted, already, moved,
    recovered, withdrawn); a batch already counted (a recovery racing its live run) is not counted twice."""
    return sql.SQL(
        "INSERT INTO {} (run_id, batch, claimed, inserted, already, moved, recovered, withdrawn)"
        " VALUES (%(run)s, %(batch)s, %(claimed)s, %(inserted)s, %(already)s, %(moved)s, %(recovered)s,"
        " %(withdrawn)s) ON CONFLICT DO NOTHING"
    ).format(_t(schema, "transfer_batches"))


def batch_args(run: str, number: int, claimed: int, inserted: int, moved: int, **more: int) -> dict[str, Any]:
    return {
        "run": run,
        "batch": number,
        "claimed": claimed,
        "inserted": inserted,
        "already": claimed - inserted,
        "moved": moved,
        "recovered": more.get("recovered", 0),
        "withdrawn": more.get("withdrawn", 0),
    }


@dataclass(frozen=True)
class Run:
    """This process's registered run: `id` goes into each batch's row and into its event's data."""

    conn: psycopg.Connection[Any]
    schema: str
    id: str

    def finish(self) -> None:
        """The run's own event is recorded: mark it audited and let the lock go (never raises)."""
        with contextlib.suppress(psycopg.Error):
            self.conn.execute(
                sql.SQL("UPDATE {} SET audited_at = now() WHERE run_id = %s").format(
                    _t(self.schema, "transfer_runs")
                ),
                (self.id,),
            )
            self.conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_CLASS, self.id))


def start(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    runbook: str,
    kind: str,
    source: str,
    target: str,
    subject: str,
    noun: str,
    data: dict[str, Any],
) -> Run:
    """Register a run (tables made by `ensure`): the lock first, so no auditor ever sees it unlocked."""
    run_id = str(uuid.uuid4())
    conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, run_id))
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (run_id, runbook, kind, source, target, subject, noun, data)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(_t(schema, "transfer_runs")),
        (run_id, runbook, kind, source, target, subject, noun, Jsonb(data)),
    )
    return Run(conn, schema, run_id)


def record_interrupted(
    session: Session,
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    kind: str,
    source: str | None = None,
    target: str | None = None,
) -> list[dict[str, Any]]:
    """Record one 'interrupted' event for each run of this runbook (of `kind`; of this source and target
    when given) that ended without marking itself audited and whose process is gone; the counts of those
    recorded now (one whose event the history already holds is only marked audited)."""
    runs, batches = _t(schema, "transfer_runs"), _t(schema, "transfer_batches")
    name = session.runbook.name
    candidates = conn.execute(
        sql.SQL(
            "SELECT run_id::text FROM {} WHERE runbook = %s AND kind = %s AND audited_at IS NULL"
            " AND (%s::text IS NULL OR source = %s) AND (%s::text IS NULL OR target = %s) ORDER BY started_at"
        ).format(runs),
        (name, kind, source, source, target, target),
    ).fetchall()
    if not candidates:
        return []
    recorded: set[str] | None = None
    out = []
    for (run_id,) in candidates:
        with conn.transaction():
            free = conn.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, run_id))
            if not free.fetchone()[0]:  # type: ignore[index]
                continue  # its process still runs
            row = conn.execute(
                sql.SQL(
                    "SELECT subject, noun, data, started_at FROM {} WHERE run_id = %s AND audited_at IS NULL"
                    " FOR UPDATE SKIP LOCKED"
                ).format(runs),
                (run_id,),
            ).fetchone()
            if row is None:
                continue  # audited meanwhile, or another run is auditing it
            subject, noun, data, started = row
            n = conn.execute(
                sql.SQL(
                    "SELECT count(*), COALESCE(sum(claimed), 0), COALESCE(sum(inserted), 0),"
                    " COALESCE(sum(already), 0), COALESCE(sum(moved), 0), COALESCE(sum(recovered), 0),"
                    " COALESCE(sum(withdrawn), 0) FROM {} WHERE run_id = %s"
                ).format(batches),
                (run_id,),
            ).fetchone()
            assert n is not None
            counts = dict(
                zip(
                    ("batches", "claimed", "inserted", "already_present", "moved", "recovered", "withdrawn"),
                    (int(v) for v in n),
                    strict=True,
                )
            )
            if recorded is None:
                recorded = _recorded(session)
            fresh = run_id not in recorded
            if fresh:
                _append(session, run_id, subject, noun, data, started, counts)
            conn.execute(
                sql.SQL("UPDATE {} SET audited_at = now() WHERE run_id = %s").format(runs), (run_id,)
            )
        if fresh:
            out.append({"run_id": run_id, **counts})
    return out


def _recorded(session: Session) -> set[str]:
    """Run ids the history's transfer events carry."""
    events = session.store().events(session.runbook.name, limit=None, operation="transfer")
    return {str(e.data.get("run_id")) for e in events if e.data.get("run_id")}


def _append(
    session: Session,
    run_id: str,
    subject: str,
    noun: str,
    data: dict[str, Any],
    started: Any,
    counts: dict[str, int],
) -> None:
    recovered = (
        f"; the next run finished its last batch: removed {counts['recovered']} from the source, withdrew "
        f"{counts['withdrawn']} from the target"
        if counts["recovered"] or counts["withdrawn"]
        else ""
    )
    when = started.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    reason = (
        f"{subject}: moved {count(counts['moved'], noun)} in {count(counts['batches'], 'batch', 'batches')}"
        f" (inserted {counts['inserted']}, already present {counts['already_present']}); interrupted: the "
        f"run started {when} ended without recording its event (killed); recorded by the next run from the "
        f"transfer ledger{recovered}"
    )
    ev = engine.event(
        session, "transfer", from_stage=None, to_stage=None, reason=reason, outcome="interrupted",
        data={**data, **counts, "run_id": run_id, "interrupted": True},
    )  # fmt: skip
    session.store().append_event(session.runbook.name, ev)

"""Ledger queries: did every job the example app accepted run exactly once, across pg-boss and the legacy
table? The app writes `public.ledger` (one row per accepted job; `processed_count` counts completed runs of
the work, `gave_up` marks a job whose last allowed attempt failed)."""

from __future__ import annotations

import time
from typing import Any, LiteralString

import psycopg

from runbook.db import connect
from runbook.errors import NotReadyError

SYSTEMS = ("pgboss", "legacy")

_COUNTS = """
SELECT count(*)::int,
       count(*) FILTER (WHERE processed_count = 1)::int,
       count(*) FILTER (WHERE processed_count > 1)::int,
       count(*) FILTER (WHERE processed_count = 0 AND gave_up)::int,
       count(*) FILTER (WHERE processed_count = 0 AND NOT gave_up)::int,
       coalesce(sum(failed_attempts), 0)::int
FROM public.ledger
"""
_FIELDS = ("created", "processed_once", "duplicated", "failed", "lost", "failed_attempts")


def _counts(
    conn: psycopg.Connection[Any], where: LiteralString = "", params: tuple[Any, ...] = ()
) -> dict[str, int]:
    row = conn.execute(_COUNTS + where, params).fetchone()
    if row is None:  # pragma: no cover - an aggregate always returns a row
        raise RuntimeError("no row from an aggregate")
    return dict(zip(_FIELDS, (int(v) for v in row), strict=True))


def ledger_summary(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Summarise the ledger: totals, then the same per system the job was routed to.

    Keys: `created` (jobs accepted), `processed_once`, `duplicated` (work ran more than once), `failed`
    (never succeeded, retries exhausted), `lost` (never succeeded and not given up: still queued or in flight,
    or lost if the queues are drained), `failed_attempts` (failed runs, retried or not), `exactly_once`
    (every accepted job ran exactly once), `routed_to` {pgboss, legacy: the same counts},
    `processed_by` {pgboss, legacy: jobs whose last successful run was on that system}."""
    summary: dict[str, Any] = _counts(conn)
    summary["exactly_once"] = summary["processed_once"] == summary["created"]
    summary["routed_to"] = {s: _counts(conn, "WHERE routed_to = %s", (s,)) for s in SYSTEMS}
    rows = conn.execute(
        "SELECT processed_by, count(*)::int FROM public.ledger WHERE processed_count > 0 GROUP BY 1"
    ).fetchall()
    summary["processed_by"] = {s: 0 for s in SYSTEMS} | {str(k): int(v) for k, v in rows}
    conn.rollback()  # end the read transaction so the caller's later reads see new rows
    return summary


def wait_until_settled(
    database_url: str, *, timeout: float = 60.0, poll: float = 0.25, expect_created: int | None = None
) -> dict[str, Any]:
    """Poll the ledger until no job is left unsettled (`lost` is 0) and, if given, `expect_created` jobs
    exist; return the summary. Raise NotReadyError with the last summary when `timeout` passes."""
    deadline = time.monotonic() + timeout
    with connect(database_url, what="the example app's database") as conn:
        while True:
            summary = ledger_summary(conn)
            enough = expect_created is None or summary["created"] >= expect_created
            if enough and summary["lost"] == 0:
                return summary
            if time.monotonic() > deadline:
                raise NotReadyError(
                    f"jobs still unprocessed after {timeout:.0f} s: {summary}",
                    hint="are the app's workers running (WORKERS, LEGACY_PAUSED)? read the app's log",
                )
            time.sleep(poll)

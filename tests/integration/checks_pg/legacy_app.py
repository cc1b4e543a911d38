"""The legacy "Job" table exactly as Prisma creates it (reference/legacy-job.md), and the legacy app's
writes: create PENDING, claim the oldest PENDING row FOR UPDATE SKIP LOCKED (RUNNING, startedAt,
attempts + 1), complete, fail (and, with attempts left, a new PENDING row pointing at the root job).

Timestamps are `timestamp(3) without time zone` written in UTC, as Prisma does; `at` is an offset in seconds
from a base read once at the start (negative = in the past), so tests control every time exactly; `None`
means the real current time."""

from __future__ import annotations

import secrets
from typing import Any

import psycopg

from tests.conftest import REPO

DDL = (REPO / "examples" / "pgboss-app" / "legacy-job.sql").read_text(encoding="utf-8")
"""Prisma's migration, as the example app runs it (one copy)."""


def _at(seconds: float | None) -> str:
    """The app's clock in UTC: now, or a fixed base read once (so durations are exact) plus an offset."""
    if seconds is None:
        return "(now() AT TIME ZONE 'UTC')"
    return f"%(base)s::timestamp + {float(seconds)} * interval '1 second'"


class LegacyApp:
    """The legacy app's writes on a real database (autocommit, like the ORM's single statements)."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.base = self.conn.execute("SELECT date_trunc('second', now() AT TIME ZONE 'UTC')").fetchone()[0]  # type: ignore[index]

    def close(self) -> None:
        self.conn.close()

    def install(self) -> None:
        self.conn.execute(DDL)

    def create(self, at: float | None = None, evaluation: str = "eval", original: str | None = None) -> str:
        """A new PENDING row (21-character random id, as the app's nanoid ids)."""
        job_id = secrets.token_urlsafe(16)[:21]
        self.conn.execute(
            f'INSERT INTO "public"."Job" ("id", "evaluationId", "originalJobId", "createdAt", "updatedAt")'
            f" VALUES (%(id)s, %(evaluation)s, %(original)s, {_at(at)}, {_at(at)})",
            {"id": job_id, "evaluation": evaluation, "original": original, "base": self.base},
        )
        return job_id

    def claim(self, at: float | None = None) -> str | None:
        """The worker's claim: the oldest PENDING row, FOR UPDATE SKIP LOCKED, becomes RUNNING."""
        row = self.conn.execute(
            f"""UPDATE "public"."Job" SET "status" = 'RUNNING', "startedAt" = {_at(at)},
                "updatedAt" = {_at(at)}, "attempts" = "attempts" + 1
              WHERE "id" = (SELECT "id" FROM "public"."Job" WHERE "status" = 'PENDING'
                            ORDER BY "createdAt" LIMIT 1 FOR UPDATE SKIP LOCKED)
              RETURNING "id" """,
            {"base": self.base},
        ).fetchone()
        return None if row is None else str(row[0])

    def _settle(self, job_id: str, status: str, column: str, at: float | None, extra: str = "") -> None:
        self.conn.execute(
            f"""UPDATE "public"."Job" SET "status" = '{status}', "{column}" = {_at(at)},
                "updatedAt" = {_at(at)}{extra} WHERE "id" = %(id)s""",
            {"id": job_id, "base": self.base, "error": "planned failure"},
        )

    def complete(self, job_id: str, at: float | None = None) -> None:
        duration = f', "durationInSeconds" = extract(epoch FROM {_at(at)} - "startedAt")::int'
        self._settle(job_id, "COMPLETED", "completedAt", at, duration)

    def fail(self, job_id: str, at: float | None = None, retry: bool = False) -> str | None:
        """FAILED with an error; with `retry`, a new PENDING row whose originalJobId is the root job."""
        self._settle(job_id, "FAILED", "completedAt", at, ', "error" = %(error)s')
        if not retry:
            return None
        root = self.conn.execute(
            'SELECT coalesce("originalJobId", "id") FROM "public"."Job" WHERE "id" = %s', (job_id,)
        ).fetchone()
        assert root is not None
        return self.create(at=at, original=str(root[0]))

    def cancel(self, job_id: str, at: float | None = None) -> None:
        self._settle(job_id, "CANCELLED", "cancelledAt", at)

    def run(self, evaluation: str, created: float, started: float, seconds: float, ok: bool = True) -> str:
        """Create a job, claim it and finish it `seconds` later."""
        job_id = self.create(at=created, evaluation=evaluation)
        claimed = self.claim(at=started)
        assert claimed == job_id, "another PENDING row was older: build scenarios oldest first"
        if ok:
            self.complete(job_id, at=started + seconds)
        else:
            self.fail(job_id, at=started + seconds)
        return job_id

    def rows(self, where: str = "true") -> list[tuple[Any, ...]]:
        return self.conn.execute(f'SELECT "id", "status"::text FROM "public"."Job" WHERE {where}').fetchall()

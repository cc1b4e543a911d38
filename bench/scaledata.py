"""Data for the scale benchmark: the real legacy "Job" table (Prisma columns and enum, its real indexes,
no index on status or createdAt) filled with generate_series, and real pg-boss 10 and 12 schemas (installed
by starting real pg-boss once) filled with bulk INSERTs of jobs in realistic states and timestamps."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.common import REPO

JS = Path(__file__).resolve().parent / "js"
LEGACY_DDL = """
CREATE TYPE "JobStatus" AS ENUM ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED');
CREATE TABLE "Job" (
  "id" TEXT NOT NULL, "status" "JobStatus" NOT NULL DEFAULT 'PENDING', "attempts" INTEGER NOT NULL DEFAULT 0,
  "error" TEXT, "startedAt" TIMESTAMP(3), "completedAt" TIMESTAMP(3),
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" TIMESTAMP(3) NOT NULL,
  "llmThinking" TEXT, "durationInSeconds" INTEGER, "logs" TEXT, "evaluationId" TEXT NOT NULL,
  "evaluationVersionId" TEXT, "agentEvalBatchId" TEXT, "originalJobId" TEXT, "priceInDollars" DECIMAL(10,6),
  "cancelledAt" TIMESTAMP(3), "cancelledById" TEXT, "cancellationReason" TEXT
);
"""
LEGACY_INDEXES = (
    'ALTER TABLE "Job" ADD CONSTRAINT "Job_pkey" PRIMARY KEY ("id")',
    'CREATE UNIQUE INDEX "Job_evaluationVersionId_key" ON "Job"("evaluationVersionId")',
    'CREATE INDEX "Job_evaluationId_idx" ON "Job"("evaluationId")',
    'CREATE INDEX "Job_agentEvalBatchId_idx" ON "Job"("agentEvalBatchId")',
    'CREATE INDEX "Job_originalJobId_idx" ON "Job"("originalJobId")',
    'CREATE INDEX "Job_cancelledById_idx" ON "Job"("cancelledById")',
)
_TRANSFER_RUNBOOK = """\
version: 1
name: {name}
settings:
  database:
    url: ${DATABASE_URL}
  flags: {type: dotenv, path: app.env}
  transfer:
    data: {evaluationId: evaluationId}
    updated_column: updatedAt
    marker_column: cancellationReason
flags:
  PGBOSS_ENABLED: false
stages:
  - id: legacy
"""


def transfer_runbook(name: str) -> str:
    """A runbook named `name` whose `migrate transfer legacy` moves the legacy "Job" table's pending rows
    (evaluationId into the job's data, the pg-boss job id into cancellationReason); flags in app.env."""
    return _TRANSFER_RUNBOOK.replace("{name}", name)


# Row i (1 = newest) was created i * step seconds ago: two years of history, newest rows still live.
LEGACY_INSERT = """
INSERT INTO "Job" ("id", "status", "attempts", "error", "startedAt", "completedAt", "createdAt", "updatedAt",
  "durationInSeconds", "logs", "evaluationId", "evaluationVersionId", "agentEvalBatchId", "originalJobId",
  "priceInDollars", "cancelledAt", "cancellationReason")
SELECT CASE WHEN i %% 2 = 0 THEN md5(i::text)::uuid::text ELSE substr(md5(i::text), 1, 21) END,
  s, CASE WHEN s = 'PENDING' THEN 0 ELSE 1 + (i %% 13 = 0)::int END,
  CASE WHEN s = 'FAILED' THEN 'LLM provider returned 529 (overloaded) after ' || (i %% 90) || 's' END,
  CASE WHEN s <> 'PENDING' THEN c + interval '2 seconds' END,
  CASE WHEN s IN ('COMPLETED', 'FAILED') THEN c + interval '2 seconds' + (20 + i %% 97) * interval '1 second'
       WHEN s = 'CANCELLED' THEN c + interval '5 seconds' END,
  c, c + interval '2 minutes',
  CASE WHEN s = 'COMPLETED' THEN 20 + i %% 97 END,
  CASE WHEN s = 'COMPLETED' THEN 'evaluated ' || (i %% 40) || ' highlights' END,
  'eval_' || (i %% 250000), 'ev_' || i, CASE WHEN i %% 10 = 0 THEN 'batch_' || (i / 1000) END,
  CASE WHEN i %% 33 = 0 THEN substr(md5((i + 1)::text), 1, 21) END,
  CASE WHEN s = 'COMPLETED' THEN ((i %% 500) / 10000.0)::numeric(10,6) END,
  CASE WHEN s = 'CANCELLED' THEN c + interval '5 seconds' END,
  CASE WHEN s = 'CANCELLED' THEN 'cancelled by user' END
FROM (
  SELECT i, (now() AT TIME ZONE 'UTC') - (i * %(step)s) * interval '1 second' AS c,
    (CASE WHEN i <= %(pending)s THEN 'PENDING'
          WHEN i <= %(pending)s + %(running)s THEN 'RUNNING'
          WHEN i %% 25 = 0 THEN 'FAILED' WHEN i %% 50 = 1 THEN 'CANCELLED'
          ELSE 'COMPLETED' END)::"JobStatus" AS s
  FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
) AS g
"""
# A few RUNNING rows left behind by crashed workers (stale: started long ago).
LEGACY_STALE = """UPDATE "Job" SET "startedAt" = "startedAt" - interval '3 hours'
WHERE "id" IN (SELECT "id" FROM "Job" WHERE "status" = 'RUNNING' LIMIT 5)"""

QUEUES = {"import-article": 0.24, "evaluation": 0.16, "send-email": 0.4, "sync-feed": 0.2}
"""The app's two queues and two more, with their share of the jobs."""
RETENTION = 7 * 86400
"""Finished jobs kept this long (pg-boss's default deletion/archive retention)."""
# Job i of a queue (1 = newest) finished i * step seconds ago; the newest `live` ones are still queued.
JOB_COLUMNS = (
    "name, data, state, retry_limit, retry_count, start_after, created_on, started_on, completed_on, output"
)
JOB_SELECT = """
SELECT %(queue)s AS name, jsonb_build_object('n', i) AS data, s AS state, 2 AS retry_limit,
  CASE WHEN s = 'failed' THEN 2 ELSE (i %% 7 = 0)::int END AS retry_count,
  c + CASE WHEN s = 'created' AND i %% 3 = 0 THEN interval '1 hour' ELSE interval '0' END AS start_after,
  c AS created_on,
  CASE WHEN s >= 'active' AND s <> 'cancelled' THEN c + interval '50 milliseconds' END AS started_on,
  CASE WHEN s > 'active' THEN c + interval '50 milliseconds' + (200 + i %% 1800) * interval '1 millisecond'
  END AS completed_on,
  CASE WHEN s = 'failed' THEN jsonb_build_object('message', 'upstream timed out', 'stack', 'Error: ...')
  END AS output
FROM (
  SELECT i, now() - (i * %(step)s) * interval '1 second' AS c,
    (CASE WHEN i <= %(live)s THEN (CASE WHEN i %% 10 = 0 THEN 'retry' WHEN i %% 10 = 1 THEN 'active'
                                        ELSE 'created' END)
          WHEN i %% 40 = 0 THEN 'failed' WHEN i %% 400 = 1 THEN 'cancelled' ELSE 'completed' END
    )::{schema}.job_state AS s
  FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
) AS g
"""

# The archive is `LIKE job` without its defaults: every NOT NULL column must be given.
ARCHIVE_EXTRA = "id, priority, retry_delay, retry_backoff, expire_in, keep_until, archived_on"
ARCHIVE_VALUES = (
    "gen_random_uuid(), 0, 0, false, interval '15 minutes', j.created_on + interval '14 days',"
    " coalesce(j.completed_on, j.created_on) + interval '12 hours'"
)


def run_sql(url: str, statement: str, params: dict[str, Any] | None = None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement, params)


def build_legacy(url: str, rows: int, chunk: int = 2_000_000) -> dict[str, Any]:
    """Create and fill the legacy table; return row counts and the seconds each part took."""
    start = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LEGACY_DDL)
        step = 730 * 86400 / rows
        for lo in range(1, rows + 1, chunk):
            hi = min(rows, lo + chunk - 1)
            params = {"step": step, "pending": 300, "running": 40, "lo": lo, "hi": hi}
            conn.execute(LEGACY_INSERT, params)
        filled = time.monotonic()
        for statement in LEGACY_INDEXES:
            conn.execute(statement)
        conn.execute(LEGACY_STALE)
        conn.execute('VACUUM ANALYZE "Job"')
    return {
        "rows": rows,
        "insert_s": round(filled - start, 1),
        "index_s": round(time.monotonic() - filled, 1),
    }


def pgboss_folder(major: str, work: Path) -> Path:
    """A folder holding the benchmark's node script beside real pg-boss's node_modules."""
    from runbook.toolchain import ensure_pgboss

    folder = work / f"pgboss{major}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(JS / "pgboss.mjs", folder / "pgboss.mjs")
    link = folder / "node_modules"
    if not link.exists():
        link.symlink_to(ensure_pgboss(major) / "node_modules")
    return folder


def run_node(folder: Path, url: str, schema: str, *args: str, timeout: float = 600) -> Any:
    """Run the node script; return its last stdout line parsed as JSON."""
    from runbook.demo.app import node_binary
    from runbook.toolchain import run_script

    env = {"PATH": str(node_binary().parent), "DATABASE_URL": url, "PGBOSS_SCHEMA": schema, "HOME": str(REPO)}
    out = run_script(node_binary(), folder, "pgboss.mjs", *args, env=env, timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])


def build_pgboss(url: str, major: str, schema: str, jobs: int, work: Path) -> dict[str, Any]:
    """Install pg-boss `major` into `schema` with real pg-boss, then bulk-insert `jobs` jobs over 7 days."""
    start = time.monotonic()
    folder = pgboss_folder(major, work)
    run_node(folder, url, schema, "install", ",".join(QUEUES))
    installed = time.monotonic()
    per_queue: dict[str, int] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        has_archive = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.archive",)).fetchone()
        archive = bool(has_archive and has_archive[0])
        for queue, share in QUEUES.items():
            n = int(jobs * share)
            per_queue[queue] = n
            step = RETENTION / n
            live = 400 if queue in ("import-article", "evaluation") else 2000
            select = JOB_SELECT.replace("{schema}", schema)
            params = {"queue": queue, "step": step, "live": live}
            if archive:  # v10: finished jobs older than 12 hours were moved to the archive by maintenance
                recent = int(12 * 3600 / step)
                conn.execute(
                    f"INSERT INTO {schema}.job ({JOB_COLUMNS}) {select}", {**params, "lo": 1, "hi": recent}
                )
                conn.execute(
                    f"INSERT INTO {schema}.archive ({JOB_COLUMNS}, {ARCHIVE_EXTRA})"
                    f" SELECT j.*, {ARCHIVE_VALUES} FROM ({select}) AS j",
                    {**params, "lo": recent + 1, "hi": n},
                )
            else:
                conn.execute(
                    f"INSERT INTO {schema}.job ({JOB_COLUMNS}) {select}", {**params, "lo": 1, "hi": n}
                )
        conn.execute(f"VACUUM ANALYZE {schema}.job")
        if archive:
            conn.execute(f"VACUUM ANALYZE {schema}.archive")
    return {
        "major": major,
        "schema": schema,
        "jobs": sum(per_queue.values()),
        "per_queue": per_queue,
        "install_s": round(installed - start, 1),
        "insert_s": round(time.monotonic() - installed, 1),
    }

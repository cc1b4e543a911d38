"""Fault injection: failing evaluation jobs on pg-boss (switched at runtime by the flags table) exhaust the
plan's 3 retries; failing legacy jobs get new PENDING rows with "originalJobId"; slow jobs are slow."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from runbook.demo import ExampleApp, wait_until_settled
from tests.e2e.conftest import MAJORS, AppFactory, eventually, query, set_flags

EVAL_JOBS = (
    "SELECT state::text, retry_count, retry_limit, output::text FROM pgboss.job WHERE name = 'evaluation'"
)


def _wait_health(app: ExampleApp, ok: Any, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not ok(health := app.health()):
        assert time.monotonic() < deadline, health
        time.sleep(0.05)
    return health


@pytest.mark.parametrize("major", MAJORS)
def test_injected_failures_fail_evaluations_on_pgboss(major: str, make_app: AppFactory, pg_url: str) -> None:
    app = make_app(major, PGBOSS_ENABLED="true", PGBOSS_FOR_NEW_EVALS="true")
    set_flags(pg_url, {"FAULT_FAIL_RATE_EVALUATION": "1"})
    _wait_health(app, lambda h: h["faults"]["failRate"]["evaluation"] == 1.0)

    created = [app.create_evaluation(f"bad-{i}", "agent") for i in range(3)]
    assert {r["routedTo"] for r in created} == {"pgboss"}
    app.import_article("https://example.com/fine")
    summary = wait_until_settled(pg_url, expect_created=4, timeout=90)
    assert summary["failed"] == 3 and summary["processed_once"] == 1
    assert summary["failed_attempts"] == 12  # 1 attempt + 3 retries each

    status = eventually(app.status, lambda s: s["evaluation_jobs"]["failed"] == 3)
    assert status["evaluation_jobs"] == {"pending": 0, "completed": 0, "failed": 3}
    assert status["import_jobs"] == {"pending": 0, "completed": 1, "failed": 0}
    rows = query(pg_url, EVAL_JOBS)
    assert [(state, count, limit) for state, count, limit, _ in rows] == [("failed", 3, 3)] * 3
    assert all("injected failure" in output for *_, output in rows)

    set_flags(pg_url, {"FAULT_FAIL_RATE_EVALUATION": None})  # switched off at runtime
    _wait_health(app, lambda h: h["faults"]["failRate"]["evaluation"] == 0)
    app.create_evaluation("good", "agent")
    assert wait_until_settled(pg_url, expect_created=5, timeout=30)["processed_once"] == 2


def test_legacy_failures_retry_as_new_rows_and_slow_jobs(make_app: AppFactory, pg_url: str) -> None:
    app = make_app("12", FAULT_SCOPE="legacy", FAIL_RATE_EVALUATION="1", SLOW_MS_IMPORT="1200")
    assert app.health()["faults"]["scope"] == "legacy"
    evaluation = app.create_evaluation("eval-1", "agent")
    app.import_article("https://example.com/slow")
    summary = wait_until_settled(pg_url, expect_created=2, timeout=30)
    assert summary["failed"] == 1 and summary["processed_once"] == 1 and summary["failed_attempts"] == 3

    rows = query(
        pg_url,
        """SELECT "id", "status"::text, "attempts", "originalJobId", "error", "completedAt" IS NOT NULL
           FROM "Job" WHERE "type" = 'evaluation' ORDER BY "createdAt", "id" """,
    )
    root = evaluation["jobId"]
    assert len(rows) == 3  # LEGACY_MAX_ATTEMPTS = 3 rows in the chain
    assert rows[0][0] == root and rows[0][3] is None
    assert {r[3] for r in rows[1:]} == {root}
    assert all(r[1] == "FAILED" and r[2] == 1 and "injected failure" in r[4] and r[5] for r in rows)

    ((duration, seconds),) = query(
        pg_url,
        """SELECT "durationInSeconds", extract(epoch FROM "completedAt" - "startedAt")::float
           FROM "Job" WHERE "type" = 'import-article' AND status = 'COMPLETED'""",
    )
    assert duration >= 1 and seconds >= 1.2


def test_sweep_fails_stale_running_legacy_rows(make_app: AppFactory, pg_url: str) -> None:
    set_flags(pg_url, {"LEGACY_PAUSED": "true"})
    app = make_app("12", LEGACY_STALE_SECONDS="2")
    job = app.create_evaluation("stuck", "agent")
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as if a worker claimed it and then died
        conn.execute(
            """UPDATE "Job" SET status = 'RUNNING', attempts = 1,
                 "startedAt" = (now() AT TIME ZONE 'UTC') - interval '1 hour' WHERE id = %s""",
            (job["jobId"],),
        )
    summary = wait_until_settled(pg_url, expect_created=1, timeout=20)
    assert summary["failed"] == 1 and summary["failed_attempts"] == 1
    swept = 'SELECT status::text, error, "completedAt" IS NOT NULL FROM "Job" WHERE id = %s'
    ((status, error, completed),) = query(pg_url, swept, (job["jobId"],))
    assert (status, completed) == ("FAILED", True) and error.startswith("stale:")
    assert query(pg_url, 'SELECT count(*) FROM "Job"') == [(1,)]  # the sweep never retries

"""The example app routes jobs by flags read from the postgres flag table (switched by NOTIFY), on pg-boss
10 and 12, and every job is processed exactly once by the system it was routed to."""

from __future__ import annotations

import pytest

from runbook.demo import wait_until_settled
from tests.e2e.conftest import ALL_MAJORS, AppFactory, eventually, query, set_flags

ROUTING_FLAGS = ("PGBOSS_ENABLED", "PGBOSS_FOR_NEW_EVALS", "PGBOSS_FOR_ALL_JOBS")


def _routes(results: list[dict[str, object]]) -> list[object]:
    return [r["routedTo"] for r in results]


@pytest.mark.parametrize("major", ALL_MAJORS)
def test_flags_route_jobs_between_legacy_and_pgboss(major: str, make_app: AppFactory, pg_url: str) -> None:
    # FLAGS_POLL_MS is long, so only LISTEN/NOTIFY can switch the flags within the waits below.
    app = make_app(major, FLAGS_POLL_MS="60000")
    health = app.health()
    assert health["flags"] == dict.fromkeys(ROUTING_FLAGS, False)
    assert health["flagSource"] == "postgres"
    assert health["pgboss"]["version"].startswith("12.5." if major == "11" else f"{major}.")
    assert health["pgboss"]["started"] is False  # the plan starts pg-boss only when enabled

    stage0 = [app.import_article("https://example.com/a"), app.create_evaluation("e0", "agent-1")]
    assert _routes(stage0) == ["legacy", "legacy"]

    set_flags(pg_url, {"PGBOSS_ENABLED": "true"})  # increment 1: imports to pg-boss
    assert app.wait_for_flags({"PGBOSS_ENABLED": True}, timeout=3)["flagsVersion"] == 1
    stage1 = [app.import_article("https://example.com/b"), app.create_evaluation("e1", "agent-1")]
    assert _routes(stage1) == ["pgboss", "legacy"]

    set_flags(pg_url, {"PGBOSS_FOR_NEW_EVALS": "true"})  # increment 3: evaluations too
    app.wait_for_flags({"PGBOSS_FOR_NEW_EVALS": True}, timeout=3)
    stage3 = [app.import_article("https://example.com/c"), app.create_evaluation("e3", "agent-2")]
    assert _routes(stage3) == ["pgboss", "pgboss"]

    set_flags(pg_url, {"PGBOSS_ENABLED": "false"})  # rollback: everything back to legacy
    app.wait_for_flags({"PGBOSS_ENABLED": False}, timeout=3)
    rollback = [app.import_article("https://example.com/d"), app.create_evaluation("e4", "agent-2")]
    assert _routes(rollback) == ["legacy", "legacy"]

    summary = wait_until_settled(pg_url, expect_created=8, timeout=60)
    assert summary["created"] == 8
    assert summary["exactly_once"] is True
    assert summary["duplicated"] == 0
    assert summary["routed_to"]["legacy"]["processed_once"] == 5
    assert summary["routed_to"]["pgboss"]["processed_once"] == 3
    assert summary["processed_by"] == {"legacy": 5, "pgboss": 3}

    status = eventually(
        app.status, lambda s: s["import_jobs"]["completed"] + s["evaluation_jobs"]["completed"] == 3
    )
    legacy_sql = 'SELECT "type", "status"::text, count(*) FROM "Job" GROUP BY 1, 2'
    legacy_rows = {(t, s): n for t, s, n in query(pg_url, legacy_sql)}
    assert legacy_rows == {("import-article", "COMPLETED"): 2, ("evaluation", "COMPLETED"): 3}
    boss_sql = "SELECT name, state::text, count(*) FROM pgboss.job GROUP BY 1, 2"
    boss_rows = {(name, state): n for name, state, n in query(pg_url, boss_sql)}
    assert boss_rows == {("import-article", "completed"): 2, ("evaluation", "completed"): 1}
    # the ids the API returned are the rows' ids in each system
    ledger_ids = {k: j for k, j in query(pg_url, "SELECT key, job_id FROM public.ledger")}
    assert all(ledger_ids[r["key"]] == r["jobId"] for r in stage0 + stage1 + stage3 + rollback)

    assert status["enabled"] is False
    assert status["pgboss"]["installed"] is True and status["pgboss"]["started"] is True
    version = status["pgboss"]["schemaVersion"]
    # 10.4.2 is schema 24, 12.5.0 schema 26 (v11 layout); later 12.x grow the schema almost every minor
    assert version == {"10": 24, "11": 26}[major] if major != "12" else version >= 27
    assert status["import_jobs"] == {"pending": 0, "completed": 2, "failed": 0}
    assert status["evaluation_jobs"] == {"pending": 0, "completed": 1, "failed": 0}
    assert status["legacy"]["COMPLETED"] == 5 and status["legacy"]["PENDING"] == 0

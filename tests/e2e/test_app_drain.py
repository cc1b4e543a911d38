"""Increment 4: after PGBOSS_FOR_ALL_JOBS no new legacy rows appear and the legacy worker drains the backlog;
the load generator's jobs are each processed exactly once; an idempotency key never creates a second job."""

from __future__ import annotations

from runbook.db import connect
from runbook.demo import ledger_summary, run_load, wait_until_settled
from tests.e2e.conftest import AppFactory, query, set_flags

ACTIVE = """SELECT count(*) FROM "Job" WHERE status IN ('PENDING', 'RUNNING')"""


def test_cutover_routes_everything_to_pgboss_and_legacy_drains(make_app: AppFactory, pg_url: str) -> None:
    set_flags(pg_url, {"LEGACY_PAUSED": "true"})  # build a legacy backlog first
    app = make_app("10")
    assert app.health()["legacyWorker"]["paused"] is True

    before = run_load(app.url, rate=50, seconds=0.6, eval_share=0.5, seed=7)
    assert before.sent == 30 and before.errors == 0
    assert before.by_route == {"legacy": 30}
    assert sum(before.by_type.values()) == 30
    assert query(pg_url, ACTIVE) == [(30,)]

    set_flags(pg_url, {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_ALL_JOBS": "true"})
    app.wait_for_flags({"PGBOSS_ENABLED": True, "PGBOSS_FOR_ALL_JOBS": True}, timeout=3)
    after = run_load(app.url, rate=50, seconds=0.4, eval_share=0.5, seed=8)
    assert after.sent == 20 and after.by_route == {"pgboss": 20}
    assert query(pg_url, 'SELECT count(*) FROM "Job"') == [(30,)]  # no new legacy rows after cut-over

    set_flags(pg_url, {"LEGACY_PAUSED": "false"})  # the legacy worker keeps running and drains the table
    summary = wait_until_settled(pg_url, expect_created=50, timeout=60)
    assert query(pg_url, ACTIVE) == [(0,)]
    assert summary["exactly_once"] is True
    assert summary["routed_to"]["legacy"]["processed_once"] == 30
    assert summary["routed_to"]["pgboss"]["processed_once"] == 20
    assert summary["processed_by"] == {"legacy": 30, "pgboss": 20}

    # the same key again: the original job is returned, nothing new is created or processed
    key = after.keys[0]
    again = app.import_article("https://example.com/again", key=key)
    assert again["duplicate"] is True and again["key"] == key and again["routedTo"] == "pgboss"
    with connect(pg_url) as conn:
        assert ledger_summary(conn)["created"] == 50


def test_ledger_makes_a_duplicate_run_visible(make_app: AppFactory, pg_url: str) -> None:
    app = make_app("12", PGBOSS_ENABLED="true")
    job = app.import_article("https://example.com/x")
    wait_until_settled(pg_url, expect_created=1, timeout=30)
    with connect(pg_url, autocommit=True) as conn:  # as if a crashed worker's job had run again
        conn.execute("UPDATE public.ledger SET processed_count = 2 WHERE key = %s", (job["key"],))
        summary = ledger_summary(conn)
    assert summary["duplicated"] == 1 and summary["processed_once"] == 0
    assert summary["exactly_once"] is False
    assert summary["routed_to"]["pgboss"]["duplicated"] == 1

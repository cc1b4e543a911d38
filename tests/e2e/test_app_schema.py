"""The example app's legacy table is Prisma's, from the one copy of its migration (examples/pgboss-app/
legacy-job.sql, which the tests' legacy app runs too): on a fresh database the app runs it and adds only its
nullable "type" column; on a database whose app already made the table, it keeps the table and its rows."""

from __future__ import annotations

from tests.e2e.conftest import AppFactory, query
from tests.integration.checks_pg.legacy_app import LegacyApp

INDEXES = [
    "Job_agentEvalBatchId_idx",
    "Job_cancelledById_idx",
    "Job_evaluationId_idx",
    "Job_evaluationVersionId_key",
    "Job_originalJobId_idx",
    "Job_pkey",
]


def columns(url: str) -> list[str]:
    sql = """SELECT column_name FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = 'Job' ORDER BY ordinal_position"""
    return [str(r[0]) for r in query(url, sql)]


def indexes(url: str) -> list[str]:
    sql = "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'Job' ORDER BY 1"
    return [str(r[0]) for r in query(url, sql)]


def test_a_fresh_database_gets_prismas_table_plus_the_type_column(make_app: AppFactory, pg_url: str) -> None:
    make_app("12")
    cols = columns(pg_url)
    assert cols[:3] == ["id", "status", "attempts"] and cols[-2:] == ["cancellationReason", "type"]
    assert len(cols) == 20  # Prisma's 19 and "type"
    assert indexes(pg_url) == INDEXES
    fkey = """SELECT conname FROM pg_constraint WHERE conrelid = '"Job"'::regclass AND contype = 'f'"""
    assert query(pg_url, fkey) == [("Job_originalJobId_fkey",)]


def test_an_existing_table_and_its_rows_are_kept(make_app: AppFactory, pg_url: str) -> None:
    legacy = LegacyApp(pg_url)
    try:
        legacy.install()
        job = legacy.create(at=-60)
    finally:
        legacy.close()
    assert "type" not in columns(pg_url)
    app = make_app("10", LEGACY_WORKERS="0")
    assert columns(pg_url)[-1] == "type"
    assert query(pg_url, 'SELECT "id", "status"::text, "type" FROM "Job"') == [(job, "PENDING", None)]
    assert app.status()["legacy"]["PENDING"] == 1

"""The sql kind against a real PostgreSQL database."""

from __future__ import annotations

import dataclasses
import datetime as dt

import psycopg
import pytest

from runbook.checkrun import run_check
from runbook.checks.base import Verdict
from runbook.checks.sql import SqlParams

from .conftest import ContextFactory, spec


@pytest.fixture
def jobs_url(pg_url: str) -> str:
    """A database with a legacy-style "Job" table: 2 pending, 1 running, 3 completed."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            'CREATE TABLE "Job" (id serial PRIMARY KEY, status text NOT NULL, "createdAt" timestamptz)'
        )
        conn.execute(
            """INSERT INTO "Job" (status, "createdAt") SELECT s, now() FROM unnest(
            ARRAY['PENDING','PENDING','RUNNING','COMPLETED','COMPLETED','COMPLETED']) AS s"""
        )
    return pg_url


DRAIN = """SELECT count(*) FROM "Job" WHERE status IN ('PENDING', 'RUNNING')"""


def test_value_condition(jobs_url: str, make_ctx: ContextFactory) -> None:
    m = run_check(spec("sql", name="drained", query=DRAIN, expect=("value == 0",)), make_ctx(db_url=jobs_url))
    assert (m.verdict, m.value) == (Verdict.FAIL, 3)
    assert m.explanation == "value = 3, expected == 0"
    assert m.inputs["query"] == DRAIN
    m = run_check(spec("sql", query=DRAIN, expect=("value <= 3",)), make_ctx(db_url=jobs_url))
    assert (m.verdict, m.explanation) == (Verdict.PASS, "value = 3, <= 3")


def test_conditions_on_named_columns(jobs_url: str, make_ctx: ContextFactory) -> None:
    query = """SELECT count(*) FILTER (WHERE status = 'PENDING') AS pending,
                      count(*) FILTER (WHERE status = 'COMPLETED') AS done,
                      avg(id) AS mean_id
               FROM "Job" """
    m = run_check(
        spec("sql", query=query, expect=("pending <= 2", "done >= 3", "mean_id == 3.5")),
        make_ctx(db_url=jobs_url),
    )
    assert (m.verdict, m.value) == (Verdict.PASS, 2)
    assert m.explanation == "pending = 2, <= 2; done = 3, >= 3; mean_id = 3.5, == 3.5"


def test_no_row_is_inconclusive_by_default(jobs_url: str, make_ctx: ContextFactory) -> None:
    query = """SELECT id FROM "Job" WHERE status = 'FAILED' LIMIT 1"""
    m = run_check(spec("sql", query=query, expect=("value > 0",)), make_ctx(db_url=jobs_url))
    assert (m.verdict, m.value, m.explanation) == (Verdict.INCONCLUSIVE, None, "the query returned no row")
    m = run_check(spec("sql", query=query, no_row="fail"), make_ctx(db_url=jobs_url))
    assert m.verdict is Verdict.FAIL


def test_sql_error_is_an_error_with_the_message(jobs_url: str, make_ctx: ContextFactory) -> None:
    m = run_check(spec("sql", query='SELECT count(*) FROM "Jobs"'), make_ctx(db_url=jobs_url))
    assert m.verdict is Verdict.ERROR
    assert m.explanation == 'query failed: relation "Jobs" does not exist'


def test_unknown_column_in_condition_is_an_error(jobs_url: str, make_ctx: ContextFactory) -> None:
    m = run_check(spec("sql", query=DRAIN, expect=("pending == 0",)), make_ctx(db_url=jobs_url))
    assert m.verdict is Verdict.ERROR
    assert m.explanation == "the row has no column pending (columns: count)"


def test_checks_cannot_write(jobs_url: str, make_ctx: ContextFactory) -> None:
    m = run_check(spec("sql", query="""DELETE FROM "Job" RETURNING id"""), make_ctx(db_url=jobs_url))
    assert m.verdict is Verdict.ERROR
    assert "read-only transaction" in m.explanation
    sneaky = """SET default_transaction_read_only = off; COMMIT; DELETE FROM "Job" """
    m = run_check(spec("sql", query=sneaky), make_ctx(db_url=jobs_url))
    assert (m.verdict, m.explanation) == (
        Verdict.ERROR,
        "query failed: the query holds several statements (refused: each check runs exactly one); remove the"
        " `;` and what follows it",
    )
    with psycopg.connect(jobs_url) as conn:
        assert conn.execute('SELECT count(*) FROM "Job"').fetchone() == (6,)


def test_statement_timeout_is_an_error(jobs_url: str, make_ctx: ContextFactory) -> None:
    ctx = make_ctx(db_url=jobs_url)
    settings = ctx.runbook.settings
    database = dataclasses.replace(settings.database, statement_timeout=0.2)
    ctx.runbook = dataclasses.replace(ctx.runbook, settings=dataclasses.replace(settings, database=database))
    m = run_check(spec("sql", query="SELECT pg_sleep(5)"), ctx)
    assert m.verdict is Verdict.ERROR
    assert m.explanation == "query failed: canceled by statement_timeout (the query took too long)"
    # the cached connection is still usable afterwards
    assert run_check(spec("sql", query="SELECT 1", expect=("value == 1",)), ctx).verdict is Verdict.PASS
    index = 'CREATE INDEX IF NOT EXISTS "Job_status_idx"\n  ON "Job" (status)'
    m = run_check(spec("sql", query="SELECT pg_sleep(5)", index=index), ctx)
    assert m.explanation == (
        "query failed: canceled by statement_timeout (the query took too long); "
        'create the index: CREATE INDEX IF NOT EXISTS "Job_status_idx" ON "Job" (status)'
    )
    m = run_check(spec("sql", query="SELECT * FROM nope", index=index), ctx)
    assert m.explanation == 'query failed: relation "nope" does not exist'  # named for timeouts only


def test_bound_stage_parameters(jobs_url: str, make_ctx: ContextFactory) -> None:
    entered = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    query = """SELECT count(*) FROM "Job" WHERE "createdAt" >= %(stage_entered_at)s AND status = %(status)s"""
    check = spec("sql", query=query, params={"status": "COMPLETED"}, expect=("value == 3",))
    m = run_check(check, make_ctx(db_url=jobs_url, stage_entered_at=entered))
    assert (m.verdict, m.value) == (Verdict.PASS, 3)
    assert m.inputs["bound"]["status"] == "COMPLETED"
    assert m.inputs["bound"]["stage_entered_at"] == entered.isoformat()


def test_unreachable_database_is_an_error(make_ctx: ContextFactory) -> None:
    ctx = make_ctx(db_url="postgresql://app:hunter22@127.0.0.1:1/app")
    m = run_check(spec("sql", query="SELECT 1"), ctx)
    assert m.verdict is Verdict.ERROR
    assert "could not connect" in m.explanation and "connection refused" in m.explanation
    assert "hunter22" not in str(m.to_json())


def test_missing_database_url_is_an_error(make_ctx: ContextFactory) -> None:
    m = run_check(spec("sql", query="SELECT 1"), make_ctx())
    assert m.verdict is Verdict.ERROR
    assert "settings.database.url" in m.explanation


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="query: required"):
        SqlParams(query=" ")
    with pytest.raises(ValueError, match="index: expected a CREATE INDEX statement, got 'DROP TABLE x'"):
        SqlParams(query="SELECT 1", index="DROP TABLE x")
    assert SqlParams(query="SELECT 1", index="create unique index i on t (c)").index
    with pytest.raises(ValueError, match=r"expect\[0\]: cannot read the value"):
        SqlParams(query="SELECT 1", expect=("value == zero",))

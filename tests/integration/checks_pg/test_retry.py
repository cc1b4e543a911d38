"""The retry decorator: named transient errors (taken from a real server) are retried, bounded; timeouts
and SQL errors are not."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg import errors

from runbook.checks.retry import is_transient, retry_transient
from runbook.db import connect
from runbook.errors import UnreachableError
from tests.integration.checks_pg.conftest import closed_port_url


def real_error(url: str, holder_sql: str, victim_sql: str) -> psycopg.Error:
    """The error `victim_sql` raises while another session ran `holder_sql` (and holds its locks)."""
    with psycopg.connect(url) as holder, psycopg.connect(url, autocommit=True) as victim:
        holder.execute(holder_sql)
        try:
            victim.execute(victim_sql)
        except psycopg.Error as exc:
            return exc
    raise AssertionError("no error raised")


def test_classification_of_real_errors(pg_url: str) -> None:
    psycopg.connect(pg_url, autocommit=True).execute("CREATE TABLE t (id int)").connection.close()
    lock = real_error(
        pg_url, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "SET lock_timeout = '50ms'; SELECT * FROM t"
    )
    assert isinstance(lock, errors.LockNotAvailable) and is_transient(lock)
    timeout = real_error(pg_url, "SELECT 1", "SET statement_timeout = '50ms'; SELECT pg_sleep(1)")
    assert isinstance(timeout, errors.QueryCanceled) and not is_transient(timeout)
    missing = real_error(pg_url, "SELECT 1", "SELECT * FROM nope")
    assert isinstance(missing, errors.UndefinedTable) and not is_transient(missing)
    with pytest.raises(UnreachableError) as refused:
        connect(closed_port_url(), connect_timeout=1)
    assert is_transient(refused.value)


def test_retries_transient_errors_then_succeeds(pg_url: str) -> None:
    psycopg.connect(pg_url, autocommit=True).execute("CREATE TABLE t (id int)").connection.close()
    lock = real_error(
        pg_url, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "SET lock_timeout = '50ms'; SELECT * FROM t"
    )
    calls: list[float] = []

    @retry_transient(initial=0.05)
    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise lock
        return "ok"

    assert flaky() == "ok" and len(calls) == 3
    assert calls[2] - calls[1] >= calls[1] - calls[0] > 0  # backoff grows


def test_gives_up_after_the_attempts_and_never_retries_timeouts(pg_url: str) -> None:
    timeout = real_error(pg_url, "SELECT 1", "SET statement_timeout = '50ms'; SELECT pg_sleep(1)")
    attempts: list[int] = []

    @retry_transient(initial=0.01)
    def refused() -> None:
        attempts.append(1)
        connect(closed_port_url(), connect_timeout=1)

    with pytest.raises(UnreachableError, match="connection refused"):
        refused()
    assert len(attempts) == 3

    @retry_transient
    def slow() -> None:
        attempts.append(2)
        raise timeout

    with pytest.raises(errors.QueryCanceled):
        slow()
    assert attempts.count(2) == 1


def test_a_check_survives_its_connection_being_killed(pg_url: str) -> None:
    from runbook.checkrun import CheckRunContext
    from runbook.checks.base import Verdict
    from runbook.checks.pgboss import PgBossParams, measure
    from tests.integration.checks_pg.conftest import execute, runbook_for

    params = PgBossParams(metric="installed")
    with CheckRunContext(runbook_for(pg_url)) as ctx:
        first = measure(params, ctx)
        killed = execute(
            pg_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'runbook-check' AND datname = current_database()",
        )
        second = measure(params, ctx)  # the cached connection is dead: reset, retried, reconnected
    assert killed == [(True,)]
    assert first.verdict is second.verdict is Verdict.FAIL
    assert second.explanation.startswith('pg-boss schema "pgboss" not installed')

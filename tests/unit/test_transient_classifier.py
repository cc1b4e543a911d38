"""One classifier of transient errors: the SQLSTATEs it retries and those it refuses, by code, and the
retry decorator (`runbook.checks.retry`) using that same classifier."""

from __future__ import annotations

import psycopg
import psycopg.errors
import pytest

from runbook.checks import retry, transient

RETRIED = ["40001", "40P01", "55P03", "57P01", "57P02", "57P03", "08000", "08003", "08006"]
REFUSED = [
    "57014",  # query_canceled: a statement timeout
    "42P01",  # undefined_table
    "42601",  # syntax_error
    "28P01",  # invalid_password
    "23505",  # unique_violation
    "53300",  # too_many_connections
    "22012",  # division_by_zero
]


def test_the_retried_sqlstates_are_exactly_these() -> None:
    assert sorted(transient.TRANSIENT_SQLSTATES) == sorted(RETRIED)


@pytest.mark.parametrize("sqlstate", RETRIED)
def test_retried_sqlstate(sqlstate: str) -> None:
    exc = psycopg.errors.lookup(sqlstate)("from the server")
    assert exc.sqlstate == sqlstate
    assert transient.is_transient(exc) is True


@pytest.mark.parametrize("sqlstate", REFUSED)
def test_refused_sqlstate(sqlstate: str) -> None:
    exc = psycopg.errors.lookup(sqlstate)("from the server")
    assert exc.sqlstate == sqlstate
    assert transient.is_transient(exc) is False


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("connection to server failed: Connection refused", True),
        ("server closed the connection unexpectedly", True),
        ("FATAL:  the database system is starting up", True),
        ("FATAL:  the database system is shutting down", True),
        ('FATAL:  password authentication failed for user "app"', False),
    ],
)
def test_connection_level_message_without_sqlstate(message: str, expected: bool) -> None:
    exc = psycopg.OperationalError(message)
    assert exc.sqlstate is None
    assert transient.is_transient(exc) is expected


def test_the_decorator_uses_the_same_classifier() -> None:
    assert retry.is_transient is transient.is_transient

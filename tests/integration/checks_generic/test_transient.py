"""Named transient errors are retried (bounded, with backoff, within the check's budget); nothing else is."""

from __future__ import annotations

import httpx
import psycopg.errors
import pytest

from runbook.checks import transient
from runbook.errors import ConfigError, UnreachableError


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectionRefusedError(), True),
        (ConnectionResetError(), True),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadError("reset"), True),
        (psycopg.errors.SerializationFailure(), True),
        (psycopg.errors.LockNotAvailable(), True),
        (UnreachableError("could not connect to x: connection refused"), True),
        (UnreachableError("could not connect to x: password authentication failed"), False),
        (httpx.ReadTimeout("slow"), False),
        (psycopg.errors.UndefinedTable(), False),
        (ConfigError("no database URL"), False),
        (ValueError("bad"), False),
    ],
)
def test_is_transient(exc: BaseException, expected: bool) -> None:
    assert transient.is_transient(exc) is expected


def test_server_error_is_transient() -> None:
    assert transient.is_transient(transient.ServerError(httpx.Response(503))) is True


def test_retry_until_success_and_bounded() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("refused")
        return "ok"

    assert transient.retry(flaky, wait=0.01) == "ok"
    assert len(calls) == 3

    calls.clear()

    def down() -> str:
        calls.append(1)
        raise ConnectionRefusedError("refused")

    with pytest.raises(ConnectionRefusedError):
        transient.retry(down, wait=0.01, attempts=4)
    assert len(calls) == 4


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def wrong() -> None:
        calls.append(1)
        raise psycopg.errors.UndefinedTable("relation does not exist")

    with pytest.raises(psycopg.errors.UndefinedTable):
        transient.retry(wrong, wait=0.01)
    assert calls == [1]


def test_scope_gives_name_and_budget() -> None:
    assert transient.current() is None
    assert transient.budget() == transient.DEFAULT_TIMEOUT
    with transient.scope("worker memory", 3.0) as s:
        assert transient.current() == s
        assert s.check == "worker memory"
        assert 0.5 <= transient.budget() <= 3.0
    assert transient.current() is None


def test_retries_stop_when_the_budget_is_spent() -> None:
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise ConnectionRefusedError("refused")

    with transient.scope("x", 0.0), pytest.raises(ConnectionRefusedError):
        transient.retry(down, wait=0.01, attempts=50)
    assert calls == [1]

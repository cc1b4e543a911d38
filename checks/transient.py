"""Retry named transient errors, inside the time budget of the check being run.

Only these are retried (bounded attempts, exponential backoff): connection refused or reset (also a
PostgreSQL connection that was closed or terminated), the PostgreSQL SQLSTATEs in `TRANSIENT_SQLSTATES`,
httpx connect/read errors, and HTTP 5xx answers (raised by the http kinds as `ServerError`). Everything
else fails at once: retrying a wrong query, a statement timeout (57014) or a 404 only hides it.
`is_transient` is the one classifier: `runbook.checks.retry` (the decorator) uses it too.

The runner (`runbook.checkrun`) opens a `scope` for each check, so kinds can read the check's name (for
its stored samples) and how much of its timeout is left (for their own HTTP, SQL and process timeouts).
"""

from __future__ import annotations

import contextvars
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg.errors

from runbook.errors import UnreachableError

if TYPE_CHECKING:  # httpx and tenacity are imported on first use: loading a runbook stays fast
    import httpx

__all__ = [
    "TRANSIENT_SQLSTATES",
    "Scope",
    "ServerError",
    "budget",
    "current",
    "is_transient",
    "retry",
    "scope",
]

T = TypeVar("T")
TRANSIENT_SQLSTATES = frozenset(
    {
        # The transaction lost a race with another one: the same statement succeeds when run again.
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (NOWAIT / lock_timeout)
        # The server is restarting or the connection broke: a new connection succeeds within seconds.
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (server starting up)
        "08000",  # connection_exception
        "08003",  # connection_does_not_exist
        "08006",  # connection_failure
    }
)
"""SQLSTATEs worth another attempt. Not 57014 (query_canceled: a timeout, retrying only hides a slow query),
not 28xxx (authentication) nor 42xxx (a wrong query): those fail at once."""
_CONNECTION_LOST = (
    "connection refused",
    "connection reset",
    "server closed the connection",
    "terminating connection",
    "the connection is lost",
    "consuming input failed",
    "the database system is starting up",
    "the database system is shutting down",
)
DEFAULT_TIMEOUT = 10.0
ATTEMPTS = 3


class ServerError(Exception):
    """An HTTP 5xx answer, raised so that it is retried; carries the last response."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


@dataclass(frozen=True)
class Scope:
    """The check being run: its name and the monotonic time at which its timeout expires."""

    check: str
    timeout: float
    deadline: float


_SCOPE: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("runbook_check_scope", default=None)


@contextmanager
def scope(check: str, timeout: float) -> Iterator[Scope]:
    """Run the body as check `check` with `timeout` seconds of budget."""
    s = Scope(check=check, timeout=timeout, deadline=time.monotonic() + timeout)
    token = _SCOPE.set(s)
    try:
        yield s
    finally:
        _SCOPE.reset(token)


def current() -> Scope | None:
    """The scope of the check being run, or None outside the runner."""
    return _SCOPE.get()


def budget(minimum: float = 0.5) -> float:
    """Seconds left of the current check's timeout (at least `minimum`; 10 s outside the runner)."""
    s = _SCOPE.get()
    if s is None:
        return DEFAULT_TIMEOUT
    return max(minimum, s.deadline - time.monotonic())


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is one of the named transient errors worth another attempt."""
    if isinstance(exc, ConnectionRefusedError | ConnectionResetError | ServerError):
        return True
    http = sys.modules.get("httpx")  # an httpx error implies httpx was imported
    if http is not None and isinstance(exc, http.ConnectError | http.ReadError | http.RemoteProtocolError):
        return True
    if isinstance(exc, psycopg.Error) and exc.sqlstate in TRANSIENT_SQLSTATES:
        return True
    if isinstance(exc, psycopg.OperationalError):  # the connection went away (reset, server restarted)
        text = str(exc).lower()
        return any(m in text for m in _CONNECTION_LOST)
    return isinstance(exc, UnreachableError) and "connection refused" in exc.message


def retry(fn: Callable[[], T], *, attempts: int = ATTEMPTS, wait: float = 0.2, wait_max: float = 2.0) -> T:
    """Call `fn`, retrying transient errors up to `attempts` times with backoff while budget remains.

    The last exception is re-raised unchanged when the attempts or the budget run out."""
    import tenacity

    s = _SCOPE.get()
    stop: Any = tenacity.stop_after_attempt(attempts)
    if s is not None:
        stop = stop | tenacity.stop_before_delay(max(0.0, s.deadline - time.monotonic()) * 0.8)
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=stop,
        wait=tenacity.wait_exponential(multiplier=wait, max=wait_max),
        reraise=True,
    )
    return retrying(fn)

"""A generic retry decorator for named transient errors, bounded, with exponential backoff, and inside the
time budget of the check being run (`runbook.checks.transient`).

Retried: what `transient.is_transient` names (the one classifier: connection refused or reset, the
SQLSTATEs of `transient.TRANSIENT_SQLSTATES`, httpx connect/read errors, HTTP 5xx). Never a timeout
(query_canceled) nor a SQL error: retrying those only hides them."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast, overload

from runbook.checks import transient
from runbook.checks.transient import is_transient

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

__all__ = ["ATTEMPTS", "call", "is_transient", "retry_transient"]

ATTEMPTS = 3
"""Total attempts (first try included): an unreachable database answers within about a second."""


def call(
    fn: Callable[[], T],
    *,
    attempts: int = ATTEMPTS,
    initial: float = 0.2,
    maximum: float = 2.0,
    predicate: Callable[[BaseException], bool] = is_transient,
) -> T:
    """Call `fn`, retrying `predicate` errors: `attempts` tries, waits `initial`, 2x, ... up to `maximum`,
    never past 80% of the running check's remaining budget. The last error is re-raised unchanged."""
    import tenacity  # on first use: loading a runbook stays fast

    stop: Any = tenacity.stop_after_attempt(attempts)
    scope = transient.current()
    if scope is not None:
        stop = stop | tenacity.stop_before_delay(max(0.0, scope.deadline - time.monotonic()) * 0.8)
    policy = tenacity.Retrying(
        retry=tenacity.retry_if_exception(predicate),
        stop=stop,
        wait=tenacity.wait_exponential(multiplier=initial, min=initial, max=maximum),
        reraise=True,
    )
    return policy(fn)


@overload
def retry_transient(fn: F) -> F: ...


@overload
def retry_transient(
    fn: None = None,
    *,
    attempts: int = ...,
    initial: float = ...,
    maximum: float = ...,
    predicate: Callable[[BaseException], bool] = ...,
) -> Callable[[F], F]: ...


def retry_transient(
    fn: F | None = None,
    *,
    attempts: int = ATTEMPTS,
    initial: float = 0.2,
    maximum: float = 2.0,
    predicate: Callable[[BaseException], bool] = is_transient,
) -> Any:
    """Decorate a function so that its named transient errors are retried (use bare or with arguments)."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return call(
                lambda: func(*args, **kwargs),
                attempts=attempts,
                initial=initial,
                maximum=maximum,
                predicate=predicate,
            )

        return cast(F, wrapper)

    return decorate(fn) if fn is not None else decorate

"""Run checks for the engine: the concrete `CheckContext` and `run_check`, which never raises for a check's
own problems (an unknown kind, a crash, a timeout all become an ERROR measurement).

Timeouts: `run_check` runs the kind in a worker thread inside `transient.scope(name, spec.timeout)`, so
the kind sizes its own HTTP, SQL and process timeouts from `transient.budget()`; if it still has not
returned when the timeout (plus a short grace) is over, the runner stops waiting, cancels the context's
database connections and returns ERROR "timed out after Ns".
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

import psycopg

from runbook import db
from runbook.checkconns import CheckConnections
from runbook.checks import get_kind
from runbook.checks.base import CheckContext
from runbook.checks.transient import scope
from runbook.errors import RunbookError
from runbook.measurement import Measurement, Sample, Verdict
from runbook.model import CheckSpec, Runbook
from runbook.redact import Redactor
from runbook.units import format_duration

__all__ = ["CheckRunContext", "SampleProvider", "redactor_for", "run_check", "run_checks"]

SampleProvider = Callable[[str], Sequence[Sample]]
"""Earlier samples of a check (by name) in the current stage, oldest first."""
GRACE = 2.0
"""Seconds a kind may overrun its timeout (closing sockets, killing a child) before the runner gives up."""

T = TypeVar("T")


def _no_samples(check: str) -> Sequence[Sample]:
    return ()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CheckRunContext:
    """The check context: the concrete `CheckContext` (runbook.checks.base) every check kind runs with. What
    checks see: the runbook, the current stage, a clock, samples, and cached read-only connections.

    `samples` is the provider of stored samples (the engine passes one backed by the state store; by
    default there are none). Use as a context manager, or call `close()`; connections are opened on first
    use, one per URL, in `connections` when given (a session's, kept across rounds), else its own."""

    def __init__(
        self,
        runbook: Runbook,
        *,
        stage_id: str | None = None,
        stage_entered_at: dt.datetime | None = None,
        env: Mapping[str, str] | None = None,
        samples: SampleProvider | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        connections: CheckConnections | None = None,
    ) -> None:
        self.runbook = runbook
        self.stage_id = stage_id
        self.stage_entered_at = stage_entered_at
        self.env: Mapping[str, str] = dict(os.environ) if env is None else env
        self._samples: SampleProvider = samples or _no_samples
        self._clock = clock or _utcnow
        self._pool = connections or CheckConnections()
        self._owns_pool = connections is None
        self._lock = threading.Lock()
        self._memo: dict[Hashable, Any] = {}

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()` once for `key` while this context lives (one monitoring round): what every check of
        the round would read alike, such as the pg-boss layout. A failure is not kept."""
        with self._lock:
            if key in self._memo:
                return cast(T, self._memo[key])
        value = compute()
        with self._lock:
            self._memo.setdefault(key, value)
        return value

    def now(self) -> dt.datetime:
        """The current time (UTC)."""
        return self._clock()

    def samples(self, check: str) -> Sequence[Sample]:
        """Earlier samples of `check` in the current stage, oldest first (from the provider)."""
        return self._samples(check)

    @contextlib.contextmanager
    def connect(self, url: str | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A cached read-only connection to `url` (default settings.database.url); each use is one
        transaction, rolled back afterwards, so no check can write and none sees a stale snapshot."""
        settings = self.runbook.settings.database
        target = url or settings.url
        conn = self._pool.get(
            target or "",
            lambda: db.connect(
                target,
                read_only=True,
                statement_timeout=settings.statement_timeout,
                connect_timeout=settings.connect_timeout,
                application_name="runbook-check",
            ),
        )
        try:
            yield conn
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()

    def cancel(self) -> None:
        """Cancel running queries and drop every cached connection (after a check timed out)."""
        self._pool.cancel()

    def close(self) -> None:
        """End the round: forget what it memoised; close the connections unless a session keeps them."""
        with self._lock:
            self._memo.clear()
        if self._owns_pool:
            self._pool.close()

    def __enter__(self) -> CheckRunContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def redactor_for(
    runbook: Runbook, spec: CheckSpec | None = None, ctx: CheckContext | None = None
) -> Redactor:
    """A redactor knowing the runbook's secret values (runbook.secrets) and the check's own: header and env
    values, the passwords and query values of its URLs. The runbook's are read once per round (`ctx.memo`)."""
    from runbook.secrets import runbook_secrets, url_secrets, urls_in

    secrets: list[str] = []
    if spec is not None:
        for name in ("headers", "env"):
            values = getattr(spec.params, name, None)
            if isinstance(values, Mapping):
                secrets.extend(str(v) for v in values.values())
        # `Bearer abc...`: the credential alone is secret too (it may also appear in a query string).
        secrets.extend(part for value in list(secrets) for part in str(value).split()[1:] if len(part) >= 8)
        secrets.extend(s for url in urls_in(spec.params) for s in url_secrets(url))
    memo = getattr(ctx, "memo", None)
    shared = (
        memo(("runbook-secrets",), lambda: runbook_secrets(runbook)) if memo else runbook_secrets(runbook)
    )
    return Redactor([*shared, *secrets])


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return " / ".join(lines[:3])[:500] if lines else ""


def _clean(value: Any, redact: Redactor) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _clean(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, redact) for v in value]
    return value


def _measure(spec: CheckSpec, ctx: CheckContext) -> Measurement:
    """Resolve the kind and measure; exceptions become ERROR measurements."""
    try:
        kind = get_kind(spec.kind)
    except KeyError:
        return Measurement(Verdict.ERROR, None, f"unknown check kind {spec.kind!r}", {})
    except ImportError as exc:
        return Measurement(Verdict.ERROR, None, f"check kind {spec.kind!r} cannot be loaded: {exc}", {})
    params = spec.params
    try:
        if isinstance(params, Mapping):
            params = kind.params(**params)
        with scope(spec.name, spec.timeout):
            return kind.measure(params, ctx)
    except RunbookError as exc:
        text = exc.message + (f"; {exc.hint}" if exc.hint else "")
        return Measurement(Verdict.ERROR, None, _one_line(text), {})
    except Exception as exc:
        message, hint = getattr(exc, "message", None), getattr(exc, "hint", None)
        if isinstance(message, str):  # a kind's own "could not measure" error with a message and a hint
            text = message + (f"; {hint}" if isinstance(hint, str) and hint else "")
            return Measurement(Verdict.ERROR, None, _one_line(text), {})
        return Measurement(Verdict.ERROR, None, f"{type(exc).__name__}: {_one_line(str(exc))}", {})


def run_check(spec: CheckSpec, ctx: CheckContext) -> Measurement:
    """Measure one check with its timeout enforced. Never raises for the check's own problems."""
    started = time.monotonic()
    box: list[Measurement] = []
    run = contextvars.copy_context().run
    worker = threading.Thread(
        target=lambda: box.append(run(_measure, spec, ctx)), name=f"check:{spec.name}", daemon=True
    )
    worker.start()
    worker.join(spec.timeout + GRACE)
    if box:
        m = box[0]
    else:
        cancel = getattr(ctx, "cancel", None)
        if callable(cancel):
            cancel()
        m = Measurement(Verdict.ERROR, None, f"timed out after {format_duration(spec.timeout)}", {})
    redact = redactor_for(ctx.runbook, spec, ctx)
    return dataclasses.replace(
        m,
        check=spec.name,
        kind=spec.kind,
        value=_clean(m.value, redact),
        explanation=redact(_one_line(m.explanation)),
        inputs=_clean(dict(m.inputs), redact),
        measured_at=ctx.now(),
        duration_ms=(time.monotonic() - started) * 1000,
    )


def run_checks(specs: Sequence[CheckSpec], ctx: CheckContext) -> list[Measurement]:
    """Measure each check in order."""
    return [run_check(spec, ctx) for spec in specs]

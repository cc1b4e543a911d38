"""Preemption: a rollback never waits for the operation in flight; that operation stops for it.

The operation (an advance holding the lock, a gate run, a watch round) arms a `Guard` when it starts: the
newest abort request id is its baseline (runbook.state.aborts). Between its steps it calls `check`, in
verify polling it sleeps with `pause` (woken by the request's NOTIFY), and the transactions that would begin
its flip or commit it refuse a newer request. When preempted it stops inside `honoured()`: an operation
that may have flipped flags puts them at the rollback's target (the rollback writes them too: the same
values), a `preempted` event is recorded, and PreemptedError (exit 4) leaves the command. It never commits.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from runbook import machine
from runbook.errors import PreemptedError, RunbookError
from runbook.session import Session

PREEMPTIBLE = frozenset({"advance"})
"""Lock holders a rollback preempts instead of waiting for (rollbacks and reconciles it waits for)."""


class Guard:
    """What an operation checks between its steps; `arm()` when it starts (after taking the lock)."""

    def __init__(self, session: Session, operation: str, *, restore: bool = False) -> None:
        self.session = session
        self.operation = operation
        self.restore = restore
        self.baseline: int | None = None
        self.from_stage: str | None = None
        self.to_stage: str | None = None

    @property
    def name(self) -> str:
        return self.session.runbook.name

    def arm(self) -> None:
        """Take the baseline (requests up to now are not for us) and listen for new ones."""
        store = self.session.store()
        self.baseline = store.abort_baseline(self.name)
        store.listen_aborts()

    def check(self, step: str) -> None:
        """Raise PreemptedError if a rollback asked to abort since `arm()`."""
        if self.baseline is None:
            return
        abort = self.session.store().abort_since(self.name, self.baseline)
        if abort is not None:
            raise PreemptedError(abort, step, self.operation)

    def pause(self, seconds: float) -> None:
        """Sleep between verify rounds; wake and raise at once when a rollback asks to abort."""
        self.check("verify")
        if self.baseline is not None:
            self.session.store().wait_abort(self.name, seconds)
        else:
            time.sleep(seconds)
        self.check("verify")

    def halt_if_aborted(self, step: str) -> None:
        """`check`, and when preempted stop cleanly (see `stop`) and raise PreemptedError."""
        with self.honoured():
            self.check(step)

    @contextlib.contextmanager
    def honoured(self) -> Iterator[Guard]:
        """Run the operation; when preempted, stop cleanly (flags, `preempted` event) and re-raise."""
        try:
            yield self
        except PreemptedError as exc:
            self.stop(exc)
            raise PreemptedError(exc.abort, exc.step, self.operation) from None

    def stop(self, exc: PreemptedError) -> None:
        """Put the flags at the rollback's target (if this operation flips flags) and record `preempted`."""
        abort = exc.abort
        note = ""
        if self.restore:
            note = ensure_flags(self.session, abort.flags)
        from runbook import engine

        ev = engine.event(
            self.session,
            "preempted",
            from_stage=self.from_stage,
            to_stage=self.to_stage,
            reason=f"{self.operation} stopped at {exc.step}: {abort.describe()}",
            outcome="stopped" + (f"; {note}" if note else ""),
            data={"operation": self.operation, "step": exc.step, "abort": abort.to_json()},
        )
        with contextlib.suppress(RunbookError):  # the record must not hide the preemption
            self.session.store().append_event(self.name, ev)
        self.session.progress(f"{self.operation} preempted at {exc.step}: {abort.describe()}")


def ensure_flags(session: Session, target: dict[str, str]) -> str:
    """Write `target` if the backend shows anything else; say what happened (never raises)."""
    try:
        backend = session.backend()
        actual = backend.read(list(target))
        if not machine.drift(target, actual):
            return ""
        backend.write(dict(target), actor=str(session.actor))
        return "flags put at the rollback's target"
    except RunbookError as exc:
        return f"could not set the flags: {exc.message}"


def preemptible(holder: Any) -> bool:
    """Whether a rollback preempts this lock holder (an advance) rather than waiting for it."""
    return str(getattr(holder, "operation", "")) in PREEMPTIBLE

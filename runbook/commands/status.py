"""`migrate status`: where the migration is, desired vs actual flags (drift), soak, latest measurements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runbook import engine, machine, privilege
from runbook.errors import RunbookError
from runbook.exitcodes import ExitCode
from runbook.model import CommandFlags, FlagBackendSettings, PostgresFlags, Runbook
from runbook.session import Session


@dataclass
class StatusResult:
    runbook: str
    stage: str
    title: str
    version: int
    entered_at: Any
    recorded: bool
    next_stage: str | None
    soak_seconds: float
    soak_remaining: float
    desired: dict[str, str]
    actual: dict[str, str | None]
    flags_error: str | None
    drift: list[machine.FlagChange]
    pending_intent: dict[str, Any] | None
    flags_error_code: ExitCode = ExitCode.UNREACHABLE
    """The exit code of the error that kept the flags unread (5: the backend is unavailable, as advance)."""
    unset: list[str] = field(default_factory=list)
    """Flags the postgres or command backend has no value for while their desired value is the safe one:
    the app reads the environment, else off (docs/app-contract.md), so they are not drift."""
    unset_label: str = "no row"
    """How the backend words a missing value: `no row` (postgres), `not set` (command)."""
    latest: list[dict[str, Any]] = field(default_factory=list)
    backend: str = ""
    time_scale: float = 1.0
    warnings: list[str] = field(default_factory=list)
    """Risks of how the toolkit is connected (a superuser), each naming the fix."""
    template: str = "status"

    @property
    def exit_code(self) -> ExitCode:
        if self.flags_error:
            return self.flags_error_code
        return ExitCode.NOT_READY if (self.drift or self.pending_intent) else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "runbook": self.runbook,
            "stage": self.stage,
            "title": self.title,
            "version": self.version,
            "entered_at": self.entered_at,
            "recorded": self.recorded,
            "next_stage": self.next_stage,
            "soak_seconds": self.soak_seconds,
            "soak_remaining_seconds": self.soak_remaining,
            "flags": {
                "desired": self.desired,
                "actual": self.actual,
                "backend": self.backend,
                "error": self.flags_error,
                "unset": self.unset,
                "unset_label": self.unset_label,
            },
            "drift": [c.to_json() for c in self.drift],
            "pending_intent": self.pending_intent,
            "latest": self.latest,
            "time_scale": self.time_scale,
            "warnings": self.warnings,
            "exit_code": int(self.exit_code),
        }


@dataclass
class FlagsRead:
    """The actual flags against the desired ones: what drifted, what is unset at its safe value."""

    actual: dict[str, str | None]
    error: str | None
    unset: list[str]
    drift: list[machine.FlagChange]
    error_code: ExitCode = ExitCode.OK
    """The exit code of `error` (the backend unavailable: 5)."""


def read_flags(session: Session, desired: dict[str, str]) -> FlagsRead:
    """Read the backend's flags and compare them with `desired` (no drift is claimed when unreadable)."""
    rb = session.runbook
    try:
        actual = session.backend().read(list(rb.flag_names))
    except RunbookError as exc:
        return FlagsRead({}, exc.message, [], [], exc.exit_code)
    unset = _unset_at_safe(rb, desired, actual)
    drift = [c for c in machine.drift(desired, actual) if c.name not in unset]
    return FlagsRead(actual, None, unset, drift)


def status(session: Session) -> StatusResult:
    """Read the state and the actual flags; nothing is changed."""
    rb = session.runbook
    cur = engine.current(session)
    store = session.store()
    nxt = rb.next_stage(cur.stage.id)
    flags = read_flags(session, cur.flags)
    intent = store.pending_intent(rb.name)
    latest: list[dict[str, Any]] = []
    if cur.recorded:
        for spec in (*cur.stage.monitor, *cur.stage.soak.work):
            got = store.samples(rb.name, cur.stage.id, spec.name, since=cur.entered_at, limit=1)
            if got:
                latest.append(dict(got[-1].measurement))
    return StatusResult(
        runbook=rb.name,
        stage=cur.stage.id,
        title=cur.stage.title,
        version=cur.version,
        entered_at=cur.entered_at,
        recorded=cur.recorded,
        next_stage=nxt.id if nxt else None,
        soak_seconds=cur.stage.soak.duration,
        soak_remaining=machine.soak_remaining(cur.stage, cur.entered_at, session.clock()),
        desired=cur.flags,
        actual=flags.actual,
        flags_error=flags.error,
        flags_error_code=flags.error_code,
        drift=flags.drift,
        unset=flags.unset,
        unset_label=UNSET_LABELS.get(type(rb.settings.flags), ""),
        pending_intent=None
        if intent is None
        else {"id": intent.id, "operation": intent.operation, "user": str(intent.actor), "at": intent.at},
        latest=latest,
        backend=session.backend().describe(),
        time_scale=rb.time_scale,
        warnings=privilege.warnings(store.conn),
    )


UNSET_LABELS: dict[type[FlagBackendSettings], str] = {PostgresFlags: "no row", CommandFlags: "not set"}
"""The backends where a missing value means the app's environment variable, else off (docs/app-contract.md:
a postgres row, a `get` printing nothing), and how each words it."""


def _unset_at_safe(rb: Runbook, desired: dict[str, str], actual: dict[str, str | None]) -> list[str]:
    """Flags the backend has no value for while their desired value is the safe one: a missing value means
    the app's environment variable, else off (UNSET_LABELS), so a fresh set-up is not drift."""
    if type(rb.settings.flags) not in UNSET_LABELS:
        return []
    safe = rb.safe_flags()
    return [n for n, v in desired.items() if n in actual and actual[n] is None and v == safe.get(n)]

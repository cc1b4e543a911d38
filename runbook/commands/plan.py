"""`migrate plan`: what the next transition would do, the way `terraform plan` shows a diff."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runbook import engine, machine
from runbook.evaluation import evaluate
from runbook.exitcodes import ExitCode
from runbook.measurement import Measurement
from runbook.model import CheckSpec, Stage
from runbook.reconcile import pending_blockers
from runbook.session import Session
from runbook.transfer import action as transfer_action


def flags_now(session: Session, desired: Mapping[str, str]) -> dict[str, str | None]:
    """The flags as the backend holds them, a plan's `before` (the diff says what the flip will really
    change, also after drift): a value the backend does not have while the desired one is the safe value
    counts as that (the app reads a missing flag as off); when the backend cannot be read, the recorded
    (desired) flags stand."""
    from runbook.commands.status import read_flags

    got = read_flags(session, dict(desired))
    if got.error is not None:
        return dict(desired)
    safe = session.runbook.safe_flags()
    now = {n: got.actual.get(n) for n in desired}
    return {n: desired[n] if v is None and desired[n] == safe.get(n) else v for n, v in now.items()}


def _spec(c: CheckSpec) -> dict[str, Any]:
    return {"name": c.name, "kind": c.kind, "description": c.description}


@dataclass
class PlanResult:
    current: Stage
    next: Stage | None
    entered_at: Any
    version: int
    changes: list[machine.FlagChange]
    soak_remaining: float
    checked: bool
    measurements: list[Measurement] = field(default_factory=list)
    blockers: list[machine.Blocker] = field(default_factory=list)
    time_scale: float = 1.0
    transfer: transfer_action.ActionResult | None = None
    """The next stage's `transfer:` with a dry-run count of what would move now (or why it cannot)."""
    contract: list[str] = field(default_factory=list)
    """With `check`: fields the runbook's checks (of any stage) will read that the app does not serve as
    the contract says, now (runbook.contract_probe). Warnings: they do not change the exit code."""
    template: str = "plan"

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.NOT_READY if self.blockers else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        nxt = self.next
        return {
            "current": {
                "id": self.current.id,
                "title": self.current.title,
                "entered_at": self.entered_at,
                "version": self.version,
            },
            "next": None
            if nxt is None
            else {
                "id": nxt.id,
                "title": nxt.title,
                "description": nxt.description,
                "preflight": [_spec(c) for c in nxt.preflight],
                "verify": [_spec(c) for c in nxt.verify],
                "monitor": [_spec(c) for c in nxt.monitor],
                "soak_seconds": nxt.soak.duration,
                "manual": [{"id": m.id, "text": m.text} for m in nxt.manual],
                "approval": nxt.approval,
                "irreversible": nxt.irreversible,
                "rollback_to": nxt.rollback_to,
                "transfer": self.transfer.to_json() if self.transfer else None,
            },
            "flags": [c.to_json() for c in self.changes],
            "soak_remaining_seconds": self.soak_remaining,
            "checked": self.checked,
            "checks": [m.to_json() for m in self.measurements],
            "blockers": [b.to_json() for b in self.blockers],
            "contract": self.contract,
            "time_scale": self.time_scale,
            "exit_code": int(self.exit_code),
        }


def plan(session: Session, *, check: bool = False) -> PlanResult:
    """Show the next transition; with `check`, also run its preflight and the current monitors (read-only).
    At the last stage there is no transition: `check` measures its monitors (exit 0 when they hold)."""
    rb = session.runbook
    cur = engine.current(session)
    nxt = rb.next_stage(cur.stage.id)
    now = session.clock()
    target = rb.desired_flags(nxt.id) if nxt else cur.flags
    result = PlanResult(
        current=cur.stage,
        next=nxt,
        entered_at=cur.entered_at,
        version=cur.version,
        changes=machine.flag_diff(flags_now(session, cur.flags), target),
        soak_remaining=machine.soak_remaining(cur.stage, cur.entered_at, now),
        checked=check,
        time_scale=rb.time_scale,
    )
    result.blockers = pending_blockers(session) if cur.recorded else []  # never plan over a half-done flip
    if nxt is not None and nxt.transfer is not None:
        result.transfer = transfer_action.preview(session, nxt) or transfer_action.ActionResult(nxt.transfer)
        if check and result.transfer.error:
            result.blockers.append(machine.Blocker("transfer", f"transfer: {result.transfer.error}"))
    if nxt is None and not check:
        result.blockers.append(machine.Blocker("final", f"{cur.stage.id} is the last stage"))
        return result
    if check:
        from runbook.contract_probe import problems

        judged = evaluate(session, cur, nxt)
        result.measurements = judged.measurements
        measured = {(cur.stage.id, m.check) for m in [*judged.monitors, *judged.work]}
        measured |= {(nxt.id, m.check) for m in judged.preflight} if nxt is not None else set()
        result.contract = problems(rb, cur.stage.id, session.env, measured)
        result.blockers += judged.blockers([m.id for m in nxt.manual] if nxt else [])  # a plan assumes them
    elif result.soak_remaining > 0:
        result.blockers.append(machine.Blocker("soak", "soak not over"))
    return result

"""`migrate advance`: leave the current stage for the next one. Preflight -> intent -> flip -> verify ->
commit; if verify fails, roll back by itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from runbook import autorollback, engine, faultpoints, machine
from runbook.commands.plan import flags_now
from runbook.errors import NotReadyError, UsageError
from runbook.evaluation import evaluate
from runbook.exitcodes import ExitCode
from runbook.measurement import Measurement, Verdict
from runbook.preempt import Guard
from runbook.reconcile import pending_blockers
from runbook.session import Session
from runbook.transfer import action as transfer_action


@dataclass
class AdvanceResult:
    from_stage: str
    to_stage: str
    outcome: str  # advanced | rolled-back | blocked | dry-run | verify-inconclusive | not-rolled-back
    changes: list[machine.FlagChange]
    measurements: list[Measurement] = field(default_factory=list)
    verify: list[Measurement] = field(default_factory=list)
    blockers: list[machine.Blocker] = field(default_factory=list)
    rolled_back_to: str | None = None
    forced: bool = False
    reason: str | None = None
    leftover: list[dict[str, Any]] | None = field(default_factory=list)
    """After an automatic rollback: jobs still queued in pg-boss; None when they could not be counted."""
    failure: str | None = None
    transfer: transfer_action.ActionResult | None = None
    """The stage's `transfer:` action: its dry run (blocked, dry-run) or its run and verify."""
    template: str = "advance"

    @property
    def exit_code(self) -> ExitCode:
        if self.outcome == "transfer-failed" and self.transfer is not None:
            return self.transfer.exit_code
        return {
            "advanced": ExitCode.OK,
            "dry-run": ExitCode.OK if not self.blockers else ExitCode.NOT_READY,
            "rolled-back": ExitCode.ROLLED_BACK,
            "flag-write-failed": ExitCode.UNREACHABLE,
        }.get(self.outcome, ExitCode.NOT_READY)

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.from_stage,
            "to": self.to_stage,
            "outcome": self.outcome,
            "flags": [c.to_json() for c in self.changes],
            "checks": [m.to_json() for m in self.measurements],
            "verify": [m.to_json() for m in self.verify],
            "blockers": [b.to_json() for b in self.blockers],
            "rolled_back_to": self.rolled_back_to,
            "forced": self.forced,
            "reason": self.reason,
            "leftover": self.leftover,
            "failure": self.failure,
            "transfer": self.transfer.to_json() if self.transfer else None,
            "exit_code": int(self.exit_code),
        }


def advance(
    session: Session,
    *,
    dry_run: bool = False,
    yes: bool = False,
    force: bool = False,
    reason: str | None = None,
    confirms: Sequence[str] = (),
) -> AdvanceResult:
    """Advance one stage if every gate allows it (or `force`, audited)."""
    rb = session.runbook
    if force and not reason:
        raise UsageError("--force needs --reason", hint='add --reason "why this is safe"')
    store = session.store()
    guard = Guard(session, "advance", restore=True)  # a rollback preempts it between steps
    lock = store.lock(rb.name, "advance", session.actor, acquired=None if dry_run else guard.arm)
    with lock, guard.honoured():
        faultpoints.pause("advance:locked")
        from runbook.reconcile import reconcile_pending

        if not dry_run:  # a dry run changes nothing, not even a repair
            reconcile_pending(session)
        cur = engine.ensure_recorded(session) if not dry_run else engine.current(session)
        nxt = rb.next_stage(cur.stage.id)
        if nxt is None:
            raise NotReadyError(
                f"already at the last stage, {cur.stage.id}", hint="nothing to advance; see `migrate status`"
            )
        unknown = [c for c in confirms if c not in {m.id for m in nxt.manual}]
        if unknown:
            ids = ", ".join(m.id for m in nxt.manual) or "none"
            raise UsageError(f"{nxt.id} has no checklist item {unknown[0]!r}", hint=f"its items: {ids}")

        judged = evaluate(session, cur, nxt)
        guard.from_stage, guard.to_stage = cur.stage.id, nxt.id
        faultpoints.pause("advance:preflight")
        guard.check("preflight")
        measured = judged.measurements
        confirmed = set(confirms)
        if not dry_run:
            for item in nxt.manual:
                if item.id not in confirmed and session.confirm(f"Confirm for {nxt.id}: {item.text}?"):
                    confirmed.add(item.id)
        blockers = judged.blockers(confirmed)
        preview = transfer_action.preview(session, nxt)  # a bad mapping blocks before anything is flipped
        if preview is not None and preview.error is not None:
            blockers.append(
                machine.Blocker("transfer", f"transfer to queue {preview.spec.queue}: {preview.error}")
            )
        target = rb.desired_flags(nxt.id)
        changes = machine.flag_diff(flags_now(session, cur.flags), target)  # what the flip will change
        result = AdvanceResult(
            cur.stage.id, nxt.id, "blocked", changes, measured, blockers=blockers, reason=reason,
            transfer=preview,
        )  # fmt: skip
        if dry_run:
            result.outcome = "dry-run"
            result.blockers += pending_blockers(session) if cur.recorded else []  # it may not repair one
            return result
        hard = [b for b in blockers if b.code in ("manual", "transfer")]
        if hard or (blockers and not force):
            return result
        result.forced = bool(blockers)
        if not yes and not session.confirm(f"Flip flags and enter {nxt.id}?"):
            raise UsageError("not confirmed", hint="answer y, or pass --yes when running without a terminal")

        for item in nxt.manual:
            ev = engine.event(
                session,
                "confirm",
                from_stage=cur.stage.id,
                to_stage=nxt.id,
                reason=item.text,
                data={"item": item.id},
            )
            store.append_event(rb.name, ev)
        store.begin_intent(
            rb.name,
            expected_version=cur.version,
            operation="advance",
            to_stage=nxt.id,
            flags_target=target,
            actor=session.actor,
            flags_before=cur.flags,
            reason=reason,
            unless_aborted_since=guard.baseline,
        )
        session.progress(f"flipping flags for {nxt.id} ...")
        faultpoints.pause("advance:intent")
        guard.check("flip")  # not after a rollback set the flags (one that lands mid-flip is undone below)
        f = engine.flip(session, target)
        faultpoints.pause("advance:flipped")
        guard.check("flip")
        if f.error is not None:
            out = engine.rollback_now(
                session,
                from_stage=cur.stage.id,
                to_stage=cur.stage.id,
                expected_version=cur.version,
                operation="auto-rollback",
                reason=f"flag write failed: {f.error.message}",
            )
            result.outcome, result.rolled_back_to, result.leftover = (
                "flag-write-failed",
                out.to_stage,
                out.leftover,
            )
            result.failure = f.error.message
            return result
        session.progress(f"verifying {nxt.id} ...")
        checks = engine.verify(session, nxt, sleep=guard.pause)
        faultpoints.pause("advance:verified")
        guard.check("verify")
        result.verify = checks
        verdict = machine.verify_outcome(checks)
        if verdict is Verdict.FAIL:
            failing = "; ".join(
                f"{m.check}: {m.explanation}" for m in checks if m.verdict is not Verdict.PASS
            )
            auto = autorollback.roll_back(
                session,
                from_stage=nxt.id,
                expected_version=cur.version,
                reason=f"verify failed: {failing}",
                verdicts=[*measured, *checks],
                entered=autorollback.Entered(cur.stage.id, f.before, target, reason),
                locked=True,
            )
            if auto.refused is not None:  # out of an irreversible stage: no automatic rollback
                result.outcome, result.failure = "not-rolled-back", f"{failing}; {auto.refused.message}"
                return result
            result.outcome, result.rolled_back_to = "rolled-back", auto.to_stage
            result.leftover = auto.done.leftover if auto.done else []
            return result
        data: dict[str, Any] = (
            {"forced": True, "blockers": [b.to_json() for b in blockers]} if blockers else {}
        )
        moved = transfer_action.run(session, nxt)  # a failure keeps the flip (verify passed): recorded below
        if moved is not None:
            result.transfer, data["transfer"] = moved, moved.to_json()
            checks = [*checks, *moved.verify]
        ev = engine.event(
            session,
            "advance",
            from_stage=cur.stage.id,
            to_stage=nxt.id,
            flags_before=f.before,
            flags_after=target,
            verdicts=[*measured, *checks],
            reason=reason,
            data=data,
        )
        store.transition(rb.name, cur.version, nxt.id, target, ev, unless_aborted_since=guard.baseline)
        faultpoints.pause("advance:committed")
        session.notify("advance", {**ev.to_json(), "stage": nxt.id})
        result.outcome = "advanced" if verdict is Verdict.PASS else "verify-inconclusive"
        if moved is not None and moved.failed:
            result.outcome, result.failure = "transfer-failed", moved.failure()
        return result

"""`migrate gate`: the CI gate job. Run the current stage's monitors and the next stage's preflight once;
exit non-zero when any does not pass; optionally roll back on a breach (a scheduled job as the watcher)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook import autorollback, engine, monitoring, privilege
from runbook.errors import UsageError
from runbook.exitcodes import ExitCode
from runbook.measurement import Measurement, Verdict
from runbook.preempt import Guard
from runbook.reconcile import reconcile_first
from runbook.session import Session


@dataclass
class GateResult:
    runbook: str
    stage: str
    next_stage: str | None
    monitors: list[Measurement]
    preflight: list[Measurement]
    breaches: list[dict[str, Any]] = field(default_factory=list)
    rolled_back_to: str | None = None
    files: list[str] = field(default_factory=list)
    not_rolled_back: str | None = None
    """Why the rollback on failure was refused (out of an irreversible stage): the breach is recorded."""
    warnings: list[str] = field(default_factory=list)
    """Risks of how the toolkit is connected (a superuser), each naming the fix."""
    reconciled: str | None = None
    """An unfinished intent reconciled before judging (`unfinished advance #2: reverted`)."""
    template: str = "gate"

    @property
    def exit_code(self) -> ExitCode:
        if self.rolled_back_to:
            return ExitCode.ROLLED_BACK
        if self.not_rolled_back:
            return ExitCode.NOT_READY
        every = [*self.monitors, *self.preflight]
        return ExitCode.OK if all(m.verdict is Verdict.PASS for m in every) else ExitCode.NOT_READY

    def to_json(self) -> dict[str, Any]:
        return {
            "runbook": self.runbook,
            "stage": self.stage,
            "next_stage": self.next_stage,
            "monitors": [m.to_json() for m in self.monitors],
            "preflight": [m.to_json() for m in self.preflight],
            "breaches": self.breaches,
            "rolled_back_to": self.rolled_back_to,
            "not_rolled_back": self.not_rolled_back,
            "files": self.files,
            "reconciled": self.reconciled,
            "warnings": self.warnings,
            "exit_code": int(self.exit_code),
        }


def gate(
    session: Session,
    *,
    rollback_on_failure: bool = False,
    junit: str | None = None,
    summary: str | None = None,
) -> GateResult:
    """One gate run. Monitor measurements are stored as samples, so limits span scheduled runs."""
    rb = session.runbook
    for path, option in ((junit, "--junit"), (summary, "--summary")):
        if path is not None:
            _writable(path, option)
    guard = Guard(session, "gate")  # a rollback while the gate judges: it stops, never passes
    guard.arm()
    done = reconcile_first(session, "gate")  # never judge over a half-done flip
    cur = engine.current(session)
    nxt = rb.next_stage(cur.stage.id)
    rnd = monitoring.sample(session, cur)
    if cur.recorded and rnd.stored:
        session.store().prune_samples(rb.name, rb.settings.state.sample_retention)
    since = cur.entered_at if cur.recorded else session.clock()  # since_stage: the stage being left
    preflight = engine.measure(session, nxt.preflight, nxt.id, since) if nxt else []
    result = GateResult(rb.name, cur.stage.id, nxt.id if nxt else None, rnd.measurements, preflight)
    result.reconciled = done.describe() if done else None
    result.warnings = privilege.warnings(session.store().conn)
    result.breaches = [
        {"check": j.spec.name, "reason": j.assessment.reason, "explanation": j.measurement.explanation}
        for j in rnd.breached
    ]
    guard.halt_if_aborted("judging")
    if rollback_on_failure and rnd.breached and cur.recorded:
        auto = autorollback.roll_back(
            session,
            from_stage=cur.stage.id,
            expected_version=cur.version,
            reason=f"gate: {rnd.breach_reason()}",
            verdicts=rnd.measurements,
        )
        result.not_rolled_back = auto.refused.message if auto.refused else None
        result.rolled_back_to = auto.to_stage if auto.done else None
    every = [*rnd.measurements, *preflight]
    if junit:
        from runbook.junit import render_junit

        Path(junit).parent.mkdir(parents=True, exist_ok=True)
        Path(junit).write_text(
            render_junit(
                every, f"migrate gate {rb.name}", properties={"runbook": rb.name, "stage": cur.stage.id}
            ),
            encoding="utf-8",
        )
        result.files.append(junit)
    from runbook.junit import render_summary, write_summary

    outcome = "rolled back to " + result.rolled_back_to if result.rolled_back_to else None
    if result.not_rolled_back:
        outcome = "not rolled back: " + result.not_rolled_back
    title = f"Gate of {rb.name}: stage {cur.stage.id}" + (f" (next: {nxt.id})" if nxt else "")
    sections = {f"Monitors of {cur.stage.id}": rnd.measurements}
    if nxt:
        sections[f"Preflight of {nxt.id} (the next stage)"] = preflight
    text = render_summary(sections, title, outcome=outcome)
    written = write_summary(text, summary) if summary or session.env.get("GITHUB_STEP_SUMMARY") else None
    if written:
        result.files.append(str(written))
    return result


def _writable(path: str, option: str) -> None:
    """Fail before measuring when an output file cannot be written (not after a rollback)."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot write {path!r}: {exc.strerror or exc}", hint=f"pass {option} with a writable file path"
        ) from None

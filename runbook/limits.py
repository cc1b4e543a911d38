"""Judge one check's verdict history in a stage against its limits (pure; Argo Rollouts semantics).

- more failures in the stage than `failure_limit` -> breached;
- more consecutive errors than `consecutive_error_limit` -> breached ("errors": could not measure);
- more consecutive failures than `consecutive_failure_limit` (when set) -> breached;
- otherwise the last verdict decides: inconclusive -> inconclusive, error -> erroring, pass or a tolerated
  failure -> ok. An empty history is inconclusive.

Streaks: an error streak is ended by any measurement (pass, fail or inconclusive); a failure streak is
ended by a pass or an inconclusive result, while errors in between neither extend nor end it (an error
says nothing about the thing measured).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from runbook.measurement import Verdict
from runbook.model import Limits
from runbook.units import count

__all__ = ["Assessment", "State", "Tally", "assess", "holds", "judge", "tally", "verdicts"]

State = Literal["ok", "breached", "inconclusive", "erroring"]


@dataclass(frozen=True)
class Assessment:
    """The state of one check, why, and the counts behind it."""

    state: State
    reason: str
    failures: int = 0
    consecutive_failures: int = 0
    consecutive_errors: int = 0
    measurements: int = 0

    @property
    def breached(self) -> bool:
        return self.state == "breached"


def verdicts(history: Iterable[Any]) -> list[Verdict]:
    """Verdicts of a history given as Verdicts, strings, or objects with a `verdict` (Measurement, Sample)."""
    return [Verdict(getattr(item, "verdict", item)) for item in history]


@dataclass(frozen=True)
class Tally:
    """What the limits judge, counted over one check's verdicts in a stage: kept incrementally by the state
    store as samples arrive (runbook.state.samples), or counted from a history here."""

    measurements: int = 0
    failures: int = 0
    fail_streak: int = 0
    """Consecutive failures at the end (errors in between neither extend nor end it)."""
    error_streak: int = 0
    """Consecutive errors at the end."""
    last: Verdict | None = None

    def add(self, v: Verdict) -> Tally:
        """This tally with one more verdict at the end (the state store's upsert does the same in SQL)."""
        return Tally(
            self.measurements + 1,
            self.failures + (v is Verdict.FAIL),
            self.fail_streak + 1 if v is Verdict.FAIL else self.fail_streak if v is Verdict.ERROR else 0,
            self.error_streak + 1 if v is Verdict.ERROR else 0,
            v,
        )


def tally(history: Iterable[Any]) -> Tally:
    """Count an ordered (oldest first) verdict history."""
    t = Tally()
    for v in verdicts(history):
        t = t.add(v)
    return t


def assess(history: Iterable[Any], limits: Limits | None = None) -> Assessment:
    """Assess an ordered (oldest first) verdict history of one check in the current stage."""
    return judge(tally(history), limits)


def judge(t: Tally, limits: Limits | None = None) -> Assessment:
    """Assess one check's tally in the current stage against its limits."""
    lim = limits or Limits()
    failures, streak, errors = t.failures, t.fail_streak, t.error_streak

    def result(state: State, reason: str) -> Assessment:
        return Assessment(state, reason, failures, streak, errors, t.measurements)

    if failures > lim.failure_limit:
        return result(
            "breached",
            f"{count(failures, 'failure')} in this stage, more than the failure_limit of {lim.failure_limit}",
        )
    if errors > lim.consecutive_error_limit:
        return result(
            "breached",
            f"{count(errors, 'consecutive error')} (could not measure), more than the "
            f"consecutive_error_limit of {lim.consecutive_error_limit}",
        )
    if lim.consecutive_failure_limit is not None and streak > lim.consecutive_failure_limit:
        return result(
            "breached",
            f"{count(streak, 'consecutive failure')}, more than the consecutive_failure_limit of "
            f"{lim.consecutive_failure_limit}",
        )
    last = t.last
    if last is None:
        return result("inconclusive", "not measured yet")
    if last is Verdict.INCONCLUSIVE:
        return result("inconclusive", "the last measurement was inconclusive (not enough data yet)")
    if last is Verdict.ERROR:
        return result(
            "erroring",
            f"{count(errors, 'consecutive error')} (could not measure), "
            f"{lim.consecutive_error_limit} tolerated",
        )
    if last is Verdict.FAIL:
        return result(
            "ok", f"{count(failures, 'failure')} so far, within the failure_limit of {lim.failure_limit}"
        )
    tolerated = f" ({count(failures, 'failure')} tolerated)" if failures else ""
    return result("ok", f"passing{tolerated}")


def holds(history: Iterable[Any], limits: Limits | None = None) -> bool:
    """Whether the check holds now: its last verdict is a pass and its limits are not breached."""
    vs = verdicts(history)
    return bool(vs) and vs[-1] is Verdict.PASS and not assess(vs, limits).breached

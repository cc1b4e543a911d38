"""An error rate judged with stated confidence (`confidence:` on the pgboss and legacy error_rate metrics):
the check fails only when the whole anytime-valid interval for the true rate lies above `max` (or below
`min`), passes only when it lies wholly on the good side, and is inconclusive in between, saying about how
many more jobs at the rate seen so far would decide it. Without `confidence:` the point value is compared
with the thresholds as before (the callers keep that path). The statistics are runbook.confidence."""

from __future__ import annotations

import math
from typing import Any

from runbook import confidence as cs
from runbook.checks.base import Measurement, Verdict
from runbook.checks.sqlutil import num, thresholds
from runbook.units import count

__all__ = ["check_confidence", "judge_rate"]


def check_confidence(confidence: float | None, max: float | None, min: float | None, *, metric: str) -> None:
    """Raise ValueError, naming the fix, unless `confidence` is unset or usable with this metric (error_rate)
    and these thresholds."""
    if confidence is None:
        return
    if metric != "error_rate":
        raise ValueError(f"confidence applies to metric error_rate only, not {metric}: remove it")
    if not 0.5 < confidence < 1:
        meant = ""
        if 50 < confidence < 100:
            meant = f"; {num(confidence)}% is {num(confidence / 100)}"
        elif 0 < confidence < 0.5:
            meant = f"; an error level of {num(confidence)} is confidence {num(round(1 - confidence, 6))}"
        raise ValueError(
            f"confidence must be above 0.5 and below 1 (e.g. 0.95), got {num(confidence)}{meant}"
        )
    if max is None and min is None:
        raise ValueError("confidence needs a max (or a min) to decide against: add max: 0.05, say")
    for name, value in (("max", max), ("min", min)):
        if value is not None and not 0 < value < 1:
            raise ValueError(
                f"with confidence, {name} must be above 0 and below 1, got {num(value)}: no interval lies "
                f"wholly beyond it; drop confidence to compare the point value, or set {name} in (0, 1)"
            )


def _bound(x: float, *, up: bool, limits: tuple[float | None, ...] = ()) -> str:
    """An end of the interval to three significant digits, rounded outwards (never shown narrower); more
    digits where three would land it on a limit it does not reach (0.049995 shown as 0.05 reads as a tie
    with max 0.05, which the check did not see)."""
    if x in (0.0, 1.0):
        return num(x)
    for digits in range(3, 8):
        scale = 10 ** (digits - 1 - math.floor(math.log10(x)))
        shown = (math.ceil if up else math.floor)(x * scale) / scale
        if not any(v is not None and shown == v != x for v in limits):
            break
    return f"{shown:.{digits}g}"


def _pct(confidence: float) -> str:
    return f"{num(round(confidence * 100, 3))}%"


def judge_rate(
    failed: int,
    total: int,
    what: str,
    /,
    *,
    confidence: float,
    max: float | None,
    min: float | None,
    **inputs: Any,
) -> Measurement:
    """Judge `failed` of `total` (> 0) finished jobs; `what` describes the point value and the counts."""
    centre = max if max is not None else min
    if centre is None:
        raise ValueError("a rate judged with confidence needs a max or a min")
    prior = cs.prior_for(centre)
    iv = cs.interval(failed, total, confidence, prior)
    sides = {
        name: cs.decide(failed, total, value, confidence, prior)
        for name, value in (("max", max), ("min", min))
        if value is not None
    }
    bad = {"max": "above", "min": "below"}
    limit = {"max": max, "min": min}
    ends = (_bound(iv.lower, up=False, limits=(max, min)), _bound(iv.upper, up=True, limits=(max, min)))
    shown = f"{what}, {_pct(confidence)} interval {ends[0]}-{ends[1]}"
    failing = [name for name, side in sides.items() if side == bad[name]]
    undecided = [name for name, side in sides.items() if side == "undecided"]
    more = None
    if failing:
        name = failing[0]
        sign = ">" if name == "max" else "<"
        verdict, text = Verdict.FAIL, f"{shown}: the whole interval {sign} {name} {num(limit[name])}"
    elif undecided:
        name = undecided[0]
        value = limit[name]
        assert value is not None
        more = cs.jobs_to_decide(failed, total, value, confidence, prior)
        rate = num(failed / total)
        when = (
            f"about {count(more, 'more job')} at the rate seen so far ({rate}) would decide it"
            if more is not None
            else f"at the observed rate {rate} no number of jobs would decide it"
        )
        verdict, text = Verdict.INCONCLUSIVE, f"{shown} includes {name} {num(value)}: undecided; {when}"
    else:
        parts = [f"{'<=' if n == 'max' else '>='} {n} {num(limit[n])}" for n in sides]
        verdict, text = Verdict.PASS, f"{shown}: the whole interval {' and '.join(parts)}"
    inputs.update(thresholds(max, min))
    inputs.update(
        confidence=confidence,
        interval={"lower": iv.lower, "upper": iv.upper},
        failed=failed,
        jobs=total,
        jobs_to_decide=more,
    )
    return Measurement(verdict=verdict, value=failed / total, explanation=text, inputs=inputs)

"""`compare`: the ratio of two measurements, e.g. pg-boss p95 processing time over the legacy p95.

`a` and `b` are inline checks of any kind (written like any check, with a name and a kind), run one after
the other within this check's timeout (give it room for both); only their values are used: value = a / b,
and it fails above `max` (default 1.2: "comparable or better") or below `min`. Either side INCONCLUSIVE or
ERROR makes the comparison so too (their own pass/fail is ignored); a null value (no data yet) or a zero
baseline `b` is INCONCLUSIVE; any other value that is not a number is ERROR.

`test: mann-whitney` (sides: pgboss run_time, legacy processing_time) fails only when the ratio is beyond
the bounds and a rank test of the run times behind both sides finds the difference significant at `alpha`
(checks/compare_ranks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from runbook.checks import expect as ex
from runbook.checks.base import CheckContext, CheckKind, Measurement, Verdict
from runbook.checks.compare_ranks import judge_ranks, sample_source, side_samples
from runbook.checks.sqlutil import ratio_text
from runbook.checks.transient import budget, current
from runbook.model import CheckSpec, doc


@dataclass(frozen=True)
class CompareParams:
    a: CheckSpec | None = doc("the measurement compared (numerator), e.g. pg-boss p95 run time", None)
    b: CheckSpec | None = doc("the baseline (denominator), e.g. legacy p95 run time", None)
    max: float | None = doc("fail when a / b is above this", 1.2)
    min: float | None = doc("fail when a / b is below this", None)
    test: Literal["mann-whitney"] | None = doc(
        "judge with a rank test of the run times behind a and b (pgboss run_time, legacy processing_time): "
        "fail only when a / b is beyond max (or min) AND the difference is significant at alpha",
        None,
    )
    alpha: float | None = doc("with test: the significance level of the one-sided test (default 0.01)", None)
    max_samples: int | None = doc("with test: rank at most this many latest run times per side (5000)", None)

    def __post_init__(self) -> None:
        if self.a is None or self.b is None:
            raise ValueError("a and b: both required, each an inline check (name, kind, parameters)")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if self.test is None:
            for key in ("alpha", "max_samples"):
                if getattr(self, key) is not None:
                    raise ValueError(
                        f"{key} applies with test: mann-whitney only: add the test or remove {key}"
                    )
            return
        for key, side in (("a", self.a), ("b", self.b)):
            wrong = sample_source(side)
            if wrong is not None:
                raise ValueError(
                    f"test: mann-whitney ranks run times: {key} must be a pgboss run_time or a legacy "
                    f"processing_time check, not {wrong}"
                )
        if self.alpha is not None and not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be above 0 and below 0.5 (e.g. 0.01), got {self.alpha}")
        if self.max_samples is not None and self.max_samples < 10:
            raise ValueError(f"max_samples must be at least 10, got {self.max_samples}")
        if self.max is None and self.min is None:
            raise ValueError("test: mann-whitney needs a max (or a min) to decide against: add max: 1.2, say")


DEFAULT_ALPHA = 0.01
DEFAULT_MAX_SAMPLES = 5000


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def measure(params: CompareParams, ctx: CheckContext) -> Measurement:
    """Measure both sides and judge their ratio."""
    from runbook.checkrun import (
        GRACE,
        run_check,
    )  # the runner measures the sides (timeouts, errors, redaction)

    assert params.a is not None and params.b is not None
    parent = current()
    prefix = parent.check if parent is not None else "compare"
    sides = []
    for share, (key, spec) in ((2.0, ("a", params.a)), (1.0, ("b", params.b))):
        # the sides share this check's timeout: a gets at most half of it, b what is left
        timeout = min(spec.timeout, max(0.5, (budget() - GRACE) / share)) if parent else spec.timeout
        sides.append(run_check(replace(spec, name=spec.name or f"{prefix}.{key}", timeout=timeout), ctx))
    a, b = sides
    inputs: dict[str, Any] = {
        "a": {"check": a.check, "kind": a.kind, "value": a.value, "verdict": a.verdict.value},
        "b": {"check": b.check, "kind": b.kind, "value": b.value, "verdict": b.verdict.value},
        "max": params.max,
        "min": params.min,
    }
    for side in (a, b):
        if side.verdict in (Verdict.ERROR, Verdict.INCONCLUSIVE):
            text = f"{side.check} is {side.verdict.value}: {side.explanation}"
            return Measurement(side.verdict, None, text, inputs)
    va, vb = _number(a.value), _number(b.value)
    for side, v in ((a, va), (b, vb)):
        if side.value is None:
            text = f"{side.check} has no value yet (null): nothing to compare"
            return Measurement(Verdict.INCONCLUSIVE, None, text, inputs)
        if v is None:
            text = f"{side.check} gave {ex.show(side.value)}, not a number"
            return Measurement(Verdict.ERROR, None, text, inputs)
    assert va is not None and vb is not None
    if vb == 0:
        return Measurement(Verdict.INCONCLUSIVE, None, f"{b.check} is 0: nothing to compare with yet", inputs)
    ratio = round(va / vb, 4)
    text = (
        f"{a.check} / {b.check} = {ex.show(va)} / {ex.show(vb)} = {ratio_text(ratio, params.max, params.min)}"
    )
    if params.test is not None:
        limit = params.max_samples or DEFAULT_MAX_SAMPLES
        runs = []
        for side, spec in ((a, params.a), (b, params.b)):
            got = side_samples(replace(spec, name=side.check), ctx, limit)
            if got.verdict is Verdict.ERROR:
                return Measurement(Verdict.ERROR, None, f"{side.check} run times: {got.explanation}", inputs)
            runs.append(got.value)
        alpha = params.alpha if params.alpha is not None else DEFAULT_ALPHA
        names = (a.check, b.check)
        return judge_ranks(
            ratio, text, names, (runs[0], runs[1]), alpha=alpha, max=params.max, min=params.min, inputs=inputs
        )
    if params.max is not None and ratio > params.max:
        return Measurement(Verdict.FAIL, ratio, f"{text}, above the max {params.max}", inputs, unit="ratio")
    if params.min is not None and ratio < params.min:
        return Measurement(Verdict.FAIL, ratio, f"{text}, below the min {params.min}", inputs, unit="ratio")
    bounds = [
        f"<= {params.max}" if params.max is not None else "",
        f">= {params.min}" if params.min is not None else "",
    ]
    within = " and ".join(b for b in bounds if b)
    return Measurement(
        Verdict.PASS, ratio, f"{text}" + (f", {within}" if within else ""), inputs, unit="ratio"
    )


KIND = CheckKind(name="compare", params=CompareParams, measure=measure, summary="ratio of two measurements")

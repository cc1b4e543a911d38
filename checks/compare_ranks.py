"""`compare` with `test: mann-whitney`: the ratio a / b is judged together with a rank test of the run times
behind both sides (pg-boss run_time against legacy processing_time, the latest `max_samples` of each in
its own window). It fails only when the ratio is beyond `max` (material) AND the Mann-Whitney test says
`a` is slower than `b` at significance `alpha` (one-sided); beyond `max` but not significant, or with too
few run times to test, is inconclusive, saying how many more would decide it; within the bounds it passes
(as without the test). `min` works the same way for "faster". The statistics are runbook.ranktest."""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from runbook.checks import KIND_MODULES, get_kind
from runbook.checks.base import CheckContext, Measurement, Verdict
from runbook.checks.sqlutil import num, ratio_text
from runbook.model import CheckSpec
from runbook.ranktest import RankTest, mann_whitney, median_ratio, more_to_decide
from runbook.units import count

__all__ = ["SAMPLED", "judge_ranks", "needed_for", "sample_source", "side_samples"]

SAMPLED = {"pgboss": "run_time", "legacy": "processing_time"}
"""The kinds whose values come with samples to rank, and the metric that has them."""


def sample_source(side: CheckSpec) -> str | None:
    """Why `side` cannot give run times to rank (None when it can)."""
    params = side.params
    metric = params.get("metric") if isinstance(params, Mapping) else getattr(params, "metric", None)
    if metric is not None and SAMPLED.get(side.kind) == metric:
        return None
    return f"{side.kind}{f' {metric}' if metric else ''}"


def side_samples(side: CheckSpec, ctx: CheckContext, limit: int) -> Measurement:
    """The run times behind a side (a measurement whose value is the list; ERROR when unreadable)."""
    module = importlib.import_module(KIND_MODULES[side.kind])
    params = side.params
    if isinstance(params, Mapping):
        params = get_kind(side.kind).params(**params)
    m: Measurement = module.samples(params, ctx, limit)
    return m


def needed_for(alpha: float, n_b: int) -> int | None:
    """The fewest values of `a` with which the exact test could reach `alpha` at all (all of `a` above
    all of `b`: p = 1 / C(n_a + n_b, n_a)); None beyond a thousand."""
    for k in range(1, 1001):
        if 1 / math.comb(k + n_b, k) < alpha:
            return k
    return None


def _p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else num(round(p, 3))


def judge_ranks(
    ratio: float,
    text: str,
    names: tuple[str, str],
    samples: tuple[Sequence[float], Sequence[float]],
    *,
    alpha: float,
    max: float | None,
    min: float | None,
    inputs: dict[str, Any],
) -> Measurement:
    """Judge the ratio `ratio` (explained by `text`) with the rank test of `samples` (a's, b's)."""
    a, b = samples
    inputs.update(test="mann-whitney", alpha=alpha, samples_a=len(a), samples_b=len(b))
    crossed = [
        (bound, value, bound == "max")
        for bound, value in (("max", max), ("min", min))
        if value is not None and (ratio > value if bound == "max" else ratio < value)
    ]
    unranked = _unranked(a, b, alpha, names)
    if unranked is not None:  # within the bounds this passes as without the test; beyond them it waits
        verdict = Verdict.INCONCLUSIVE if crossed else Verdict.PASS
        return Measurement(verdict, ratio, f"{text}; {unranked}", inputs, unit="ratio")
    t = mann_whitney(a, b)
    medians = median_ratio(a, b)
    inputs.update(
        p_slower=t.p_greater,
        p_faster=t.p_less,
        effect=round(t.effect, 4),
        median_ratio=None if medians is None else round(medians, 4),
        exact=t.exact,
    )
    stats = f"{names[0]} slower in {num(round(t.effect * 100, 1))}% of pairs, {_versus(a, b)}" + (
        f", medians x{ratio_text(medians)}" if medians is not None else ""
    )
    for bound, value, slower in crossed:
        p = t.p_greater if slower else t.p_less
        way = "slower" if slower else "faster"
        beyond = f"{text}, {'above' if slower else 'below'} the {bound} {num(value)}"
        if p < alpha:
            why = f"significant: Mann-Whitney p({way}) = {_p(p)} < alpha {num(alpha)}"
            return Measurement(Verdict.FAIL, ratio, f"{beyond} and {why} ({stats})", inputs, unit="ratio")
        more = more_to_decide(t, alpha, slower=slower)
        inputs["samples_to_decide"] = more
        return Measurement(
            Verdict.INCONCLUSIVE,
            ratio,
            f"{beyond} but {_undecided(t, p, alpha, more, way, names)} ({stats})",
            inputs,
            unit="ratio",
        )
    return Measurement(
        Verdict.PASS,
        ratio,
        f"{text}; Mann-Whitney p(slower) = {_p(t.p_greater)} ({stats})",
        inputs,
        unit="ratio",
    )


def _unranked(a: Sequence[float], b: Sequence[float], alpha: float, names: tuple[str, str]) -> str | None:
    """Why the run times cannot be tested (None when they can): a side has none, or so few that even all of
    `a` above all of `b` would not reach `alpha` (saying how many are needed)."""
    if not a or not b:
        return f"no run times of {names[0] if not a else names[1]} to rank yet"
    if 1 / math.comb(len(a) + len(b), len(a)) < alpha:
        return None
    need = needed_for(alpha, len(b))
    want = f"at least {count(need, 'run time')} of {names[0]}" if need else f"more run times of {names[1]}"
    few = f"{_versus(a, b)} cannot show a difference at alpha {num(alpha)}"
    return f"too few to test: {few}: {want}"


def _versus(a: Sequence[float], b: Sequence[float]) -> str:
    """`1 vs 1 run time`, `1 vs 3 run times`, `12 vs 40 run times` (units.count: one only when both are)."""
    return f"{len(a)} vs " + (count(len(b), "run time") if len(a) == 1 else f"{len(b)} run times")


def _undecided(
    t: RankTest, p: float, alpha: float, more: int | None, way: str, names: tuple[str, str]
) -> str:
    head = f"not significant (Mann-Whitney p({way}) = {_p(p)} >= alpha {num(alpha)})"
    if more is not None:
        return f"{head}: about {count(more, 'more run time')} of {names[0]} at this effect would decide it"
    if (t.effect > 0.5) == (way == "slower") and t.effect != 0.5:
        return (
            f"{head}: with {count(t.n_b, 'run time')} of {names[1]} no number of {names[0]} would decide it"
        )
    return f"{head}: the ranks show {names[0]} no {way}; more run times will tell"

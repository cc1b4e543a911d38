"""Anytime-valid confidence sequences for a binomial rate (failed jobs of finished jobs).

The watcher looks at an error rate again every interval. A fixed-sample interval recomputed at every look
loses its error level (with enough looks it excludes the true rate by chance sooner or later); a
confidence sequence keeps it: with probability at least `confidence` the true rate lies inside the
interval at every look at once (Ville's inequality on a nonnegative martingale).

The martingale is Robbins' beta-binomial mixture. After `x` failures of `n` jobs, for a candidate rate p,

    M_n(p) = B(a + x, b + n - x) / B(a, b) / (p^x (1 - p)^(n - x))

(the likelihood of the data averaged over a Beta(a, b) prior, over its likelihood at p). Under the true p
it is a nonnegative martingale with mean 1, so P(M_n(p) >= 1/alpha at some n) <= alpha. The interval is
the set of p where M_n(p) < 1/alpha: log M_n is convex in p and below 0 at x/n, so the set is an
interval around x/n and each end is found by bisection. Pure Python (math.lgamma).

Any prior fixed before the data keeps the guarantee; it only decides where the interval is tightest.
`prior_for(threshold)` centres it on the check's threshold, with the weight of `PRIOR_WEIGHT` jobs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "PRIOR_WEIGHT",
    "Interval",
    "Prior",
    "decide",
    "interval",
    "jobs_at_rate",
    "jobs_to_decide",
    "log_mixture_ratio",
    "prior_for",
]

PRIOR_WEIGHT = 20.0
"""The prior counts as this many jobs (Beta(1, 19) for a 5% limit): light enough to be overruled by the
data within tens of jobs, heavy enough that two early failures alone do not exclude a 5% rate."""

Side = Literal["above", "below", "undecided"]
_STEPS = 80  # bisection steps: (1/2)^80 of the bracket, far below any rate shown
_TINY = 1e-300  # the smallest rate tried: a lower bound below it is shown as 0
_NEVER = 10_000_000  # jobs: beyond this "more jobs to decide" is reported as never


@dataclass(frozen=True)
class Prior:
    a: float
    b: float


def prior_for(threshold: float) -> Prior:
    """A Beta prior with mean `threshold` (0 < threshold < 1) and the weight of PRIOR_WEIGHT jobs."""
    if not 0 < threshold < 1:
        raise ValueError(f"the threshold of a rate with confidence must be between 0 and 1, got {threshold}")
    return Prior(PRIOR_WEIGHT * threshold, PRIOR_WEIGHT * (1 - threshold))


def _lbeta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def log_mixture_ratio(p: float, failures: float, jobs: float, prior: Prior) -> float:
    """log M_n(p): the mixture likelihood over the likelihood at rate p (0 < p < 1). `failures` may be
    fractional (the projection of `jobs_to_decide`)."""
    ok = jobs - failures
    at_p = (failures * math.log(p) if failures else 0.0) + (ok * math.log1p(-p) if ok else 0.0)
    return _lbeta(prior.a + failures, prior.b + ok) - _lbeta(prior.a, prior.b) - at_p


@dataclass(frozen=True)
class Interval:
    """The rates not excluded after `failures` of `jobs`, at `confidence`, at every look."""

    lower: float
    upper: float
    confidence: float
    failures: int
    jobs: int


def _check(failures: float, jobs: float, confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if jobs < 0 or not 0 <= failures <= jobs:
        raise ValueError(f"need 0 <= failures <= jobs, got {failures} of {jobs}")


def interval(failures: int, jobs: int, confidence: float, prior: Prior) -> Interval:
    """The confidence sequence's interval for the rate after `failures` of `jobs` finished jobs."""
    _check(failures, jobs, confidence)
    bar = math.log(1 / (1 - confidence))
    centre = failures / jobs if jobs else prior.a / (prior.a + prior.b)

    def outside(p: float) -> bool:
        return log_mixture_ratio(p, failures, jobs, prior) >= bar

    lower, upper = 0.0, 1.0
    if failures and outside(_TINY):
        lower = _edge(outside, inside=centre, out=0.0)
    if jobs - failures and outside(1 - 2**-40):
        upper = _edge(outside, inside=centre, out=1.0)
    return Interval(lower, upper, confidence, failures, jobs)


def _edge(outside: Callable[[float], bool], *, inside: float, out: float) -> float:
    """Bisect between a rate inside the interval and one outside; return the last rate known inside."""
    for _ in range(_STEPS):
        mid = (inside + out) / 2
        if mid in (inside, out):
            break
        if outside(mid):
            out = mid
        else:
            inside = mid
    return inside


def decide(failures: float, jobs: float, threshold: float, confidence: float, prior: Prior) -> Side:
    """Where the interval lies against `threshold`: wholly above, wholly below, or around it. Equivalent
    to comparing `interval(...)` with the threshold, in one evaluation (the interval always holds x/n)."""
    _check(failures, jobs, confidence)
    if not jobs or not 0 < threshold < 1:
        return "undecided"
    if log_mixture_ratio(threshold, failures, jobs, prior) < math.log(1 / (1 - confidence)):
        return "undecided"
    return "above" if failures / jobs > threshold else "below"


def jobs_to_decide(failures: int, jobs: int, threshold: float, confidence: float, prior: Prior) -> int | None:
    """How many more jobs, failing at the rate observed so far, until the interval lies wholly on one side
    of `threshold` (0: decided already). None when no job finished yet, or when the observed rate is so
    close to the threshold that no number of jobs up to ten million would decide it."""
    if not jobs:
        return None
    rate = failures / jobs

    def decided(more: int) -> bool:
        n = jobs + more
        return decide(rate * n, n, threshold, confidence, prior) != "undecided"

    return _fewest(decided)


def jobs_at_rate(rate: float, threshold: float, confidence: float, prior: Prior) -> int | None:
    """How many jobs, failing at `rate` (0 <= rate <= 1), until the interval lies wholly on one side of
    `threshold`, from none (for calibration: the history's rate). None as for `jobs_to_decide`."""

    def decided(n: int) -> bool:
        return n > 0 and decide(rate * n, n, threshold, confidence, prior) != "undecided"

    return _fewest(decided)


def _fewest(decided: Callable[[int], bool]) -> int | None:
    """The smallest m >= 0 with decided(m) (decided only grows with m), None beyond _NEVER."""
    if decided(0):
        return 0
    hi = 1
    while not decided(hi):
        hi *= 2
        if hi > _NEVER:
            return None
    lo = hi // 2  # not decided at lo (or lo == 0), decided at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if decided(mid):
            hi = mid
        else:
            lo = mid
    return hi

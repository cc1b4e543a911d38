"""The anytime-valid confidence sequence for an error rate (runbook.confidence) against an independent
computation with scipy: the mixture ratio, the interval's ends, Clopper-Pearson, coverage over repeated looks
by simulation, and the edge cases (0 of 0, no failure, all failures, one job)."""

from __future__ import annotations

import functools
import math
import random

import pytest
from scipy.special import betaln  # type: ignore[import-untyped]
from scipy.stats import beta  # type: ignore[import-untyped]

from runbook.confidence import (
    Prior,
    decide,
    interval,
    jobs_to_decide,
    log_mixture_ratio,
    prior_for,
)


def scipy_log_ratio(p: float, x: int, n: int, a: float, b: float) -> float:
    """log of B(a+x, b+n-x)/B(a, b) / (p^x (1-p)^(n-x)), written out with scipy."""
    return float(betaln(a + x, b + n - x) - betaln(a, b) - x * math.log(p) - (n - x) * math.log(1 - p))


@pytest.mark.parametrize(
    ("p", "x", "n", "a", "b"),
    [
        (0.05, 0, 10, 1, 19),
        (0.05, 3, 10, 1, 19),
        (0.3, 7, 7, 0.5, 0.5),
        (0.01, 2, 400, 1, 1),
        (0.9, 1, 50, 6, 4),
    ],
)
def test_mixture_ratio_matches_scipy(p: float, x: int, n: int, a: float, b: float) -> None:
    assert log_mixture_ratio(p, x, n, Prior(a, b)) == pytest.approx(scipy_log_ratio(p, x, n, a, b), abs=1e-9)


def test_prior_is_centred_on_the_threshold_with_the_weight_of_twenty_jobs() -> None:
    assert prior_for(0.05) == Prior(pytest.approx(1.0), pytest.approx(19.0))  # type: ignore[arg-type]
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="between 0 and 1"):
            prior_for(bad)


@pytest.mark.parametrize(("x", "n"), [(1, 10), (3, 10), (5, 100), (40, 100), (9, 10), (17, 1000)])
def test_each_end_is_where_the_ratio_reaches_one_over_alpha(x: int, n: int) -> None:
    prior, conf = prior_for(0.05), 0.95
    iv = interval(x, n, conf, prior)
    bar = math.log(1 / (1 - conf))
    assert 0 < iv.lower < x / n < iv.upper < 1
    for end in (iv.lower, iv.upper):
        assert scipy_log_ratio(end, x, n, prior.a, prior.b) == pytest.approx(bar, abs=1e-6)
    # just inside: kept; just outside: excluded
    assert scipy_log_ratio(iv.lower * 1.001, x, n, prior.a, prior.b) < bar
    assert scipy_log_ratio(iv.lower * 0.999, x, n, prior.a, prior.b) > bar
    assert scipy_log_ratio(iv.upper * 0.999, x, n, prior.a, prior.b) < bar
    assert scipy_log_ratio(min(iv.upper * 1.001, 1 - 1e-12), x, n, prior.a, prior.b) > bar


@pytest.mark.parametrize("limit", [0.01, 0.05, 0.2])
def test_wider_than_clopper_pearson_at_the_same_level(limit: float) -> None:
    """A sequence valid at every look pays for it: it holds the fixed-sample Clopper-Pearson interval
    (two-sided at 95%; with no failure, or only failures, the one-sided one: it has one side to spend on)."""
    prior, conf = prior_for(limit), 0.95
    alpha = 1 - conf
    for n in (1, 2, 5, 10, 20, 50, 100, 300, 1000):
        for x in sorted({0, 1, n // 10, n // 2, n - 1, n}):
            iv = interval(x, n, conf, prior)
            if x == 0:
                lo, hi = 0.0, 1 - alpha ** (1 / n)
            elif x == n:
                lo, hi = alpha ** (1 / n), 1.0
            else:
                lo = float(beta.ppf(alpha / 2, x, n - x + 1))
                hi = float(beta.ppf(1 - alpha / 2, x + 1, n - x))
            assert iv.lower <= lo + 1e-9 and iv.upper >= hi - 1e-9, (n, x, iv, lo, hi)
            if 0 < x < n and n >= 20:
                assert iv.upper - iv.lower > hi - lo  # strictly wider


@functools.cache
def clopper_pearson(x: int, n: int) -> tuple[float, float]:
    """The fixed-sample two-sided 95% interval."""
    lo = float(beta.ppf(0.025, x, n - x + 1)) if x else 0.0
    hi = float(beta.ppf(0.975, x + 1, n - x)) if x < n else 1.0
    return lo, hi


@pytest.mark.parametrize("true_rate", [0.01, 0.05, 0.2])
def test_covers_the_true_rate_at_every_look_in_at_least_95_percent_of_runs(true_rate: float) -> None:
    """2,000 simulated stages (seeded), a look after every job up to 300 jobs: the run counts as missed if
    any look excludes the true rate. Repeating a fixed-sample 95% interval at every look misses far more
    often; the sequence must not."""
    rng = random.Random(15)
    prior, conf, runs, looks = prior_for(0.05), 0.95, 2000, 300
    bar = math.log(1 / (1 - conf))
    missed = cp_missed = 0
    for _ in range(runs):
        x, miss, cp_miss = 0, False, False
        for n in range(1, looks + 1):
            x += rng.random() < true_rate
            if not miss and log_mixture_ratio(true_rate, x, n, prior) >= bar:
                miss = True
            if not cp_miss and n % 10 == 0:
                lo, hi = clopper_pearson(x, n)
                cp_miss = not lo <= true_rate <= hi
        missed += miss
        cp_missed += cp_miss
    assert missed / runs <= 1 - conf
    assert cp_missed / runs > missed / runs  # looking again and again breaks the fixed-sample interval
    # the bisected interval agrees with the ratio (membership of the true rate) on a sample of states
    for x, n in ((0, 50), (3, 50), (15, 60), (60, 300)):
        iv = interval(x, n, conf, prior)
        inside = iv.lower <= true_rate <= iv.upper
        assert inside == (log_mixture_ratio(true_rate, x, n, prior) < bar)


def test_edge_cases() -> None:
    prior = prior_for(0.05)
    nothing = interval(0, 0, 0.95, prior)
    assert (nothing.lower, nothing.upper) == (0.0, 1.0)
    assert decide(0, 0, 0.05, 0.95, prior) == "undecided"
    assert jobs_to_decide(0, 0, 0.05, 0.95, prior) is None  # no rate seen yet
    one_ok = interval(0, 1, 0.95, prior)
    assert one_ok.lower == 0.0 and 0.95 < one_ok.upper < 0.96
    one_bad = interval(1, 1, 0.95, prior)
    assert one_bad.upper == 1.0 and one_bad.lower == pytest.approx(0.05 * 0.05, rel=1e-6)  # B(2,19)/B(1,19)/p
    none_failed = interval(0, 200, 0.95, prior)
    assert none_failed.lower == 0.0 and none_failed.upper < 0.05
    assert decide(0, 200, 0.05, 0.95, prior) == "below"
    all_failed = interval(30, 30, 0.95, prior)
    assert all_failed.upper == 1.0 and all_failed.lower > 0.3  # the prior (mean 0.05) pulls it down
    assert decide(30, 30, 0.05, 0.95, prior) == "above"
    # no number of failures at exactly the limit decides it
    assert jobs_to_decide(5, 100, 0.05, 0.95, prior) is None
    for bad in ((-1, 5), (6, 5), (1, -1)):
        with pytest.raises(ValueError, match="failures <= jobs"):
            interval(*bad, 0.95, prior)
    with pytest.raises(ValueError, match="confidence"):
        interval(1, 5, 1.0, prior)


@pytest.mark.parametrize(("x", "n"), [(1, 1), (2, 6), (0, 10), (1, 30), (3, 20)])
def test_jobs_to_decide_is_the_first_number_that_decides(x: int, n: int) -> None:
    prior = prior_for(0.05)
    more = jobs_to_decide(x, n, 0.05, 0.95, prior)
    assert more is not None and more > 0
    rate = x / n

    def side(extra: int) -> str:
        return decide(rate * (n + extra), n + extra, 0.05, 0.95, prior)

    assert side(more) == ("above" if rate > 0.05 else "below")
    assert side(more - 1) == "undecided"


def test_decide_agrees_with_the_interval() -> None:
    prior = prior_for(0.05)
    for n in (5, 20, 80, 200):
        for x in range(0, n + 1, max(1, n // 10)):
            iv = interval(x, n, 0.95, prior)
            expected = "above" if iv.lower > 0.05 else "below" if iv.upper < 0.05 else "undecided"
            assert decide(x, n, 0.05, 0.95, prior) == expected, (x, n, iv)

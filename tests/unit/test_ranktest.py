"""The Mann-Whitney U test (runbook.ranktest) against scipy.stats.mannwhitneyu: U and both one-sided p-values,
exact and normal, with ties, one value per side, identical samples, every value equal; and the projection
of how many more run times decide a test."""

from __future__ import annotations

import math
import random

import pytest
from scipy.stats import mannwhitneyu  # type: ignore[import-untyped]

from runbook.ranktest import mann_whitney, median_ratio, more_to_decide


def assert_like_scipy(a: list[float], b: list[float]) -> None:
    ours = mann_whitney(a, b)
    greater = mannwhitneyu(a, b, alternative="greater")
    less = mannwhitneyu(a, b, alternative="less")
    assert ours.u == pytest.approx(float(greater.statistic), abs=1e-12)
    assert ours.p_greater == pytest.approx(float(greater.pvalue), rel=1e-9, abs=1e-15)
    assert ours.p_less == pytest.approx(float(less.pvalue), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([1.0], [2.0]),  # one value each: exact
        ([1.0], [1.0]),  # one value each, tied: normal, variance 0 -> p = 1
        ([3.0, 4.0, 5.0], [1.0, 2.0]),  # complete separation, exact: 1 / C(5, 2)
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]),  # identical samples (ties): normal
        ([2.0] * 6, [2.0] * 9),  # every value equal: p = 1 both ways
        ([1.0, 2.0, 2.0, 3.0, 5.0, 5.0], [2.0, 2.0, 4.0, 5.0]),  # ties within and across
        ([float(i) for i in range(20)], [i + 0.5 for i in range(30)]),  # large, no ties: normal
        ([0.5, 0.7, 1.9], [float(i) / 10 for i in range(1, 200)]),  # 3 against 199: exact
    ],
)
def test_matches_scipy_on_the_edge_cases(a: list[float], b: list[float]) -> None:
    assert_like_scipy(a, b)


def test_known_values() -> None:
    separated = mann_whitney([3.0, 4.0, 5.0], [1.0, 2.0])
    assert (separated.u, separated.exact, separated.effect) == (6.0, True, 1.0)
    assert separated.p_greater == pytest.approx(1 / math.comb(5, 2))
    assert separated.p_less == 1.0
    equal = mann_whitney([2.0] * 6, [2.0] * 9)
    assert (equal.p_greater, equal.p_less, equal.effect, equal.ties) == (1.0, 1.0, 0.5, True)


def test_random_samples_match_scipy() -> None:
    rng = random.Random(15)
    for _ in range(300):
        m, n = rng.randint(1, 14), rng.randint(1, 40)
        tied = rng.random() < 0.5
        slow = rng.choice([1.0, 1.3, 2.0])
        a, b = ([draw(rng, tied) for _ in range(k)] for k in (m, n))
        assert_like_scipy([x * slow for x in a], b)


def draw(rng: random.Random, tied: bool) -> float:
    """A run time: whole seconds 1..6 (many ties) or lognormal (none)."""
    return float(rng.randint(1, 6)) if tied else rng.lognormvariate(0, 1)


def test_empty_side_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one value on each side, got 0 and 2"):
        mann_whitney([], [1.0, 2.0])


def test_median_ratio() -> None:
    assert median_ratio([2.0, 4.0, 6.0], [1.0, 2.0, 3.0]) == 2.0
    assert median_ratio([1.0], [0.0, 0.0]) is None


def test_more_to_decide_is_where_the_projected_test_turns_significant() -> None:
    rng = random.Random(3)
    b = [rng.lognormvariate(0, 0.5) for _ in range(400)]
    a = [rng.lognormvariate(0.25, 0.5) for _ in range(15)]
    t = mann_whitney(a, b)
    assert t.p_greater >= 0.01
    more = more_to_decide(t, 0.01, slower=True)
    assert more is not None and more > 0
    # the same effect with `more` extra values reaches z_alpha by the normal approximation; one fewer does not
    z = 2.3263478740408408  # scipy.stats.norm.ppf(0.99)

    def projected(n_a: int) -> float:
        return (t.effect - 0.5) * math.sqrt(12 * n_a * t.n_b / (n_a + t.n_b + 1))

    assert projected(t.n_a + more) >= z > projected(t.n_a + more - 1)
    assert more_to_decide(t, 0.01, slower=False) is None  # the ranks lean the other way
    decided = mann_whitney([x * 3 for x in b[:40]], b)
    assert more_to_decide(decided, 0.01, slower=True) == 0
    # a small baseline caps the evidence: sqrt(12 n_b) * lean stays below z for any number of a
    small = mann_whitney([2.0, 3.5, 4.5, 5.0], [1.5, 2.5, 3.0, 4.0])  # a slower in 75% of pairs
    assert small.effect == 0.75 and more_to_decide(small, 0.01, slower=True) is None


def test_too_few_run_times_count_in_english() -> None:
    """Found by a new-user trial: `1 vs 1 run times`. The compare check's explanation says `1 vs 1 run
    time` (units.count), and `run times` for any other numbers."""
    from runbook.checks.compare_ranks import _unranked

    names = ("pgboss-p95", "legacy-p95")
    one = _unranked([2.0], [1.0], 0.05, names)
    assert one is not None and one.startswith("too few to test: 1 vs 1 run time cannot show a difference")
    assert "run times cannot" not in one
    for a, b, shown in (([2.0], [1.0, 1.5], "1 vs 2 run times"), ([2.0, 3.0], [1.0], "2 vs 1 run times")):
        text = _unranked(a, b, 0.05, names)
        assert text is not None and f"too few to test: {shown} cannot show" in text, text


def test_ratios_read_with_the_decimals_their_verdict_needs() -> None:
    from runbook.checks.sqlutil import ratio_text

    assert ratio_text(1.1) == "1.10"
    assert ratio_text(1.004) == "1.00"  # no limit to tell it from
    assert ratio_text(1.004, 1.0) == "1.004"  # above the max 1.0: never '1.00'
    assert ratio_text(0.9996, None, 1.0) == "0.9996"  # below a min of 1.0
    assert ratio_text(1.0, 1.0) == "1.00"  # on the limit, as judged
    assert ratio_text(0.004) == "0.004"
    assert ratio_text(0.00004) == "0.0000"  # judged at four decimals: 0
    assert ratio_text(0.0) == "0.00"

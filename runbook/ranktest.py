"""The Mann-Whitney U test of two samples of run times (pure Python): is `a` stochastically larger (slower)
than `b`, or smaller?

U_a counts the pairs (x from a, y from b) with x > y, plus half the ties. Small samples without ties get the
exact null distribution (the coefficients of the Gaussian binomial [n_a + n_b choose n_a], in integers);
otherwise the normal approximation with the tie correction and a continuity correction. The same choice and
the same formulas as scipy.stats.mannwhitneyu(method="auto"), which the tests compare against; scipy is not
needed at run time.

Effect sizes: the common-language effect U_a / (n_a n_b), the chance that a run time of `a` exceeds one of
`b` (0.5: no difference), and the ratio of the medians. `more_to_decide` projects how many more samples of
`a`, at the effect seen so far, the test needs to reach a significance level.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["EXACT_BELOW", "RankTest", "mann_whitney", "median_ratio", "more_to_decide", "samples_needed"]

EXACT_BELOW = 9
"""Exact p-values when either sample has fewer than this many values and there are no ties."""


@dataclass(frozen=True)
class RankTest:
    n_a: int
    n_b: int
    u: float
    """U of `a`: pairs where a's value is larger, plus half the tied pairs."""
    p_greater: float
    """One-sided p-value of "a is larger (slower) than b"."""
    p_less: float
    """One-sided p-value of "a is smaller (faster) than b"."""
    exact: bool
    ties: bool

    @property
    def effect(self) -> float:
        """The common-language effect: P(a > b) + P(a = b) / 2 for a random pair (0.5: no difference)."""
        return self.u / (self.n_a * self.n_b)


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Average ranks (1-based) of `values`, and the sizes of the groups of tied values."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    groups = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        groups.append(j - i + 1)
        i = j + 1
    return ranks, groups


def _exact_sf(u: int, m: int, n: int) -> float:
    """P(U >= u) under the null for samples of m and n values without ties (exact)."""
    small, large = sorted((m, n))
    # counts[k] = arrangements with U = k: the coefficients of prod_{i=1..small} (1 - q^(large+i)) / (1 - q^i)
    top = small * large
    counts = [0] * (top + 1)
    counts[0] = 1
    for i in range(1, small + 1):
        step = large + i
        for k in range(top, step - 1, -1):  # multiply by (1 - q^step)
            counts[k] -= counts[k - step]
        for k in range(i, top + 1):  # divide by (1 - q^i)
            counts[k] += counts[k - i]
    if u <= 0:
        return 1.0
    if u > top:
        return 0.0
    return sum(counts[u:]) / math.comb(m + n, m)


def _normal_sf(u: float, m: int, n: int, groups: Sequence[int]) -> float:
    """P(U >= u), normal approximation with the tie correction and the continuity correction."""
    total = m + n
    tie_term = sum(t**3 - t for t in groups)
    variance = m * n / 12 * ((total + 1) - tie_term / (total * (total - 1)))
    if variance <= 0:  # every value equal: no evidence either way
        return 1.0
    z = (u - m * n / 2 - 0.5) / math.sqrt(variance)
    return min(1.0, max(0.0, 0.5 * math.erfc(z / math.sqrt(2))))


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> RankTest:
    """Test `a` against `b` (each at least one value)."""
    m, n = len(a), len(b)
    if not m or not n:
        raise ValueError(f"the Mann-Whitney test needs at least one value on each side, got {m} and {n}")
    ranks, groups = _ranks([*a, *b])
    u = sum(ranks[:m]) - m * (m + 1) / 2
    ties = any(g > 1 for g in groups)
    exact = min(m, n) < EXACT_BELOW and not ties
    if exact:
        greater, less = _exact_sf(round(u), m, n), _exact_sf(round(m * n - u), m, n)
    else:
        greater, less = _normal_sf(u, m, n, groups), _normal_sf(m * n - u, m, n, groups)
    return RankTest(m, n, u, min(1.0, greater), min(1.0, less), exact, ties)


def median_ratio(a: Sequence[float], b: Sequence[float]) -> float | None:
    """median(a) / median(b); None when b's median is 0."""
    mb = statistics.median(b)
    return None if mb == 0 else statistics.median(a) / mb


def more_to_decide(test: RankTest, alpha: float, *, slower: bool) -> int | None:
    """How many more values of `a`, at the common-language effect seen so far (`b` as it is), until the
    one-sided test ("a slower" when `slower`, else "a faster") reaches `alpha` (`samples_needed`). 0: decided
    already; None: never (no effect in that direction, or too few values of `b` for any number of `a`)."""
    if (test.p_greater if slower else test.p_less) < alpha:
        return 0
    needed = samples_needed(test.effect if slower else 1 - test.effect, test.n_b, alpha)
    return None if needed is None else max(1, needed - test.n_a)


def samples_needed(effect: float, n_b: int, alpha: float) -> int | None:
    """The values of `a` the one-sided test needs to reach `alpha` when `a` exceeds `b` in a share `effect`
    of pairs (the common-language effect), against `n_b` values of `b`, by the normal approximation
    z = (effect - 0.5) * sqrt(12 n_a n_b / (n_a + n_b + 1)). None when effect <= 0.5 or when `n_b` is too
    small for any number of `a` (z stays below sqrt(12 n_b) * (effect - 0.5))."""
    lean = effect - 0.5
    if lean <= 0:
        return None
    z = statistics.NormalDist().inv_cdf(1 - alpha)
    c = (z / lean) ** 2 / 12  # need n_a n_b / (n_a + n_b + 1) >= c
    if n_b <= c:
        return None
    return max(1, math.ceil(c * (n_b + 1) / (n_b - c)))

"""checks/rates.py: an error rate judged with `confidence:` (verdicts, explanation, the interval carried in
the inputs) and the validation of the key."""

from __future__ import annotations

import re

import pytest

from runbook.checks.base import Verdict
from runbook.checks.legacy import LegacyParams
from runbook.checks.pgboss import PgBossParams
from runbook.checks.rates import check_confidence, judge_rate
from runbook.confidence import interval, prior_for


def test_verdict_follows_where_the_interval_lies() -> None:
    undecided = judge_rate(1, 8, "error rate 0.125", confidence=0.95, max=0.05, min=None)
    assert undecided.verdict is Verdict.INCONCLUSIVE and undecided.value == 0.125
    assert "95% interval" in undecided.explanation and "includes max 0.05: undecided" in undecided.explanation
    more = undecided.inputs["jobs_to_decide"]
    assert f"about {more} more jobs at the rate seen so far (0.125)" in undecided.explanation
    iv = interval(1, 8, 0.95, prior_for(0.05))
    assert undecided.inputs["interval"] == {"lower": iv.lower, "upper": iv.upper}

    fail = judge_rate(12, 40, "error rate 0.3", confidence=0.95, max=0.05, min=None, window=3600)
    assert fail.verdict is Verdict.FAIL and fail.explanation.endswith("the whole interval > max 0.05")
    assert fail.inputs["window"] == 3600 and fail.inputs["interval"]["lower"] > 0.05

    ok = judge_rate(0, 120, "error rate 0", confidence=0.95, max=0.05, min=None)
    assert ok.verdict is Verdict.PASS and ok.explanation == (
        "error rate 0, 95% interval 0-0.0407: the whole interval <= max 0.05"
    )
    # the one displayed end is rounded outwards: never shown narrower than it is
    assert ok.inputs["interval"]["upper"] <= 0.0407


def test_a_min_is_judged_the_other_way() -> None:
    low = judge_rate(0, 60, "success", confidence=0.9, max=None, min=0.5)
    assert low.verdict is Verdict.FAIL and "the whole interval < min 0.5" in low.explanation
    both = judge_rate(30, 60, "rate", confidence=0.9, max=0.9, min=0.1)
    assert both.verdict is Verdict.PASS and "<= max 0.9 and >= min 0.1" in both.explanation


def test_no_number_of_jobs_decides_a_rate_sitting_on_the_limit() -> None:
    m = judge_rate(5, 100, "error rate 0.05", confidence=0.95, max=0.05, min=None)
    assert m.verdict is Verdict.INCONCLUSIVE
    assert "at the observed rate 0.05 no number of jobs would decide it" in m.explanation


@pytest.mark.parametrize(
    ("confidence", "max", "min", "message"),
    [
        (0.5, 0.05, None, "above 0.5 and below 1"),
        (1.0, 0.05, None, "above 0.5 and below 1"),
        (95.0, 0.05, None, "got 95; 95% is 0.95"),
        (1.5, 0.05, None, "(e.g. 0.95), got 1.5"),  # no suggestion that is itself out of range
        (0.05, 0.05, None, "got 0.05; an error level of 0.05 is confidence 0.95"),
        (0.95, None, None, "needs a max"),
        (0.95, 0.0, None, "max must be above 0 and below 1"),
        (0.95, None, 1.0, "min must be above 0 and below 1"),
    ],
)
def test_bad_confidence_names_the_fix(confidence: float, max: float, min: float, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_confidence(confidence, max, min, metric="error_rate")


def test_confidence_is_for_error_rates_only() -> None:
    check_confidence(None, 0, None, metric="backlog")  # without it nothing changes: max 0 stays allowed
    with pytest.raises(ValueError, match="error_rate only, not backlog: remove it"):
        PgBossParams(metric="backlog", queue="q", max=10, confidence=0.95)
    with pytest.raises(ValueError, match="error_rate only, not processing_time: remove it"):
        LegacyParams(metric="processing_time", max=60, confidence=0.95)
    assert PgBossParams(metric="error_rate", queue="q", max=0.05, confidence=0.95).confidence == 0.95


def test_an_interval_end_just_short_of_the_limit_is_not_shown_on_it() -> None:
    """0 of 93 at 95% passes: the upper end is 0.049995..., which three digits rounded up show as 0.05, a
    tie with max it is not; more digits are shown there. 0 of 92 stays inconclusive (upper 0.0505)."""
    passed = judge_rate(0, 93, "error rate 0 (0 of 93)", confidence=0.95, max=0.05, min=None)
    assert passed.verdict is Verdict.PASS
    assert "95% interval 0-0.049996: the whole interval <= max 0.05" in passed.explanation
    held = judge_rate(0, 92, "error rate 0 (0 of 92)", confidence=0.95, max=0.05, min=None)
    assert held.verdict is Verdict.INCONCLUSIVE and "interval 0-0.0505 includes max 0.05" in held.explanation

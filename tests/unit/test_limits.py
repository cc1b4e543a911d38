"""Limits: Argo-Rollouts-style judgement of one check's verdict history."""

from __future__ import annotations

import datetime as dt

import pytest

from runbook.limits import assess, holds
from runbook.measurement import Measurement, Sample, Verdict
from runbook.model import Limits

P, F, E, I = "pass", "fail", "error", "inconclusive"  # noqa: E741
DEFAULT = Limits()


def h(text: str) -> list[str]:
    """'PPFE' -> verdict names."""
    return [{"P": P, "F": F, "E": E, "I": I}[c] for c in text]


@pytest.mark.parametrize(
    ("history", "limits", "state"),
    [
        ("", DEFAULT, "inconclusive"),
        ("P", DEFAULT, "ok"),
        ("PPPP", DEFAULT, "ok"),
        ("F", DEFAULT, "breached"),  # failure_limit 0: the first failure breaches
        ("PPF", DEFAULT, "breached"),
        ("FP", DEFAULT, "breached"),  # failures count over the whole stage, a later pass does not heal
        ("F", Limits(failure_limit=1), "ok"),
        ("FPF", Limits(failure_limit=1), "breached"),
        ("FPFP", Limits(failure_limit=2), "ok"),
        ("I", DEFAULT, "inconclusive"),
        ("PPI", DEFAULT, "inconclusive"),
        ("IP", DEFAULT, "ok"),
        ("E", DEFAULT, "erroring"),
        ("EEEE", DEFAULT, "erroring"),  # 4 consecutive errors tolerated
        ("EEEEE", DEFAULT, "breached"),
        ("EEEEPE", DEFAULT, "erroring"),  # a measurement ends the streak
        ("EEEEIE", DEFAULT, "erroring"),  # inconclusive is a measurement too
        ("EE", Limits(consecutive_error_limit=1), "breached"),
        ("E", Limits(consecutive_error_limit=0), "breached"),
        ("FF", Limits(failure_limit=10, consecutive_failure_limit=1), "breached"),
        ("FPF", Limits(failure_limit=10, consecutive_failure_limit=1), "ok"),
        ("FEF", Limits(failure_limit=10, consecutive_failure_limit=1), "breached"),  # errors don't end it
        ("FIF", Limits(failure_limit=10, consecutive_failure_limit=1), "ok"),
        ("FFF", Limits(failure_limit=10, consecutive_failure_limit=3), "ok"),
        ("FFFF", Limits(failure_limit=10, consecutive_failure_limit=3), "breached"),
        ("FFFF", Limits(failure_limit=10), "ok"),  # consecutive_failure_limit unset: not applied
        ("PFE", Limits(failure_limit=1), "erroring"),
        ("PFI", Limits(failure_limit=1), "inconclusive"),
    ],
)
def test_assess_states(history: str, limits: Limits, state: str) -> None:
    assert assess(h(history), limits).state == state


def test_counts() -> None:
    a = assess(h("FPFEFEE"), Limits(failure_limit=5))
    assert (a.failures, a.consecutive_failures, a.consecutive_errors, a.measurements) == (3, 2, 2, 7)


def test_reasons_name_the_limit() -> None:
    assert assess(h("PF"), DEFAULT).reason == "1 failure in this stage, more than the failure_limit of 0"
    errors = assess(h("EEEEE"), DEFAULT).reason
    assert errors == "5 consecutive errors (could not measure), more than the consecutive_error_limit of 4"
    streak = assess(h("FF"), Limits(failure_limit=9, consecutive_failure_limit=1)).reason
    assert streak == "2 consecutive failures, more than the consecutive_failure_limit of 1"
    assert assess(h("EE"), DEFAULT).reason == "2 consecutive errors (could not measure), 4 tolerated"
    assert assess(h("FP"), Limits(failure_limit=1)).reason == "passing (1 failure tolerated)"
    assert assess([], DEFAULT).reason == "not measured yet"


def test_failure_limit_checked_before_errors() -> None:
    a = assess(h("FEEEEE"), DEFAULT)
    assert a.state == "breached" and "failure_limit" in a.reason


def test_accepts_measurements_samples_and_verdicts() -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    history = [
        Verdict.PASS,
        Sample(at=at, value=1, verdict=Verdict.PASS),
        Measurement(verdict=Verdict.FAIL, value=2, explanation="x"),
    ]
    assert assess(history, Limits(failure_limit=1)).state == "ok"
    assert assess(history).state == "breached"
    with pytest.raises(ValueError):
        assess(["passed"])


@pytest.mark.parametrize(
    ("history", "limits", "expected"),
    [
        ("", DEFAULT, False),
        ("P", DEFAULT, True),
        ("EP", DEFAULT, True),
        ("IP", DEFAULT, True),
        ("PI", DEFAULT, False),
        ("PE", DEFAULT, False),
        ("FP", DEFAULT, False),  # breached stays breached
        ("FP", Limits(failure_limit=1), True),
        ("PF", Limits(failure_limit=1), False),  # the last verdict must be a pass
        ("EEEEEP", DEFAULT, True),  # the error streak ended with the pass
    ],
)
def test_holds(history: str, limits: Limits, expected: bool) -> None:
    assert holds(h(history), limits) is expected

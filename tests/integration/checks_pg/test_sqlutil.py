"""Thresholds and number formatting shared by the database kinds (pure functions, no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from runbook.checks.base import Verdict
from runbook.checks.sqlutil import aware, judge, num, seconds, window_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (4, "4"),
        (2 / 6, "0.333"),
        (0.05, "0.05"),
        (3.85, "3.85"),
        (6.66e-06, "6.7e-06"),
        (None, "none"),
    ],
)
def test_num(value: float | None, text: str) -> None:
    assert num(value) == text


def test_judge() -> None:
    assert judge(0.4, max=0.05, min=None) == (Verdict.FAIL, "> max 0.05")
    assert judge(0, max=None, min=1) == (Verdict.FAIL, "< min 1")
    assert judge(2, max=3, min=1) == (Verdict.PASS, "<= max 3 and >= min 1")
    assert judge(3, max=3, min=None) == (Verdict.PASS, "<= max 3")  # the bound itself passes
    assert judge(7, max=None, min=None) == (Verdict.PASS, "")
    assert judge(400, max=300, min=None, fmt=seconds) == (Verdict.FAIL, "> max 5m")


def test_durations_and_windows() -> None:
    assert [seconds(x) for x in (3.85, 0.5, 59.0, 600.0, 3600.0)] == ["3.85s", "0.5s", "59s", "10m", "1h"]
    assert window_text(3600, False) == "in the last 1h"
    assert window_text(86400, True) == "in the last 1d (not before the stage was entered)"


def test_aware() -> None:
    naive = dt.datetime(2026, 11, 29, 12, 0)
    assert aware(naive) == naive.replace(tzinfo=dt.UTC)
    local = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=13)))
    assert aware(local) is local and aware(None) is None

"""Options of generated files (runbook.genconfig): the cron check every generator uses (CI schedules, the
Kubernetes gate), field by field."""

from __future__ import annotations

import pytest

from runbook.ciconfig import render_ci
from runbook.errors import ConfigError
from runbook.genconfig import check_cron


@pytest.mark.parametrize(
    "cron",
    [
        "*/15 * * * *",
        "0 9 * JAN-MAR MON-FRI",
        "*/5 0-6,22-23 ? * *",
        "0 0 1 */3 sun",
        "59 23 31 12 7",
        "0  12 * * 0",
    ],
)
def test_valid_crons_pass_normalised(cron: str) -> None:
    assert check_cron(cron, "gate") == " ".join(cron.split())


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("* * * *", "is not a 5-field cron"),
        ("@hourly", "is not a 5-field cron"),
        ("60 * * * *", "minute '60' is not a value from 0 to 59"),
        ("0 24 * * *", "hour '24' is not a value from 0 to 23"),
        ("0 0 0 * *", "day of month '0' is not a value from 1 to 31"),
        ("0 0 * 13 *", "month '13' is not a value from 1 to 12 (JAN-DEC)"),
        ("0 0 * * 8", "day of week '8' is not a value from 0 to 7 (SUN-SAT)"),
        ("0 0 * FOO *", "month 'FOO' is not a value"),
        ("*/0 * * * *", "minute '*/0' is not a value"),
        ("? * * * *", "minute '?' is not a value"),
        ("5-70 * * * *", "minute '5-70' is not a value"),
        ("1,,2 * * * *", "minute '' is not a value"),
    ],
)
def test_bad_crons_name_the_field(cron: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        check_cron(cron, "gate")
    assert message in e.value.message, e.value.message
    assert e.value.hint and "minute hour day-of-month month day-of-week" in e.value.hint
    assert e.value.exit_code == 2


def test_the_ci_schedule_is_checked_the_same_way() -> None:
    with pytest.raises(
        ConfigError, match="CI cron '61 \\* \\* \\* \\*': minute '61' is not a value from 0 to 59"
    ):
        render_ci("github", "stages.yaml", {"cron": "61 * * * *"})

"""One rendering module: the same filters and value formats for command output, JUnit, report, CI files."""

from __future__ import annotations

import datetime as dt

import pytest

from runbook.rendering import format_when, template_env

FILTERS = {"duration", "size", "when", "value", "threshold", "icon", "count", "json", "style", "verdict"}


@pytest.mark.parametrize("autoescape", [False, True])
def test_every_environment_has_every_filter(autoescape: bool) -> None:
    env = template_env(autoescape=autoescape)
    assert set(env.filters) >= FILTERS
    if autoescape:  # escaping is compiled into templates: the compiled-template cache is for unescaped ones
        assert env.bytecode_cache is None


def test_one_value_format_for_every_output() -> None:
    env = template_env(autoescape=False)
    show = env.from_string("{{ m | value }} | {{ m | threshold }}")
    assert show.render(m={"value": 0.0123, "unit": "ratio", "inputs": {"max": 0.05}}) == "1.23% | ≤ 5%"
    assert show.render(m={"value": 90.0, "unit": "seconds", "inputs": {}}) == "1m 30s | -"
    assert show.render(m={"value": 3, "unit": "jobs", "inputs": {"min": 1}}) == "3 jobs | ≥ 1 job"
    assert show.render(m={"value": None, "unit": "", "inputs": {}}) == "- | -"


@pytest.mark.parametrize(
    ("m", "shown"),
    [  # a measurement's value and its limits in the measurement's unit, as explanations show them
        ({"value": 90003.0, "unit": "s", "inputs": {"max": 86400.0}}, "1d 1h | ≤ 1d"),
        ({"value": 0.08814, "unit": "s", "inputs": {"max": 1.5, "min": 0.25}}, "0.088s | ≤ 1.5s; ≥ 0.25s"),
        ({"value": 9.1, "unit": "s", "inputs": {"min": 60}}, "9.1s | ≥ 1m"),
        ({"value": 52_000_000, "unit": "bytes", "inputs": {"max": 100_000_000}}, "52.0MB | ≤ 100.0MB"),
        ({"value": 1, "unit": "rows", "inputs": {"max": 0}}, "1 row | ≤ 0 rows"),
        ({"value": 1, "unit": "instances", "inputs": {"min": 1}}, "1 instance | ≥ 1 instance"),
        # settings that are not in the metric's unit: a count of jobs on a latency, an age on a count
        ({"value": None, "unit": "s", "inputs": {"jobs": 0, "min_jobs": 5}}, "- | min_jobs 5 jobs"),
        ({"value": 1, "unit": "jobs", "inputs": {"min_jobs": 1}}, "1 job | min_jobs 1 job"),
        (
            {"value": 2, "unit": "jobs", "inputs": {"max": 10, "max_staleness": 60.0}},
            "2 jobs | ≤ 10 jobs; max_staleness 1m",
        ),
    ],
)
def test_durations_sizes_and_counts_read_as_people_write_them(m: dict[str, object], shown: str) -> None:
    show = template_env(autoescape=False).from_string("{{ m | value }} | {{ m | threshold }}")
    assert show.render(m=m) == shown


def test_the_live_watch_view_shows_limits_in_the_unit_of_the_value() -> None:
    check = {
        "check": "thumb-age",
        "verdict": "fail",
        "value": 90003.0,
        "unit": "s",
        "inputs": {"max": 86400.0},
        "threshold": 86400.0,
        "state": "breached",
        "assessment": "1 failure in this stage",
    }
    view = {"n": 3, "stage": "one", "soak_remaining_seconds": 0, "note": "", "checks": [check]}
    env = template_env(autoescape=False)
    line = env.get_template("watch_line.txt.j2").render(v=view).strip()
    assert line == "#3 one thumb-age=1d 1h:fail!"
    screen = env.get_template("watch_live.txt.j2").render(v=view, recent=[line]).splitlines()
    assert f"{'thumb-age':<26} {'FAIL':<12} {'1d 1h':<16} {'≤ 1d':<10} 1 failure in this stage" in screen


def test_style_is_plain_unless_given() -> None:
    plain = template_env(autoescape=False).from_string("{{ 'pass' | verdict }}")
    assert plain.render() == "PASS"
    painted = template_env(autoescape=False, style=lambda text, style: f"<{style}>{text}")
    assert painted.from_string("{{ 'fail' | verdict }}").render() == "<fail>FAIL"


def test_when() -> None:
    at = dt.datetime(2026, 11, 29, 13, 2, 5, tzinfo=dt.UTC)
    assert format_when(at) == "2026-11-29 13:02:05 UTC"
    assert format_when(at.isoformat()) == "2026-11-29 13:02:05 UTC"
    assert format_when(None) == "-"
    assert format_when("not a time") == "not a time"


def test_a_pgboss_transfer_that_made_queues_reads_without_a_blank_line() -> None:
    """The created-queues line of `migrate transfer pgboss` counts the queues and is followed by the next
    line, not by an empty one (a new-user trial saw a Python list and a blank line)."""
    from runbook.commands.transfer_pgboss import PgbossTransferResult
    from runbook.output import Output

    result = PgbossTransferResult(
        "a:5432/src#pgboss", "b:5432/dst#pgboss", {"source": "v10", "target": "v12"}, False, ["mail"]
    )
    result.created_queues = ["mail-dlq", "mail"]
    result.totals = {"moved": 1, "batches": 1, "inserted": 1, "already_present": 0, "seconds": 0.1}
    result.totals |= {"rows_per_second": 10.0, "longest_batch_ms": 5.0}
    text = Output("text", color=False).render(result)
    assert text.splitlines() == [
        "Moved 1 job from pg-boss a:5432/src#pgboss (v10) to b:5432/dst#pgboss (v12) in 1 batch: inserted 1, "
        "already in the target 0.",
        "  created 2 queues the target lacked, with the source's options: mail-dlq, mail",
        "  0.1 s, 10.0 jobs/s, longest batch 5.0 ms",
    ]


def test_large_plain_floats_read_in_full_not_in_exponent_form() -> None:
    """A unitless 90000.0 is `90,000` (it was `9e+04`); counts too; small ones keep 4 significant digits."""
    from runbook.rendering import format_value

    assert format_value(90000.0) == "90,000"
    assert format_value(12345.6, "rows") == "12,346 rows"
    assert (
        format_value(0.0123) == "0.0123"
        and format_value(1234.5) == "1234"
        and format_value(2.5e-10) == "2.5e-10"
    )
    assert format_value(90000) == "90000"  # an int as it is

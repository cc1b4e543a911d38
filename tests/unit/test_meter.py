"""The transfer's progress bar: done of total, rate, time left (a fake clock), drawn in place only on a
terminal in the text format; elsewhere the caller gets False and prints a line per batch."""

from __future__ import annotations

import io

import pytest

from runbook.meter import Meter
from runbook.output import Output


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_rate_and_time_left() -> None:
    clock = Clock()
    m = Meter(100_000, "rows", clock=clock)
    clock.now += 3.0
    assert m.line(37_500) == "[#########---------------] 37,500/100,000 rows  12,500 rows/s  5s left"
    clock.now += 5.0
    assert m.line(100_000) == "[########################] 100,000/100,000 rows  12,500 rows/s  done"


def test_more_than_the_total_stays_full_and_no_total_shows_the_rate() -> None:
    clock = Clock()
    clock.now += 2.0
    m = Meter(10, "jobs", clock=clock, started=100.0)
    assert m.line(12).startswith("[########################] 12/10 jobs  6 jobs/s  done")
    assert Meter(None, "rows", clock=clock, started=100.0).line(4_000) == "4,000 rows  2,000 rows/s"
    assert Meter(0, "rows", clock=clock, started=100.0).line(0) == "0 rows  0 rows/s"


def test_nothing_done_yet_has_no_time_left() -> None:
    clock = Clock()
    m = Meter(50, "rows", clock=clock)
    clock.now += 1.0
    assert m.line(0) == "[------------------------] 0/50 rows  0 rows/s"


def test_output_draws_in_place_on_a_terminal_only() -> None:
    err = Tty()
    out = Output("text", stream=io.StringIO(), err=err)
    assert out.meter("[#---] 1/4 rows") is True
    assert out.meter("[##--] 2/4 rows") is True
    assert out.meter(None) is True
    assert err.getvalue() == "\r\x1b[K[#---] 1/4 rows\r\x1b[K[##--] 2/4 rows\n"


@pytest.mark.parametrize(("fmt", "err"), [("text", io.StringIO()), ("json", Tty()), ("markdown", Tty())])
def test_no_bar_in_a_log_or_a_machine_format(fmt: str, err: io.StringIO) -> None:
    out = Output(fmt, stream=io.StringIO(), err=err)
    assert out.meter("[#---] 1/4 rows") is False
    assert err.getvalue() == ""


def test_the_bar_is_redacted() -> None:
    err = Tty()
    out = Output("text", stream=io.StringIO(), err=err)
    out.redact.add("s3cret-pw")
    out.meter("moving to postgresql://u:s3cret-pw@db/x")
    assert "s3cret-pw" not in err.getvalue()

"""The transfer's progress bar: done of total, rate, time left (a fake clock), drawn in place only on a
terminal in the text format; elsewhere the caller gets False and prints a line per batch."""

from __future__ import annotations

import io

import pytest

from runbook.meter import Meter
from runbook.output import Output
from runbook.transfer.batch import Batch
from runbook.transfer.report import Progress


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


class FakeSession:
    def __init__(self, live: bool) -> None:
        self.live, self.lines, self.drawn = live, [], []  # type: ignore[var-annotated]

    def meter(self, line: str | None) -> bool:
        if self.live:
            self.drawn.append(line)
        return self.live

    def progress(self, line: str) -> None:
        self.lines.append(line)


def _batch(n: int, marked: int) -> Batch:
    return Batch(n, marked, marked, 0, marked, 0.05)


def test_transfer_progress_counts_the_rest_once_and_only_for_a_bar() -> None:
    asked: list[int] = []

    def left() -> int:
        asked.append(1)
        return 900

    live = FakeSession(True)
    bar = Progress(live, left, "rows")  # type: ignore[arg-type]
    bar.batch(_batch(1, 100))
    bar.batch(_batch(2, 100))
    bar.end()
    assert asked == [1] and live.lines == []
    assert live.drawn[0] == "100 rows moved, counting the rest"
    assert live.drawn[1].startswith("[##----------------------] 100/1,000 rows")
    assert live.drawn[2].startswith("[####--------------------] 200/1,000 rows")
    assert live.drawn[-1] is None

    log = FakeSession(False)
    bar = Progress(log, left, "rows")  # type: ignore[arg-type]
    bar.batch(_batch(1, 100))
    bar.end()
    assert asked == [1]  # never counted without a bar
    assert log.lines == ["batch 1: claimed 100, inserted 100, already in pg-boss 0, marked 100 (50 ms)"]

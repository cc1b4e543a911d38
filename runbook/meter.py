"""A progress bar for long work on a terminal (a transfer's rows): done of total, rate and time left,
redrawn in place on stderr. Logs and pipes get no bar: there the caller prints one line per step instead
(runbook.output.Output.meter says which)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from runbook.units import format_duration

WIDTH = 24


@dataclass
class Meter:
    total: int | None
    unit: str
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.started or self.clock()

    def line(self, done: int) -> str:
        """`[#########---------------] 37,500/100,000 rows  12,480 rows/s  5s left`."""
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = done / elapsed
        speed = f"{rate:,.0f} {self.unit}/s"
        if not self.total:
            return f"{done:,} {self.unit}  {speed}"
        part = min(1.0, done / self.total)
        filled = int(part * WIDTH)
        bar = "#" * filled + "-" * (WIDTH - filled)
        left = (self.total - done) / rate if rate > 0 and done < self.total else 0.0
        eta = "done" if done >= self.total else (f"{format_duration(left)} left" if rate > 0 else "")
        return f"[{bar}] {done:,}/{self.total:,} {self.unit}  {speed}  {eta}".rstrip()

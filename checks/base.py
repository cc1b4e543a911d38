"""The check interface: what a kind receives (`CheckContext`), what it returns (`Measurement`), and the
retry policy for named transient errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    import psycopg

    from runbook.model import Runbook


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    """Not enough data (no jobs in the window): never advances, never rolls back by itself."""
    ERROR = "error"
    """Could not measure (timeout, refused connection): not the same as a bad measurement."""


@dataclass(frozen=True)
class Measurement:
    """One measured value and its verdict, with everything needed to explain it later."""

    verdict: Verdict
    value: Any
    explanation: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    unit: str = ""
    check: str = ""
    kind: str = ""
    measured_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    duration_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "kind": self.kind,
            "verdict": self.verdict.value,
            "value": self.value,
            "unit": self.unit,
            "explanation": self.explanation,
            "inputs": dict(self.inputs),
            "measured_at": self.measured_at.isoformat(),
            "duration_ms": round(self.duration_ms, 1),
        }


@dataclass(frozen=True)
class Sample:
    """A stored earlier measurement of the same check in the current stage (for growth and uptime)."""

    at: dt.datetime
    value: Any
    verdict: Verdict


class CheckContext(Protocol):
    """What a check may use. Implemented by the engine; tests may build their own."""

    @property
    def runbook(self) -> Runbook: ...

    @property
    def stage_id(self) -> str | None: ...

    @property
    def stage_entered_at(self) -> dt.datetime | None:
        """When the current stage was entered (UTC), or None before the first stage."""
        ...

    @property
    def env(self) -> Mapping[str, str]: ...

    def now(self) -> dt.datetime: ...

    @contextmanager
    def connect(self, url: str | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A read-only connection (statement_timeout set) to `url` or the application database."""
        ...

    def samples(self, check: str) -> Sequence[Sample]:
        """Earlier samples of `check` in the current stage, oldest first."""
        ...


P = TypeVar("P")


@dataclass(frozen=True)
class CheckKind(Generic[P]):
    """A registered kind: its parameter dataclass (validated by the loader) and its measure function."""

    name: str
    params: type[P]
    measure: Callable[[P, CheckContext], Measurement]
    summary: str = ""

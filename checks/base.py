"""The check interface: what a kind receives (`CheckContext`) and what it returns (`Measurement`).

`Verdict`, `Measurement` and `Sample` are core types (`runbook.measurement`), re-exported here so that check
kinds keep importing them from `runbook.checks.base`. The retry policy is `runbook.checks.transient`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from runbook.measurement import Measurement, Sample, Verdict

if TYPE_CHECKING:
    import psycopg

    from runbook.model import Runbook


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


__all__ = ["CheckContext", "CheckKind", "Measurement", "Sample", "Verdict"]

P = TypeVar("P")


@dataclass(frozen=True)
class CheckKind(Generic[P]):
    """A registered kind: its parameter dataclass (validated by the loader) and its measure function."""

    name: str
    params: type[P]
    measure: Callable[[P, CheckContext], Measurement]
    summary: str = ""

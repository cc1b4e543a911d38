"""The core types of a measurement: a `Verdict`, the `Measurement` a check kind returns, and a stored
`Sample` of an earlier one. The state machine, the engine and the state store use them; check kinds
(plugins) import them from `runbook.checks.base`, which re-exports them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Measurement", "Sample", "Verdict"]


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

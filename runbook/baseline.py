"""The history of one job type that `migrate calibrate` reads (runbook.commands.calibrate) and judges from
(runbook.calibration): finished, failed, volume and run times over a window, from the legacy table or from
pg-boss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["History"]


@dataclass(frozen=True)
class History:
    """One job type's finished work over a window: from the legacy table or from pg-boss."""

    source: str
    name: str
    window: float
    completed: int
    failed: int
    p50: float | None = None
    p95: float | None = None
    run_times: tuple[float, ...] = ()

    @property
    def finished(self) -> int:
        return self.completed + self.failed

    @property
    def rate(self) -> float:
        return self.failed / self.finished if self.finished else 0.0

    @property
    def per_hour(self) -> float:
        return self.finished * 3600 / self.window

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "name": self.name,
            "window_seconds": self.window,
            "completed": self.completed,
            "failed": self.failed,
            "error_rate": round(self.rate, 6) if self.finished else None,
            "per_hour": round(self.per_hour, 2),
            "p50_seconds": self.p50,
            "p95_seconds": self.p95,
        }

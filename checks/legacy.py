"""`legacy`: facts about the legacy job table (mapped in settings.legacy; defaults match the Prisma "Job"
table): counts by status, drained, rows created since the stage was entered, stale running rows, and error
rate and processing time over a window. Refuses to scan a large table without an index unless allowed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from runbook.checks.base import CheckContext, CheckKind, Measurement, Verdict
from runbook.checks.legacy_metrics import METRIC_FUNCTIONS, ROLES, processing_times
from runbook.checks.legacy_table import GROUPS, load, qualified
from runbook.checks.rates import check_confidence
from runbook.checks.sqlutil import Session, check_percentile, check_thresholds, check_units, run_measurement
from runbook.model import Duration, Threshold, doc
from runbook.units import count

__all__ = ["KIND", "LegacyParams", "measure", "samples"]

Metric = Literal["counts", "drained", "created_since", "stale_running", "error_rate", "processing_time"]
METRICS: tuple[str, ...] = get_args(Metric)
Group = Literal["pending", "running", "done", "failed", "cancelled"]
"""A status group of the mapping: settings.legacy.pending, .running, ... list each group's values."""


@dataclass(frozen=True)
class LegacyParams:
    metric: Metric = doc(
        "what to measure: counts, drained, created_since, stale_running, error_rate, processing_time",
        "counts",
    )
    status: tuple[Group, ...] = doc(
        "counts: the status groups summed into the value (pending, running, done, failed, cancelled)",
        ("pending", "running"),
    )
    type: str | None = doc("only rows of this job type (needs settings.legacy.type_column)", None)
    filter: str | None = doc("extra SQL condition on the rows, ANDed with settings.legacy.filter", None)
    window: Duration = doc(
        "error_rate, processing_time: look back this far (by the completed column)", 3600.0
    )
    since_stage: bool = doc("windowed metrics: never look back before the stage was entered", False)
    min_jobs: int = doc("error_rate, processing_time: fewer finished rows than this is inconclusive", 1)
    percentile: float = doc("processing_time: the percentile of completed - started, e.g. 50 or 95", 95.0)
    stale_after: Duration | None = doc("stale_running: default settings.legacy.stale_after (30m)", None)
    max: Threshold | None = doc(
        "fail above this (created_since and stale_running: default 0); processing_time: a duration (10m)",
        None,
    )
    min: Threshold | None = doc("fail below this", None)
    confidence: float | None = doc(
        "error_rate: judge with this confidence (e.g. 0.95): fail only when the whole anytime-valid interval "
        "of the true rate is above max, pass only when below, else inconclusive",
        None,
    )
    strict: bool = doc(
        "drained: fail (instead of inconclusive) while rows are still pending or running", False
    )
    scan_limit_rows: int = doc(
        "above this many rows (planner estimate), refuse to scan without an index on the filtered column",
        1_000_000,
    )
    allow_scan: bool = doc("scan even a large table without a suitable index", False)
    url: str | None = doc("database; default settings.legacy.url, then settings.database.url", None)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; expected one of {', '.join(METRICS)}")
        unknown = [s for s in self.status if s not in GROUPS]
        if unknown or not self.status:
            raise ValueError(f"status must list groups among {', '.join(GROUPS)}; got {list(self.status)}")
        check_percentile(self.percentile)
        unit = "duration" if self.metric == "processing_time" else ""
        check_units(self.metric, unit, max=self.max, min=self.min)
        check_thresholds(self.max, self.min)
        check_confidence(self.confidence, self.max, self.min, metric=self.metric)
        if self.window <= 0:
            raise ValueError(f"window must be positive, got {self.window}")
        if self.stale_after is not None and self.stale_after <= 0:
            raise ValueError(f"stale_after must be positive, got {self.stale_after}")
        if self.min_jobs < 0 or self.scan_limit_rows < 0:
            raise ValueError("min_jobs and scan_limit_rows cannot be negative")
        if self.metric == "drained" and (self.max is not None or self.min is not None):
            raise ValueError("metric drained takes no max/min: it passes when nothing is pending or running")

    @property
    def effective_max(self) -> float | None:
        if self.max is None and self.min is None and self.metric in ("created_since", "stale_running"):
            return 0.0
        return self.max


def measure(params: LegacyParams, ctx: CheckContext) -> Measurement:
    """Measure `params.metric` on the mapped legacy table."""
    settings = ctx.runbook.settings.legacy
    url = params.url or settings.url
    entered = ctx.stage_entered_at

    def body(session: Session) -> Measurement:
        session.inputs.update(metric=params.metric, table=qualified(settings), type=params.type)
        table = load(
            session, settings, ROLES[params.metric], type_value=params.type, extra_filter=params.filter
        )
        session.inputs.update(rows_estimate=round(table.rows_estimate), estimate_source=table.estimate_source)
        return METRIC_FUNCTIONS[params.metric](session, table, params, entered)

    return run_measurement(ctx, url, "legacy", body)


def samples(params: LegacyParams, ctx: CheckContext, limit: int) -> Measurement:
    """The processing times behind metric processing_time, the latest `limit` in its window, as the value
    of a measurement (for `compare`'s rank test); ERROR, explained, when they cannot be read."""
    if params.metric != "processing_time":
        raise ValueError(f"legacy samples are the times of metric processing_time, not {params.metric}")
    settings = ctx.runbook.settings.legacy

    def body(session: Session) -> Measurement:
        table = load(
            session, settings, ROLES["processing_time"], type_value=params.type, extra_filter=params.filter
        )
        values = processing_times(session, table, params, ctx.stage_entered_at, limit)
        return Measurement(verdict=Verdict.PASS, value=values, explanation=count(values, "processing time"))

    return run_measurement(ctx, params.url or settings.url, "legacy", body)


KIND = CheckKind(
    name="legacy",
    params=LegacyParams,
    measure=measure,
    summary='the legacy job table ("Job"): drained, new rows after a flip, stale rows, error rate, latency',
)

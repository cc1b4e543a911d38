"""`pgboss`: facts about pg-boss queues read straight from PostgreSQL, for the v10, v11 and v12 layouts:
installed (and schema version), queue_exists, backlog, oldest_ready_age, error_rate, run_time, wait_time,
throughput, stuck_active and live_workers. Read-only; every job query filters by queue name."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import psycopg

from runbook.checks.base import CheckContext, CheckKind, Measurement, Verdict
from runbook.checks.pgboss_layout import Layout, NotInstalledError, detect, detect_once
from runbook.checks.pgboss_metrics import METRIC_FUNCTIONS, missing_queue
from runbook.checks.pgboss_queries import INTERNAL_PREFIX, Window, queue_row, run_times, window_index_hint
from runbook.checks.pgboss_queries import queued_per_queue as _queued_per_queue
from runbook.checks.pgboss_workers import instances
from runbook.checks.rates import check_confidence
from runbook.checks.sqlutil import (
    MeasureError,
    Session,
    check_percentile,
    check_thresholds,
    check_units,
    run_measurement,
)
from runbook.model import Duration, Threshold, doc
from runbook.units import count

__all__ = ["KIND", "PgBossParams", "instances", "measure", "queued_per_queue", "samples"]

Metric = Literal[
    "installed",
    "queue_exists",
    "backlog",
    "oldest_ready_age",
    "error_rate",
    "run_time",
    "wait_time",
    "throughput",
    "stuck_active",
    "live_workers",
]
METRICS: tuple[str, ...] = get_args(Metric)
QUEUE_OPTIONAL = frozenset({"installed", "live_workers"})
WINDOWED = frozenset({"error_rate", "run_time", "wait_time", "throughput"})
NO_THRESHOLD = frozenset({"queue_exists"})
DURATION_METRICS = frozenset({"oldest_ready_age", "run_time", "wait_time"})
"""Metrics measured in seconds: their max/min take a duration (`max: 1d`) or a number of seconds."""


@dataclass(frozen=True)
class PgBossParams:
    metric: Metric = doc(
        "what to measure: installed, queue_exists, backlog, oldest_ready_age, error_rate, run_time, "
        "wait_time, throughput, stuck_active, live_workers",
        "installed",
    )
    queue: str | None = doc("the queue (required except for installed and live_workers)", None)
    state: Literal["queued", "ready", "deferred", "active"] = doc(
        "backlog: which jobs to count (queued = ready + deferred, + blocked on 12.x)", "queued"
    )
    percentile: float = doc("run_time / wait_time: the percentile, e.g. 50 or 95", 95.0)
    window: Duration = doc("error_rate, run_time, wait_time, throughput: look back this far", 3600.0)
    since_stage: bool = doc("windowed metrics: never look back before the stage was entered", False)
    min_jobs: int = doc(
        "error_rate, run_time, wait_time, throughput: fewer finished (wait_time: started) jobs than this in "
        "the window is inconclusive, never a pass",
        1,
    )
    max: Threshold | None = doc("fail above this (stuck_active: default 0); ages take a duration (1d)", None)
    confidence: float | None = doc(
        "error_rate: judge with this confidence (e.g. 0.95): fail only when the whole anytime-valid interval "
        "of the true rate is above max, pass only when below, else inconclusive",
        None,
    )
    min: Threshold | None = doc(
        "fail below this (live_workers: default 1; installed: minimum schema version)", None
    )
    counters: Literal["auto", "live", "cached"] = doc(
        "backlog on 11/12: auto uses pg-boss's cached queue counters while fresher than max_staleness, "
        "else counts live",
        "auto",
    )
    max_staleness: Duration = doc(
        "cached counters (queue.monitor_on) and the v10/v11 live-worker proxies (cron_on) older than this "
        "are stale",
        120.0,
    )
    schema: str | None = doc("pg-boss schema; default settings.pgboss.schema", None)
    url: str | None = doc("database; default settings.pgboss.url, then settings.database.url", None)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; expected one of {', '.join(METRICS)}")
        if self.metric not in QUEUE_OPTIONAL and not self.queue:
            raise ValueError(f"metric {self.metric} needs a queue (the name given to createQueue/send)")
        if self.queue and self.queue.startswith(INTERNAL_PREFIX):
            raise ValueError(f"queue {self.queue!r} is internal to pg-boss; name one of the app's queues")
        if self.metric in NO_THRESHOLD and (self.max is not None or self.min is not None):
            raise ValueError(f"metric {self.metric} takes no max/min: it passes when the queue exists")
        check_percentile(self.percentile)
        check_units(
            self.metric, "duration" if self.metric in DURATION_METRICS else "", max=self.max, min=self.min
        )
        check_thresholds(self.max, self.min)
        check_confidence(self.confidence, self.max, self.min, metric=self.metric)
        if self.window <= 0:
            raise ValueError(f"window must be positive, got {self.window}")
        if self.min_jobs < 0:
            raise ValueError(f"min_jobs cannot be negative, got {self.min_jobs}")
        if self.max_staleness <= 0:
            raise ValueError(f"max_staleness must be positive, got {self.max_staleness}")

    @property
    def effective_max(self) -> float | None:
        if self.max is None and self.min is None and self.metric == "stuck_active":
            return 0.0
        return self.max

    @property
    def effective_min(self) -> float | None:
        if self.max is None and self.min is None and self.metric == "live_workers":
            return 1.0
        return self.min


def measure(params: PgBossParams, ctx: CheckContext) -> Measurement:
    """Measure `params.metric` on the pg-boss schema of the runbook's settings (or the params' overrides)."""
    settings = ctx.runbook.settings
    schema = params.schema or settings.pgboss.schema
    url = params.url or settings.pgboss.url
    since = ctx.stage_entered_at if params.since_stage else None

    def body(session: Session) -> Measurement:
        return _measure(session, params, schema, since, lambda: detect_once(ctx, session, url, schema))

    return run_measurement(ctx, url, "pgboss", body)


def _measure(
    session: Session,
    params: PgBossParams,
    schema: str,
    since: dt.datetime | None,
    layout_of: Callable[[], Layout],
) -> Measurement:
    session.inputs.update(metric=params.metric, queue=params.queue)
    try:
        layout = layout_of()
    except NotInstalledError as exc:
        session.inputs.update(schema=schema, installed=False)
        return Measurement(
            verdict=Verdict.FAIL, value=None, explanation=f"{exc.message}; {exc.hint}", unit="", kind="pgboss"
        )
    session.inputs.update(layout.describe())
    if params.metric in WINDOWED:
        session.inputs.update(window=params.window, since_stage=params.since_stage)
    info = None
    if params.queue:
        info = queue_row(session, layout, params.queue)
        if info is None:
            if params.metric == "queue_exists":
                return Measurement(
                    verdict=Verdict.FAIL, value=False, explanation=missing_queue(params.queue), kind="pgboss"
                )
            raise MeasureError(missing_queue(params.queue))
    return METRIC_FUNCTIONS[params.metric](session, layout, params, info, since)


def samples(params: PgBossParams, ctx: CheckContext, limit: int) -> Measurement:
    """The run times behind metric run_time, the latest `limit` in its window, as the value of a measurement
    (for `compare`'s rank test); ERROR, explained, when they cannot be read."""
    if params.metric != "run_time" or params.queue is None:
        raise ValueError(f"pgboss samples are the run times of metric run_time, not {params.metric}")
    queue = params.queue
    schema = params.schema or ctx.runbook.settings.pgboss.schema
    since = ctx.stage_entered_at if params.since_stage else None
    url = params.url or ctx.runbook.settings.pgboss.url

    def body(session: Session) -> Measurement:
        layout = detect_once(ctx, session, url, schema)
        info = queue_row(session, layout, queue)
        if info is None:
            raise MeasureError(missing_queue(queue))
        window = Window(seconds=params.window, since=since)
        values = run_times(session, layout, queue, window, limit, hint=window_index_hint(layout, info))
        return Measurement(verdict=Verdict.PASS, value=values, explanation=count(values, "run time"))

    return run_measurement(ctx, url, "pgboss", body)


def queued_per_queue(conn: psycopg.Connection[Any], schema: str = "pgboss") -> list[dict[str, Any]]:
    """List the work left in pg-boss: each app queue with queued or active jobs and its live counts
    (`queue`, `queued`, `ready`, `deferred`, `active`). [] when pg-boss is not installed."""
    session = Session(conn)
    try:
        layout = detect(session, schema)
    except NotInstalledError:
        return []
    return _queued_per_queue(session, layout)


KIND = CheckKind(
    name="pgboss",
    params=PgBossParams,
    measure=measure,
    summary="pg-boss queues: backlog, error rate, latency, stuck jobs, live workers (v10, v11, v12)",
)

"""One function per `pgboss` metric: run the queries for the detected layout, judge the value against the
thresholds, and explain it in one line a person understands."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runbook.checks.base import Measurement, Verdict
from runbook.checks.pgboss_layout import Layout
from runbook.checks.pgboss_queries import (
    Window,
    finished,
    live_counts,
    oldest_ready,
    stuck,
    waits,
    window_index_hint,
)
from runbook.checks.pgboss_workers import live_from_proxies, live_from_registry
from runbook.checks.rates import judge_rate
from runbook.checks.sqlutil import Session, judge, num, seconds, thresholds, window_text
from runbook.units import count

if TYPE_CHECKING:
    from runbook.checks.pgboss import PgBossParams

QueueInfo = dict[str, Any] | None
MetricFn = Callable[[Session, Layout, "PgBossParams", QueueInfo, dt.datetime | None], Measurement]


def missing_queue(queue: str) -> str:
    """Explain a queue that was never created, naming the fix."""
    return (
        f"queue {queue} does not exist: the app must call `await boss.createQueue('{queue}')` before "
        "send()/work() (pg-boss 10 send() silently returns null without it; 11 and 12 throw)"
    )


def _result(
    value: Any,
    what: str,
    p: PgBossParams,
    *,
    unit: str = "",
    fmt: Callable[[float], str] = num,
    **inputs: Any,
) -> Measurement:
    """Judge `value` against the params' thresholds; explanation `<what> <comparison>`."""
    verdict, cmp = judge(float(value), max=p.effective_max, min=p.effective_min, fmt=fmt)
    inputs.update(thresholds(p.effective_max, p.effective_min))
    text = f"{what} {cmp}" if cmp else what
    return Measurement(verdict=verdict, value=value, explanation=text, unit=unit, inputs=inputs)


def _too_few(n: int, what: str, p: PgBossParams, value: Any, unit: str = "") -> Measurement:
    """INCONCLUSIVE: only `n` `what`s (a singular noun: `finished job`) in the queue's window."""
    return Measurement(
        verdict=Verdict.INCONCLUSIVE,
        value=value,
        unit=unit,
        explanation=(
            f"only {count(n, what)} in {p.queue} {window_text(p.window, p.since_stage)} "
            f"(min_jobs {p.min_jobs}): not enough to judge"
        ),
        inputs={"jobs": n, "min_jobs": p.min_jobs},
    )


def installed(
    s: Session, layout: Layout, p: PgBossParams, info: QueueInfo, since: dt.datetime | None
) -> Measurement:
    what = f"pg-boss schema {layout.schema} installed: schema version {layout.version} (layout {layout.name})"
    return _result(layout.version, what, p, installed=True)


def queue_exists(
    s: Session, layout: Layout, p: PgBossParams, info: QueueInfo, since: dt.datetime | None
) -> Measurement:
    table = (info or {}).get("table_name") or (info or {}).get("partition_name")
    where = f" (jobs in {layout.schema}.{table})" if table else ""
    return Measurement(verdict=Verdict.PASS, value=True, explanation=f"queue {p.queue} exists{where}")


def backlog(
    s: Session, layout: Layout, p: PgBossParams, info: QueueInfo, since: dt.datetime | None
) -> Measurement:
    assert p.queue is not None and info is not None
    column = layout.cached_counter(p.state)
    raw_age = info.get("monitor_age")
    age = None if raw_age is None else float(raw_age)
    inputs: dict[str, Any] = {"state": p.state, "counters": p.counters, "max_staleness": p.max_staleness}
    if column and age is not None:
        inputs.update(cache_column=f"queue.{column}", cache_age=age)
    use_cache = (
        column is not None
        and age is not None
        and (p.counters == "cached" or (p.counters == "auto" and age <= p.max_staleness))
    )
    if use_cache:
        assert column is not None and age is not None
        value = int(info[column])
        source = f"pg-boss's cached queue.{column}, refreshed {seconds(age)} ago"
        inputs["source"] = "cached"
    else:
        counts = live_counts(s, layout, p.queue)
        value = counts[p.state]
        detail = ", ".join(f"{k} {v}" for k, v in counts.items())
        source = f"counted live: {detail}"
        if column and p.counters != "live":
            stale = (
                "never refreshed"
                if age is None
                else f"{seconds(age)} old > max_staleness {seconds(p.max_staleness)}"
            )
            source += f"; cached counters stale ({stale}: no supervising pg-boss instance?)"
        inputs.update(source="live", live=counts)
    return _result(value, f"{p.state} jobs in {p.queue}: {value} ({source})", p, unit="jobs", **inputs)


def oldest_ready_age(
    s: Session, layout: Layout, p: PgBossParams, info: QueueInfo, since: dt.datetime | None
) -> Measurement:
    assert p.queue is not None
    age, ready = oldest_ready(s, layout, p.queue)
    what = (
        f"oldest ready job in {p.queue} waiting {seconds(age)} ({ready} ready)"
        if ready
        else f"no ready job in {p.queue}"
    )
    return _result(age, what, p, unit="s", fmt=seconds, ready=ready)


def _window(p: PgBossParams, since: dt.datetime | None) -> Window:
    return Window(seconds=p.window, since=since)


def error_rate(
    s: Session, layout: Layout, p: PgBossParams, info: QueueInfo, since: dt.datetime | None
) -> Measurement:
    assert p.queue is not None
    f = finished(s, layout, p.queue, _window(p, since), p.percentile, hint=window_index_hint(layout, info))
    total = f["completed"] + f["failed"]
    rate = f["failed"] / total if total else None
    if total < max(p.min_jobs, 1):
        return _too_few(total, "finished job", p, rate)
    span = window_text(p.window, p.since_stage)
    what = f"error rate {num(rate)} ({f['failed']} failed of {total} finished {span})"
    if p.confidence is not None:
        return judge_rate(f["failed"], total, what, confidence=p.confidence, max=p.max, min=p.min, **f)
    return _result(rate, what, p, **f)


def run_time(
    s: Session, layout: Layout, p: PgBossParams, info: QueueInfo, since: dt.datetime | None
) -> Measurement:
    assert p.queue is not None
    f = finished(s, layout, p.queue, _window(p, since), p.percentile, hint=window_index_hint(layout, info))
    return _latency("run time", f["completed"], "completed", f["run_time"], p)


def wait_time(
    s: Session, layout: Layout, p: PgBossParams, info: QueueInfo, since: dt.datetime | None
) -> Measurement:
    assert p.queue is not None
    n, value = waits(
        s, layout, p.queue, _window(p, since), p.percentile, hint=window_index_hint(layout, info)
    )
    return _latency("wait time", n, "started", value, p)


def _latency(name: str, n: int, jobs: str, value: float | None, p: PgBossParams) -> Measurement:
    """A percentile of `n` `jobs` (completed, started) jobs' times in seconds, or too few to judge."""
    if n < max(p.min_jobs, 1) or value is None:
        return _too_few(n, f"{jobs} job", p, value, "s")
    span = window_text(p.window, p.since_stage)
    what = f"{name} p{num(p.percentile)} {seconds(value)} over {count(n, f'{jobs} job')} {span}"
    return _result(value, what, p, unit="s", fmt=seconds, jobs=n, percentile=p.percentile)


def throughput(
    s: Session, layout: Layout, p: PgBossParams, info: QueueInfo, since: dt.datetime | None
) -> Measurement:
    assert p.queue is not None
    f = finished(s, layout, p.queue, _window(p, since), p.percentile, hint=window_index_hint(layout, info))
    if f["completed"] + f["failed"] < max(p.min_jobs, 1):
        return _too_few(f["completed"] + f["failed"], "finished job", p, f["completed"])
    span = window_text(p.window, p.since_stage)
    what = f"{count(f['completed'], 'job')} completed in {p.queue} {span} ({f['failed']} failed)"
    return _result(f["completed"], what, p, unit="jobs", completed=f["completed"], failed=f["failed"])


def stuck_active(
    s: Session, layout: Layout, p: PgBossParams, info: QueueInfo, since: dt.datetime | None
) -> Measurement:
    assert p.queue is not None
    late, active = stuck(s, layout, p.queue)
    their = "its" if active == 1 else "their"
    what = f"{late} of {count(active, 'active job')} in {p.queue} past {their} expiry"
    what += f" ({layout.expire_column})"
    if late:
        what += ": no supervising pg-boss instance, or a worker crashed mid-job"
    return _result(late, what, p, unit="jobs", active=active)


def live_workers(
    s: Session, layout: Layout, p: PgBossParams, info: QueueInfo, since: dt.datetime | None
) -> Measurement:
    if layout.has_instances:
        value, what, inputs = live_from_registry(s, layout, p.queue, p.max_staleness)
    else:
        value, what, inputs = live_from_proxies(s, layout, p.queue, p.max_staleness)
    return _result(value, what, p, unit="instances", **inputs)


METRIC_FUNCTIONS: dict[str, MetricFn] = {
    "installed": installed,
    "queue_exists": queue_exists,
    "backlog": backlog,
    "oldest_ready_age": oldest_ready_age,
    "error_rate": error_rate,
    "run_time": run_time,
    "wait_time": wait_time,
    "throughput": throughput,
    "stuck_active": stuck_active,
    "live_workers": live_workers,
}

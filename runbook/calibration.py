"""The rules of `migrate calibrate` (pure: no I/O): from the history of each job type
(runbook.baseline.History, read by runbook.commands.calibrate) and the runbook's checks, suggest thresholds,
minimum work and soak lengths, each with its reasoning in words and numbers.

- An `error_rate` check (pgboss, legacy) with `max` > 0: the jobs to decide it are the number after which,
  failing at the history's rate, its interval decides against `max` at its `confidence` (0.95 when unset;
  runbook.confidence.jobs_at_rate). Without `confidence:` its `min_jobs` becomes that number; with it the
  interval itself holds the check inconclusive until then (a note says so; no min_jobs is needed). A `max`
  at or below the history's rate (a stage as healthy as the legacy system would fail) becomes twice the
  rate, rounded up; a window holding fewer such jobs at the history's volume becomes long enough.
- No duration beyond what a runbook accepts (a window or soak above `MAX_DURATION`, 365d) is suggested: a
  check whose jobs take longer than that to arrive at the history's volume cannot be decided within any
  window at that volume; it gets a note saying so instead of a window, min_jobs (which it could never
  reach) or soak.
- A `compare` of a pgboss run_time against a legacy processing_time: the `a` side's `min_jobs` becomes the
  run times the rank test needs to show a slowdown of `max` (legacy run times scaled by `max` against
  themselves; runbook.ranktest.samples_needed) at `alpha` (0.01 when unset).
- A stage's `work` minimum on a queue becomes what its checks on that queue need; its soak at least the
  time that work takes at the history's volume. Its checks are its monitors, and the next stage's preflight
  checks with `since_stage` (they judge the stage being left). A `legacy` check without `since_stage`
  judges the legacy table's history from before the stage: its window holds its jobs, not the soak.
Suggestions only raise a number (never shorten a soak or lower a minimum); `max` only when too tight."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from runbook import confidence as cs
from runbook.baseline import History
from runbook.checks.sqlutil import num
from runbook.model import CheckSpec, Runbook, Stage
from runbook.ranktest import mann_whitney, samples_needed
from runbook.spec.budget import MAX_SECONDS
from runbook.units import count, format_duration, parse_duration

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_CONFIDENCE",
    "MAX_DURATION",
    "Suggestion",
    "nice_duration",
    "nice_rate",
    "suggest",
    "within_limit",
]

DEFAULT_CONFIDENCE = 0.95
DEFAULT_ALPHA = 0.01
MAX_DURATION = MAX_SECONDS["duration"]
"""The longest window or soak a runbook accepts (runbook.spec.budget): no suggestion goes beyond it."""
_RATES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


@dataclass(frozen=True)
class Suggestion:
    stage: str
    check: str | None
    """The check's name (a compare's side: `compare.a`); None for the stage itself (its soak)."""
    key: str
    current: str
    value: str
    """The new value as YAML (`93`, `0.1`, `3h`)."""
    reason: str
    location: str
    """FILE:LINE:COL of the mapping that holds `key` (runbook.yamledit edits it)."""

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("stage", "check", "key", "current", "value", "reason")}


def nice_rate(x: float) -> float:
    """The first of 0.1%, 0.2%, 0.5%, 1%, 2%, 5%, 10%, 20%, 30%, 50% at or above `x` (0.5 at most)."""
    return next((r for r in _RATES if r >= x), _RATES[-1])


def nice_duration(seconds: float) -> str:
    """Round up: to 5 minutes below an hour, to hours below two days, else to days (`45m`, `3h`, `3d`)."""
    if seconds <= 3600:
        return f"{max(5, math.ceil(seconds / 300) * 5)}m"
    if seconds <= 48 * 3600:
        return f"{math.ceil(seconds / 3600)}h"
    return f"{math.ceil(seconds / 86400)}d"


def _volume(per_hour: float) -> str:
    """`4 jobs an hour`, `1 job an hour`, `0.9 jobs a day` below one an hour, `1 job a month` (30 days)
    below 0.1 a day."""
    if per_hour >= 1:
        return count(num(round(per_hour, 1)), "job") + " an hour"
    if per_hour * 24 >= 0.1:
        return count(num(round(per_hour * 24, 1)), "job") + " a day"
    return count(num(round(per_hour * 24 * 30, 2)), "job") + " a month"


def within_limit(seconds: float) -> str | None:
    """`nice_duration(seconds)`, or None when that is beyond the longest duration a runbook accepts."""
    wanted = nice_duration(seconds)
    return wanted if seconds <= MAX_DURATION and parse_duration(wanted) <= MAX_DURATION else None


def _beyond(h: History, n: int, what: str, skipped: str) -> str:
    """Why `skipped` (`window, min_jobs or soak`) is not suggested: the `n` jobs `what` (`deciding ...`)
    takes arrive, at the history's volume, later than a runbook's longest duration."""
    return (
        f"{what} takes about {count(n, 'job')}, about {format_duration(n / h.per_hour * 3600)} at "
        f"{_volume(h.per_hour)}: it cannot be decided within {format_duration(MAX_DURATION)} at this volume. "
        f"No {skipped} is suggested for it (a runbook accepts at most {format_duration(MAX_DURATION)})"
    )


def _pct(x: float) -> str:
    return f"{num(round(x * 100, 2))}%"


def _checks(stage: Stage) -> Iterator[CheckSpec]:
    yield from (*stage.preflight, *stage.verify, *stage.monitor)


HistoryOf = Callable[[str | None, str | None], History | None]
"""`history(queue, legacy_type)`: the history that stands for pg-boss queue `queue` (None: the legacy rows
only), read from the legacy rows of `legacy_type` first (None: every row), else from pg-boss; None: none."""


def legacy_type_of(rb: Runbook, queue: str) -> str:
    """The legacy type that stands for pg-boss queue `queue`: the one settings.transfer.queues sends there,
    else the queue's own name (a type column holding the queue names)."""
    mapped = [t for t, q in rb.settings.transfer.queues.items() if q == queue]
    return mapped[0] if len(mapped) == 1 else queue


def suggest(rb: Runbook, history: HistoryOf) -> tuple[list[Suggestion], list[str]]:
    """The suggestions for `rb`, and notes on what could not be calibrated."""
    out: list[Suggestion] = []
    notes: list[str] = []
    # per stage: queue (or legacy type) -> (jobs, check, the legacy type standing for it)
    needs: list[dict[str, tuple[int, str, str | None]]] = [{} for _ in rb.stages]
    for i, stage in enumerate(rb.stages):
        for check in _checks(stage):
            p = check.params
            queue, n, legacy = None, None, None
            if check.kind == "pgboss" and p.metric == "error_rate":
                queue, legacy = p.queue, legacy_type_of(rb, p.queue)
                n = _rate(stage, check, history(queue, legacy), out, notes)
            elif check.kind == "legacy" and p.metric == "error_rate":
                queue, legacy = p.type, p.type
                n = _rate(stage, check, history(None, legacy), out, notes)
            elif check.kind == "compare" and p.a.kind == "pgboss" and p.b.kind == "legacy":
                queue = p.a.params.queue
                legacy = p.b.params.type or legacy_type_of(rb, queue)  # the compare's own baseline side
                n = _compare(stage, check, history(queue, legacy), out, notes)
            if n is None or queue is None:
                continue
            if check.kind == "legacy" and not p.since_stage:  # history from before the stage: no soak
                continue
            if check in stage.monitor:  # what the soak must see
                which, need = check.name, needs[i]
            elif i and check in stage.preflight and getattr(p, "since_stage", False):  # judges the stage left
                which, need = f"{stage.id}'s preflight {check.name}", needs[i - 1]
            else:
                continue
            if n > need.get(queue, (0, "", None))[0]:  # the first check that needs the most names it
                need[queue] = (n, which, legacy)
    for stage, need in zip(rb.stages, needs, strict=True):
        _soak(stage, need, history, out, notes)
    return out, notes


def _rate(
    stage: Stage, check: CheckSpec, h: History | None, out: list[Suggestion], notes: list[str]
) -> int | None:
    p = check.params
    where = f"{stage.id} {check.name}"
    if p.max is None or p.max <= 0:
        notes.append(f"{where}: max {num(p.max)}: nothing to calibrate (every failure counts)")
        return None
    if h is None or not h.finished:
        notes.append(f"{where}: no finished jobs in the history for it")
        return None
    conf = p.confidence or DEFAULT_CONFIDENCE
    limit = float(p.max)
    span = format_duration(h.window)
    said = f"{h.source} {h.name} fail at {_pct(h.rate)} ({h.failed} of {h.finished} over {span})"
    if h.rate >= limit:
        if h.rate >= _RATES[-1]:
            notes.append(
                f"{where}: {said}, at or above max {num(p.max)} and at or above any limit worth suggesting "
                f"({_pct(_RATES[-1])}): look at those failures before calibrating it"
            )
            return None
        doubled = 2 * h.rate
        limit = nice_rate(doubled)
        twice = (
            "twice the rate"
            if limit >= doubled
            else f"{_pct(limit)}, the highest limit it suggests (twice the rate would be {_pct(doubled)})"
        )
        reason = f"{said}, at or above max {num(p.max)}: a stage as healthy as that would fail; {twice}"
        out.append(Suggestion(stage.id, check.name, "max", num(p.max), num(limit), reason, check.location))
    n = cs.jobs_at_rate(h.rate, limit, conf, cs.prior_for(limit))
    if n is None:
        notes.append(f"{where}: at {_pct(h.rate)} a {_pct(limit)} limit is never decided; raise max")
        return None
    how = "" if p.confidence else f" (the check has no confidence: {num(conf)} is assumed)"
    held = h.per_hour * p.window / 3600
    shown = (
        round(held)
        if held >= 10
        else round(held, 1)
        if held >= 1
        else (round(held, 2) or float(f"{held:.1g}"))
    )
    about = f"about {count(num(shown), 'job')}"  # 29, 2.5, 0.04: never 'about 0 jobs'
    wanted = within_limit(n / h.per_hour * 3600) if held < n else None
    if held < n and wanted is None:  # no window a runbook accepts holds them at this volume
        deciding = f"deciding its {_pct(limit)} limit at {_pct(conf)} confidence"
        beyond = _beyond(h, n, deciding, "window, min_jobs or soak")
        if p.confidence:
            keep = "with confidence it stays inconclusive, holding advance, at this volume"
            fix = "raise max or lower its confidence so fewer jobs decide it"
        else:
            window = format_duration(p.window)
            keep = f"its {window} window then judges {about}, too few to decide it at {_pct(conf)} confidence"
            fix = "raise max so fewer jobs decide it"
        notes.append(
            f"{where}: {said}; {beyond}: keep the current values ({keep}), {fix}, or calibrate again once "
            "the volume grows"
        )
        return None
    if p.confidence:
        notes.append(
            f"{where}: {said}; at that rate its {_pct(limit)} limit is decided at {_pct(conf)} confidence "
            f"after about {count(n, 'job')}: inconclusive (holding advance) until then, no min_jobs needed"
        )
    elif n <= p.min_jobs:
        notes.append(f"{where}: min_jobs {p.min_jobs} already covers the {count(n, 'job')} deciding it")
    else:
        reason = (
            f"{said}; at that rate a {_pct(limit)} limit is decided at {_pct(conf)} confidence after about "
            f"{count(n, 'job')}{how}, so min_jobs: {n}"
        )
        out.append(
            Suggestion(stage.id, check.name, "min_jobs", str(p.min_jobs), str(n), reason, check.location)
        )
    if wanted is not None:
        reason = (
            f"at {_volume(h.per_hour)} the {format_duration(p.window)} window holds {about}, fewer than "
            f"the {count(n, 'job')} deciding it: window: {wanted}"
        )
        out.append(
            Suggestion(
                stage.id, check.name, "window", format_duration(p.window), wanted, reason, check.location
            )
        )
    return n


def _compare(
    stage: Stage, check: CheckSpec, h: History | None, out: list[Suggestion], notes: list[str]
) -> int | None:
    p = check.params
    a = p.a
    where = f"{stage.id} {check.name}"
    if p.max is None or a.params.metric != "run_time" or p.b.params.metric != "processing_time":
        return None
    if h is None or len(h.run_times) < 2:
        notes.append(f"{where}: fewer than 2 legacy run times in the history: no baseline to test against")
        return None
    alpha = p.alpha or DEFAULT_ALPHA
    runs = list(h.run_times)
    effect = mann_whitney([x * p.max for x in runs], runs).effect
    n = samples_needed(effect, len(runs), alpha)
    if n is None:
        notes.append(
            f"{where}: a {num(p.max)}x slowdown is not detectable against {count(runs, 'legacy run time')}"
        )
        return None
    if n <= a.params.min_jobs:
        notes.append(
            f"{where}: {a.name} min_jobs {a.params.min_jobs} already covers the {count(n, 'run time')} it "
            "needs"
        )
    else:
        test = "" if p.test else " (judged so with test: mann-whitney on this check)"
        reason = (
            f"legacy {h.name} run times p50 {num(h.p50)}s, p95 {num(h.p95)}s ({len(runs)} latest); a pg-boss "
            f"{num(p.max)}x slower would be slower in {_pct(effect)} of pairs, which the rank test at alpha "
            f"{num(alpha)} shows after about {count(n, 'run time')}{test}, so {a.name} min_jobs: {n}"
        )
        out.append(
            Suggestion(stage.id, a.name, "min_jobs", str(a.params.min_jobs), str(n), reason, a.location)
        )
    return n


def _soak(
    stage: Stage,
    needs: dict[str, tuple[int, str, str | None]],
    history: HistoryOf,
    out: list[Suggestion],
    notes: list[str],
) -> None:
    longest: tuple[float, str] = (0.0, "")
    reachable: set[str] = set()
    for queue, (n, which, legacy) in needs.items():
        h = history(queue, legacy)
        if h is None or h.per_hour <= 0:
            reachable.add(queue)
            continue
        seconds = n / h.per_hour * 3600
        if within_limit(seconds) is None:
            beyond = _beyond(h, n, f"deciding {which} on {queue}", "soak or work minimum")
            notes.append(
                f"{stage.id} soak: {beyond}: keep the current values, or calibrate again once the volume "
                "grows"
            )
            continue
        reachable.add(queue)
        take = "takes" if n == 1 else "take"
        longest = max(
            longest, (seconds, f"{count(n, f'{queue} job')} ({which}) at {_volume(h.per_hour)} {take}")
        )
    for work in stage.soak.work:
        p = work.params
        if work.kind != "work" or p.source != "pgboss" or p.queue not in reachable:
            continue
        n, which, _ = needs[p.queue]
        if n > p.min_jobs:
            reason = (
                f"the soak's work minimum holds the {count(n, f'{p.queue} job')} that {which} needs to decide"
            )
            out.append(
                Suggestion(stage.id, work.name, "min_jobs", str(p.min_jobs), str(n), reason, work.location)
            )
    seconds, why = longest
    if seconds > stage.soak.duration:
        wanted = nice_duration(seconds)
        reason = f"{why} about {format_duration(seconds)}: soak at least {wanted}"
        key = "soak.duration" if stage.soak.work else "soak"
        out.append(
            Suggestion(
                stage.id, None, key, format_duration(stage.soak.duration), wanted, reason, stage.location
            )
        )

"""The names `migrate scaffold` writes into the app, read from a loaded runbook: which flag switches pg-boss
on, which flag routes each queue, which flag sends every job, the pg-boss schema, the flag table and channel
(or the dotenv file), and the legacy table mapping.

The roles follow the plan's increments as the runbook writes them: the first stage that sets a flag away
from its safe value switches pg-boss on (PGBOSS_ENABLED); a queue is routed by the flag set in the stage
whose checks first name it (import-article in increment-1 by PGBOSS_ENABLED, evaluation in increment-3 by
PGBOSS_FOR_NEW_EVALS); a later stage that sets a flag and names no new queue sends every job
(PGBOSS_FOR_ALL_JOBS, increment-4). Pure: no I/O."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runbook.errors import UsageError
from runbook.model import DOTENV_FLAGS_FILE, CheckSpec, DotenvFlags, PostgresFlags, Runbook, Stage

_ON = frozenset({"true", "1", "yes", "on"})


@dataclass(frozen=True)
class QueueRoute:
    name: str
    flag: str | None
    """The flag that must also be on (besides the enabling flag); None: the enabling flag alone."""
    status_key: str
    """Its brief in the status payload (`import_jobs` for import-article, as the plan's endpoint)."""
    plan_options: bool
    """Send with the plan's evaluation options (priority 5, retries 3 with back-off, 1 h expiry)."""


@dataclass(frozen=True)
class AppNames:
    runbook: str
    source: str
    flags: tuple[str, ...]
    safe: dict[str, bool]
    enabled_flag: str
    all_jobs_flag: str | None
    queues: tuple[QueueRoute, ...]
    pgboss_schema: str
    flag_source: str
    """postgres (table + LISTEN), dotenv (the file) or env (the command backend: the environment only)."""
    flags_schema: str
    flags_table: str
    flags_channel: str
    dotenv_path: str
    legacy: dict[str, Any]


def app_names(rb: Runbook) -> AppNames:
    """The names of `rb`; a UsageError naming -f when the runbook switches no flag on."""
    safe = {f.name: f.safe.strip().lower() in _ON for f in rb.flags}
    order: list[tuple[Stage, list[str], list[str]]] = []
    seen: set[str] = set()
    for stage in rb.stages:
        flipped = [k for k, v in stage.set.items() if k in safe and (v.strip().lower() in _ON) != safe[k]]
        new = [q for q in dict.fromkeys(_stage_queues(stage)) if q not in seen]
        seen.update(new)
        order.append((stage, flipped, new))
    flag_stages = [(s, flipped, new) for s, flipped, new in order if flipped]
    if not flag_stages:
        raise UsageError(
            f"{rb.source}: no stage switches a flag away from its safe value, so there is nothing to route",
            hint="pass -f with the runbook of your migration (`migrate init` writes the pg-boss one)",
        )
    enabled = flag_stages[0][1][0]
    routes: list[QueueRoute] = []
    all_jobs: str | None = None
    pending: list[str] = []  # queues named before the enabling stage: routed by the enabling flag
    for _stage, flipped, new in order:
        pending += new
        if not flipped:
            continue
        flag = None if flipped[0] == enabled else flipped[0]
        if not pending and flag is not None and all_jobs is None:
            all_jobs = flag
        for q in pending:
            routes.append(QueueRoute(q, flag, "", plan_options=flag is not None))
        pending = []
    routes += [QueueRoute(q, all_jobs, "", False) for q in pending]  # named after the last flip
    keys = _status_keys([r.name for r in routes])
    routes = [QueueRoute(r.name, r.flag, keys[r.name], r.plan_options) for r in routes]
    backend = rb.settings.flags
    lg = rb.settings.legacy
    return AppNames(
        runbook=rb.name,
        source=rb.source,
        flags=tuple(f.name for f in rb.flags),
        safe=safe,
        enabled_flag=enabled,
        all_jobs_flag=all_jobs,
        queues=tuple(routes),
        pgboss_schema=rb.settings.pgboss.schema,
        flag_source=(
            "postgres"
            if isinstance(backend, PostgresFlags)
            else "dotenv"
            if isinstance(backend, DotenvFlags)
            else "env"
        ),
        flags_schema=backend.schema if isinstance(backend, PostgresFlags) else "runbook",
        flags_table=backend.table if isinstance(backend, PostgresFlags) else "flags",
        flags_channel=backend.channel if isinstance(backend, PostgresFlags) else "runbook_flags",
        dotenv_path=backend.path if isinstance(backend, DotenvFlags) else DOTENV_FLAGS_FILE,
        legacy={
            "schema": lg.schema,
            "table": lg.table,
            "status_column": lg.status_column,
            "statuses": [*lg.pending, *lg.running, *lg.done, *lg.failed, *lg.cancelled],
        },
    )


def _stage_queues(stage: Stage) -> Iterator[str]:
    for check in (*stage.preflight, *stage.verify, *stage.soak.work, *stage.monitor):
        yield from _check_queues(check)


def _check_queues(check: CheckSpec) -> Iterator[str]:
    params = check.params
    queue = getattr(params, "queue", None)
    if isinstance(queue, str) and queue:
        yield queue
    for f in dataclasses.fields(params) if dataclasses.is_dataclass(params) else ():
        value = getattr(params, f.name)
        if isinstance(value, CheckSpec):  # compare: its two sides
            yield from _check_queues(value)


def _status_keys(names: list[str]) -> dict[str, str]:
    """`import-article` -> `import_jobs`, `evaluation` -> `evaluation_jobs`; the whole name when two share
    a first word."""
    first = {n: re.split(r"[^A-Za-z0-9]+", n)[0] or n for n in names}
    keys: dict[str, str] = {}
    for n in names:
        word = first[n] if list(first.values()).count(first[n]) == 1 else n
        keys[n] = re.sub(r"[^A-Za-z0-9]+", "_", word).strip("_").lower() + "_jobs"
    return keys
